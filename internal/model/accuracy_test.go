package model

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/aeserve/aeserve/internal/vec"
	"github.com/aeserve/aeserve/weights"
)

// refModel runs stage h of a model in float64 with the plain-loop layer
// references: the reference path the served fast kernels must match.
func refModel(m *Model, h Half, x []float64, n int) []float64 {
	f64 := func(name string) []float64 {
		d := m.Params()[name].Data().([]float32)
		o := make([]float64, len(d))
		for i, v := range d {
			o[i] = float64(v)
		}
		return o
	}
	parts, err := m.Arch.parts(h)
	if err != nil {
		panic(err)
	}
	for _, s := range parts {
		for _, l := range s.Layers {
			w, b := f64(l.Name+".weight"), f64(l.Name+".bias")
			if l.fc != nil {
				x = refDense(*l.fc, l.Act, x, w, b, n)
				continue
			}
			x = refLayer(*l.conv, l.Act, x, w, b, n)
			if l.Pool {
				x = refPool(x, n*l.conv.Cout, l.conv.OH, l.conv.OW)
			}
		}
		if s.Half == Encoder && m.Arch.Gaussian && h != Posterior {
			x = refMean(x, n)
		}
	}
	return x
}

// refMean keeps each row's first half: a Gaussian code's mean.
func refMean(p []float64, n int) []float64 {
	l := len(p) / n / 2
	out := make([]float64, 0, n*l)
	for i := 0; i < n; i++ {
		out = append(out, p[i*2*l:i*2*l+l]...)
	}
	return out
}

// The fast path, as served, equals the float64 reference within
// |a − b| ≤ 1e-5 + 1e-4·|b| for every kernel path this CPU runs (AVX-512,
// AVX2, portable Go), half, model and batch size (including sizes that split
// unevenly across workers, and a batch smaller than the one before, over the
// same buffers), and its images are within one grey level.
func TestFastPathMatchesReferenceModel(t *testing.T) {
	for _, p := range vec.Supported() {
		t.Run("kernels="+string(p), func(t *testing.T) {
			useKernels(t, p)
			testFastPathMatchesReference(t)
		})
	}
}

// useKernels switches vec to path p for the rest of the test.
func useKernels(t testing.TB, p vec.Path) {
	t.Helper()
	if err := vec.Use(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vec.Use("auto") })
}

