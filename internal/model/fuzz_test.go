package model

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"math"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/aeserve/aeserve/weights"
)

// FuzzDecodeTensors: any bytes either decode to tensors that account for
// every byte of the file and re-encode (in name order) to a file decoding to
// the same tensors, or fail with an error; nothing panics, and no shape a
// file claims allocates more than the file's own size. The decoded tensors
// are then checked against every stored stage of every architecture, as
// LoadFS does, which must not panic either.
func FuzzDecodeTensors(f *testing.F) {
	small, err := encodeTensors(Params{
		"w": tensorOf([]int{2, 3}, 1, 2, 3, 4, 5, 6),
		"b": tensorOf([]int{3}, -1, 0, 1),
	}, []TensorSpec{{Name: "w", Shape: []int{2, 3}}, {Name: "b", Shape: []int{3}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)
	f.Add(small[:len(small)-1])
	f.Add(append(slices.Clone(small), 0))
	f.Add([]byte(fileMagic))
	f.Add([]byte(fileMagic + "\xff\xff\xff\xff"))
	// A shape whose product overflows int: refused before allocating.
	f.Add([]byte(fileMagic + "\x01\x00\x00\x00\x01\x00w\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Add([]byte("AEW0"))
	archs := []*Arch{}
	for _, name := range Architectures() {
		a, err := Lookup(name)
		if err != nil {
			f.Fatal(err)
		}
		archs = append(archs, a)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := decodeTensors(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		size := len(fileMagic) + 4
		var specs []TensorSpec
		for name, d := range ts {
			shape := []int(d.Shape())
			n := 1
			for _, s := range shape {
				n *= s
			}
			if n != len(d.Data().([]float32)) {
				t.Fatalf("tensor %q: shape %v with %d values", name, shape, len(d.Data().([]float32)))
			}
			size += 2 + len(name) + 1 + 4*len(shape) + 4*n
			specs = append(specs, TensorSpec{Name: name, Shape: shape})
		}
		if size != len(data) {
			t.Fatalf("tensors account for %d bytes of %d", size, len(data))
		}
		slices.SortFunc(specs, func(a, b TensorSpec) int { return strings.Compare(a.Name, b.Name) })
		b, err := encodeTensors(Params(ts), specs)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if len(ts) == 1 && !bytes.Equal(b, data) {
			t.Fatalf("one tensor re-encodes differently:\n got %x\nwant %x", b, data)
		}
		again, err := decodeTensors(b)
		if err != nil {
			t.Fatalf("re-encoded file refused: %v", err)
		}
		for name, d := range ts {
			e, ok := again[name]
			if !ok || !slices.Equal([]int(e.Shape()), []int(d.Shape())) ||
				!slices.EqualFunc(e.Data().([]float32), d.Data().([]float32), sameBits) {
				t.Fatalf("tensor %q changed through re-encoding", name)
			}
		}
		for _, a := range archs {
			for _, h := range a.Stored() {
				_ = checkTensors(ts, a, h) // any answer but a panic
			}
		}
	})
}

// sameBits compares values bit for bit: a weights file may hold NaN,
// which decodeTensors carries and checkTensors refuses.
func sameBits(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }

// FuzzParseManifest: any manifest either parses to one naming the expected
// model, whose architecture has every stored stage listed with a plain file
// name and a digest, and which (in the current format) re-encodes to a
// manifest parsing to the same fingerprint; or it is refused with an error.
// The shipped manifests are the seeds.
func FuzzParseManifest(f *testing.F) {
	dirs, err := fs.ReadDir(weights.FS, ".")
	if err != nil {
		f.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		raw, err := fs.ReadFile(weights.FS, path.Join(d.Name(), "manifest.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, d.Name())
	}
	f.Add([]byte(`{"format":"1","name":"x","architecture":"conv","halves":{}}`), "x")
	f.Add([]byte(`{"format":"2","name":"x","architecture":"nope"}`), "x")
	f.Add([]byte(`{}`), "")
	f.Add([]byte(`[`), "x")
	f.Fuzz(func(t *testing.T, raw []byte, name string) {
		man, arch, err := parseManifest(raw, name)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if man.Name != name || arch == nil || arch.Task != man.Task {
			t.Fatalf("manifest %q (task %q) accepted for %q, arch %v", man.Name, man.Task, name, arch)
		}
		for _, h := range arch.Stored() {
			sf, ok := man.Stages[h]
			if !ok || sf.File == "" || strings.ContainsAny(sf.File, "/") || len(sf.SHA256) != 64 {
				t.Fatalf("stage %s accepted as %+v", h, sf)
			}
		}
		fp := fingerprintOf(man, arch)
		if man.Format != FormatVersion {
			return
		}
		b, err := json.Marshal(man)
		if err != nil {
			t.Fatalf("marshal a parsed manifest: %v", err)
		}
		again, arch2, err := parseManifest(b, name)
		if err != nil {
			t.Fatalf("re-encoded manifest refused: %v\n%s", err, b)
		}
		if arch2 != arch || fingerprintOf(again, arch2) != fp {
			t.Fatalf("fingerprint changed through re-encoding")
		}
	})
}
