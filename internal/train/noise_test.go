package train

import (
	"math"
	"math/rand"
	"slices"
	"testing"
)

func constant(n int, v float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func TestAddNoiseReproducible(t *testing.T) {
	src := constant(1000, 0.5)
	run := func(seed int64) []float32 {
		dst := make([]float32, len(src))
		AddNoise(dst, src, 0.3, rand.New(rand.NewSource(seed)))
		return dst
	}
	a, b, c := run(1), run(1), run(2)
	if !slices.Equal(a, b) {
		t.Error("same seed gave different noise")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds gave the same noise")
	}
	if !slices.Equal(src, constant(1000, 0.5)) {
		t.Error("src was modified")
	}
}

func TestAddNoise(t *testing.T) {
	const n = 200_000
	tests := []struct {
		name   string
		x      float32
		factor float64
		// Expected statistics of dst; for a big factor clipping dominates so only the range and
		// the clipped fractions are meaningful.
		wantMean, wantStd, tol float64
		wantAt0, wantAt1       float64 // fraction of values clipped to exactly 0 and 1
	}{
		{name: "small noise", x: 0.5, factor: 0.1, wantMean: 0.5, wantStd: 0.1, tol: 0.002},
		{name: "mid noise", x: 0.5, factor: 0.2, wantMean: 0.5, wantStd: 0.2, tol: 0.004,
			wantAt0: 0.0062, wantAt1: 0.0062}, // P(Z < -2.5)
		{name: "black pixels", x: 0, factor: 0.5, wantAt0: 0.5, wantMean: 0.5 * 0.5 * math.Sqrt(2/math.Pi),
			wantStd: -1, tol: 0.005, wantAt1: 0.0228}, // P(Z > 2)
		{name: "heavy noise", x: 0.5, factor: 5, wantMean: 0.5, wantStd: -1, tol: 0.01,
			wantAt0: 0.46, wantAt1: 0.46}, // P(Z < -0.1)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := constant(n, tt.x)
			dst := make([]float32, n)
			AddNoise(dst, src, tt.factor, rand.New(rand.NewSource(42)))
			var sum, sq float64
			var at0, at1 int
			for _, v := range dst {
				if v < 0 || v > 1 || math.IsNaN(float64(v)) {
					t.Fatalf("value %v outside [0,1]", v)
				}
				switch v {
				case 0:
					at0++
				case 1:
					at1++
				}
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
			mean := sum / n
			std := math.Sqrt(sq/n - mean*mean)
			if math.Abs(mean-tt.wantMean) > tt.tol {
				t.Errorf("mean %.4f, want %.4f ± %g", mean, tt.wantMean, tt.tol)
			}
			if tt.wantStd >= 0 && math.Abs(std-tt.wantStd) > tt.tol {
				t.Errorf("std %.4f, want %.4f ± %g", std, tt.wantStd, tt.tol)
			}
			for _, c := range []struct {
				what      string
				got, want float64
			}{{"0", float64(at0) / n, tt.wantAt0}, {"1", float64(at1) / n, tt.wantAt1}} {
				// Relative tolerance for the tails, absolute near zero.
				if math.Abs(c.got-c.want) > max(0.1*c.want, 0.002) {
					t.Errorf("fraction clipped to %s: %.4f, want %.4f", c.what, c.got, c.want)
				}
			}
		})
	}
}

func TestAddNoiseFactorZero(t *testing.T) {
	src := []float32{0, 0.25, 0.5, 1, 0.999}
	dst := make([]float32, len(src))
	rng := rand.New(rand.NewSource(7))
	AddNoise(dst, src, 0, rng)
	if !slices.Equal(dst, src) {
		t.Errorf("factor 0 gave %v, want %v", dst, src)
	}
	if got, want := rng.Int63(), rand.New(rand.NewSource(7)).Int63(); got != want {
		t.Error("factor 0 consumed random numbers")
	}
}

func TestAddNoiseInPlace(t *testing.T) {
	a := constant(100, 0.3)
	b := make([]float32, 100)
	AddNoise(b, a, 0.2, rand.New(rand.NewSource(3)))
	AddNoise(a, a, 0.2, rand.New(rand.NewSource(3)))
	if !slices.Equal(a, b) {
		t.Error("in-place noise differs from noise into a separate slice")
	}
}

func TestAddNoiseShortDst(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for a dst shorter than src")
		}
	}()
	AddNoise(make([]float32, 3), make([]float32, 4), 0.1, rand.New(rand.NewSource(1)))
}