func testFastPathMatchesReference(t *testing.T) {
	for _, name := range embeddedModels(t) {
		m, err := LoadFS(weights.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range m.Arch.Runnable() {
			r, err := m.NewRunner(h)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{1, 3, 8, 5} {
				t.Run(fmt.Sprintf("%s/%s/n=%d", name, h, n), func(t *testing.T) {
					rng := rand.New(rand.NewSource(int64(n)))
					img := make([]float64, n*m.Arch.InLen(Full))
					if h == Classifier {
						img = make([]float64, n*m.Arch.InLen(h))
					}
					for i := range img {
						img[i] = float64(float32(rng.Float64()))
					}
					x := img
					if h == Decoder { // latents as the encoder makes them, not saturating noise
						x = refModel(m, Encoder, img, n)
					}
					x32 := make([]float32, len(x))
					for i, v := range x {
						x32[i] = float32(v)
						x[i] = float64(x32[i])
					}
					got, err := r.Run(x32, n)
					if err != nil {
						t.Fatal(err)
					}
					want := refModel(m, h, x, n)
					var worst float64
					for i, b := range want {
						d := math.Abs(float64(got[i]) - b)
						if !(d <= 1e-5+1e-4*math.Abs(b)) {
							t.Fatalf("value %d: fast %v, reference %v (|diff| %.3g)", i, got[i], b, d)
						}
						if h == Decoder || h == Full { // images
							if g, w := math.Round(float64(got[i])*255), math.Round(b*255); math.Abs(g-w) > 1 {
								t.Fatalf("pixel %d: grey %v vs %v", i, g, w)
							}
						}
						worst = max(worst, d)
					}
					t.Logf("worst |diff| %.3g", worst)
				})
			}
			r.Close()
		}
	}
}

// Across kernel paths the served outputs agree: the AVX2 and AVX-512 paths
// bit for bit (their SGEMMs add each sum's products in the same order with
// the same roundings, and share the epilogues), the portable path within
// 1e-5 relative (gonum sums in another order) and one grey level on images.
// On one path a pass is bit-for-bit reproducible: the same batch run twice,
// and each image run alone, give the same bits.
func TestKernelPathsAgree(t *testing.T) {
	paths := vec.Supported()
	if len(paths) < 2 {
		t.Skipf("only %v on this CPU: nothing to compare (TestFastPathMatchesReferenceModel covers it)", paths)
	}
	const n = 7
	for _, name := range embeddedModels(t) {
		m, err := LoadFS(weights.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range m.Arch.Runnable() {
			t.Run(name+"/"+string(h), func(t *testing.T) {
				rng := rand.New(rand.NewSource(7))
				in := make([]float32, n*m.Arch.InLen(h))
				for i := range in {
					in[i] = rng.Float32()
				}
				if h == Decoder { // a real code, not saturating noise
					enc, err := m.NewRunner(Encoder)
					if err != nil {
						t.Fatal(err)
					}
					img := make([]float32, n*m.Arch.InLen(Encoder))
					for i := range img {
						img[i] = rng.Float32()
					}
					if in, err = enc.Run(img, n); err != nil {
						t.Fatal(err)
					}
					enc.Close()
				}
				outs := make(map[vec.Path][]float32)
				for _, p := range paths {
					useKernels(t, p)
					r, err := m.NewRunner(h)
					if err != nil {
						t.Fatal(err)
					}
					a, err := r.Run(in, n)
					if err != nil {
						t.Fatal(err)
					}
					b, err := r.Run(in, n)
					if err != nil {
						t.Fatal(err)
					}
					equalBits(t, string(p)+" twice", a, b)
					one, err := r.Run(in[:r.InLen()], 1)
					if err != nil {
						t.Fatal(err)
					}
					if batchInvariant() {
						equalBits(t, string(p)+" first item alone", a[:r.OutLen()], one)
					} else {
						closeTo(t, string(p)+" first item alone", a[:r.OutLen()], one)
					}
					r.Close()
					outs[p] = a
				}
				ref := outs[paths[0]]
				for _, p := range paths[1:] {
					got := outs[p]
					if p != vec.PathGo {
						equalBits(t, string(p)+" vs "+string(paths[0]), got, ref)
						continue
					}
					image := h == Full || h == Decoder
					for i, w := range ref {
						d := math.Abs(float64(got[i]) - float64(w))
						if d > 1e-5*math.Max(1, math.Abs(float64(w))) {
							t.Fatalf("%s vs %s: value %d: %v vs %v", p, paths[0], i, got[i], w)
						}
						if image && math.Abs(math.Round(float64(got[i])*255)-math.Round(float64(w)*255)) > 1 {
							t.Fatalf("%s vs %s: pixel %d: more than one grey level apart", p, paths[0], i)
						}
					}
				}
			})
		}
	}
}

// batchInvariant reports whether an item's result is the same bits whatever
// batch it runs in. vec's kernels are; OpenBLAS is not: it picks its
// kernels and blocking by matrix size, and a dense layer's rows are the
// batch's items, so an item run alone rounds differently in the last bits.
func batchInvariant() bool { return SGEMMBackend != "openblas" }

// closeTo holds got to want within 1e-5 relative (1e-6 absolute near 0).
func closeTo(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > 1e-6+1e-5*math.Abs(float64(want[i])) {
			t.Fatalf("%s: value %d: %v, want %v", what, i, got[i], want[i])
		}
	}
}

func equalBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: value %d: %v, want %v (bit for bit)", what, i, got[i], want[i])
		}
	}
}
