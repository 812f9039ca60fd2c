package model

import (
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

func savedModel(t *testing.T) (string, Params) {
	t.Helper()
	p := ArchConv.InitParams(7)
	dir := t.TempDir()
	man := Manifest{Name: "m", Architecture: ArchConv.Name, Description: "test"}
	if _, err := Save(dir, man, p); err != nil {
		t.Fatal(err)
	}
	return dir, p
}

func TestWeightsRoundTrip(t *testing.T) {
	dir, p := savedModel(t)
	m, err := LoadDir(dir, "m")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range p.Names() {
		got, want := m.Params()[name].Data().([]float32), p[name].Data().([]float32)
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s[%d] = %v, want %v", name, i, got[i], want[i])
			}
		}
	}
	if m.Fingerprint == (Fingerprint{}) || len(m.Fingerprint.String()) != 16 {
		t.Fatalf("fingerprint %q", m.Fingerprint)
	}
	// Halves load alone, and agree on the fingerprint so latents match.
	enc, err := LoadDir(dir, "m", Encoder)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := LoadDir(dir, "m", Decoder)
	if err != nil {
		t.Fatal(err)
	}
	if enc.Fingerprint != m.Fingerprint || dec.Fingerprint != m.Fingerprint {
		t.Fatal("halves disagree on the fingerprint")
	}
	if !enc.Has(Encoder) || enc.Has(Decoder) || enc.Has(Full) || !dec.Has(Decoder) || dec.Has(Encoder) {
		t.Fatal("Has does not reflect the loaded halves")
	}
	if _, err := dec.NewRunner(Encoder); err == nil {
		t.Fatal("decoder-only model built an encoder runner")
	}
	// Different weights, different fingerprint.
	p2 := ArchConv.InitParams(8)
	dir2 := t.TempDir()
	m2, err := Save(dir2, Manifest{Name: "m", Architecture: ArchConv.Name}, p2)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Fingerprint == m.Fingerprint {
		t.Fatal("different weights share a fingerprint")
	}
}

func TestWeightsCorruptionRefused(t *testing.T) {
	cases := []struct {
		name    string
		corrupt func(t *testing.T, dir string)
		half    Half // only this half loaded ("" = both)
		want    string
	}{
		{"flipped byte in decoder", flipByte("decoder.aew", 100), "", "decoder.aew: checksum mismatch"},
		{"flipped byte in encoder", flipByte("encoder.aew", 40), "", "encoder.aew: checksum mismatch"},
		{"truncated encoder", truncate("encoder.aew", 10), "", "encoder.aew: checksum mismatch"},
		{"missing decoder file", remove("decoder.aew"), "", "decoder.aew"},
		{"corrupt encoder does not stop a decoder-only load", flipByte("encoder.aew", 40), Decoder, ""},
		{"manifest not JSON", writeFile("manifest.json", "{nope"), "", "manifest.json: malformed manifest"},
		{"manifest wrong format", editManifest(`"aeserve-weights/2"`, `"aeserve-weights/9"`), "", "format"},
		{"manifest wrong shape", editManifest(`32,
            1,`, `32,
            2,`), "", "do not match architecture"},
		{"manifest unknown architecture", editManifest(`"conv-ae/v1"`, `"dense/v7"`), "", "unknown architecture"},
		{"manifest unknown field", editManifest(`"format"`, `"surprise": 1, "format"`), "", "unknown field"},
		{"manifest sha mangled", editManifest(`"sha256": "`, `"sha256": "zz`), "", "bad sha256"},
		{"no manifest", remove("manifest.json"), "", "not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := savedModel(t)
			tc.corrupt(t, filepath.Join(dir, "m"))
			var err error
			if tc.half != "" {
				_, err = LoadDir(dir, "m", tc.half)
			} else {
				_, err = LoadDir(dir, "m")
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	dir := t.TempDir()
	if _, err := LoadDir(dir, "absent"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing model: %v, want ErrNotFound", err)
	}
}

// A file whose checksum is right but whose content is not a weights file
// (say, a manifest regenerated over a bad file) must still be refused.
func TestWeightsDecodeErrors(t *testing.T) {
	good, err := encodeTensors(Params{"a": tensorOf([]int{2}, 1, 2)}, []TensorSpec{{"a", []int{2}}})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"bad magic":      append([]byte("XXXX"), good[4:]...),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(append([]byte{}, good...), 0),
		"empty":          nil,
	}
	for name, b := range cases {
		if _, err := decodeTensors(b); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	// Cut anywhere after the header, the file is reported as truncated, not
	// as whatever the zeros read past the end would mean.
	for cut := 8; cut < len(good); cut++ {
		if _, err := decodeTensors(good[:cut]); err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("cut at %d of %d: %v, want a truncation error", cut, len(good), err)
		}
	}
	if ts, err := decodeTensors(good); err != nil || len(ts) != 1 {
		t.Fatalf("good file: %v", err)
	}
}

func TestDecodeOfEncodeEqualsFull(t *testing.T) {
	dir, _ := savedModel(t)
	enc, _ := LoadDir(dir, "m", Encoder)
	dec, _ := LoadDir(dir, "m", Decoder)
	full, _ := LoadDir(dir, "m")
	re, _ := enc.NewRunner(Encoder)
	rd, _ := dec.NewRunner(Decoder)
	rf, _ := full.NewRunner(Full)
	defer re.Close()
	defer rd.Close()
	defer rf.Close()
	rng := rand.New(rand.NewSource(1))
	n := 5
	x := make([]float32, n*ImageLen)
	for i := range x {
		x[i] = rng.Float32()
	}
	z, err := re.Run(x, n)
	if err != nil {
		t.Fatal(err)
	}
	if latentLen := prod(ArchConv.LatentShape()); len(z) != n*latentLen {
		t.Fatalf("latent has %d values, want %d", len(z), n*latentLen)
	}
	y, err := rd.Run(z, n)
	if err != nil {
		t.Fatal(err)
	}
	yf, err := rf.Run(x, n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range yf {
		if y[i] != yf[i] {
			t.Fatalf("decode(encode(x))[%d] = %v, full(x) = %v", i, y[i], yf[i])
		}
	}
}

func tensorOf(shape []int, vals ...float32) *tensorDense {
	return newDense(shape, vals)
}

func flipByte(file string, at int) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		p := filepath.Join(dir, file)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[at] ^= 0x40
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func truncate(file string, n int) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.Truncate(filepath.Join(dir, file), int64(n)); err != nil {
			t.Fatal(err)
		}
	}
}

func remove(file string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.Remove(filepath.Join(dir, file)); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(file, content string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func editManifest(old, repl string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		p := filepath.Join(dir, "manifest.json")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), old) {
			t.Fatalf("manifest has no %q:\n%s", old, b)
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, repl, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type tensorDense = tensor.Dense

func newDense(shape []int, vals []float32) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(vals))
}

// Format 1 manifests (stages called "halves", no task) still load, with
// the same fingerprint: weights trained before format 2 keep serving.
func TestFormat1ManifestLoads(t *testing.T) {
	dir, _ := savedModel(t)
	want, err := LoadDir(dir, "m")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "m", "manifest.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v1 := strings.Replace(string(b), `"aeserve-weights/2"`, `"aeserve-weights/1"`, 1)
	v1 = strings.Replace(v1, `"stages"`, `"halves"`, 1)
	v1 = strings.Replace(v1, `"task": "autoencoder",`, "", 1)
	if v1 == string(b) || strings.Contains(v1, `"stages"`) {
		t.Fatal("the manifest was not turned into format 1")
	}
	if err := os.WriteFile(path, []byte(v1), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadDir(dir, "m")
	if err != nil {
		t.Fatalf("format 1: %v", err)
	}
	if got.Fingerprint != want.Fingerprint || got.Arch != ArchConv || !got.Has(Full) {
		t.Errorf("format 1 loads as %s %v", got.Fingerprint, got.Arch.Name)
	}
	// Mixing the two is refused.
	mixed := strings.Replace(v1, `"aeserve-weights/1"`, `"aeserve-weights/2"`, 1)
	if err := os.WriteFile(path, []byte(mixed), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(dir, "m"); err == nil {
		t.Error("format 2 with halves loaded")
	}
}
