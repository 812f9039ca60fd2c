package vec

import (
	"fmt"
	"math"
	"testing"
)

// tiedSlice draws from few values, so that pooling windows often hold
// several maxima (the first one must win), and from ±0 (a ReLU's zeros;
// −0 == +0 for the maximum).
func tiedSlice(n int, r interface{ IntN(int) int }) []float32 {
	vals := []float32{0, float32(math.Copysign(0, -1)), 0.5, 1, 1, 2, -1}
	s := make([]float32, n)
	for i := range s {
		s[i] = vals[r.IntN(len(vals))]
	}
	return s
}

func TestMaxPool2Grad(t *testing.T) {
	for _, p := range Supported() {
		t.Run(string(p), func(t *testing.T) {
			usePath(t, p)
			r := newRand()
			for _, relu := range []bool{false, true} {
				for rows := 1; rows <= 4; rows++ {
					for n := 1; n <= 21; n++ {
						name := fmt.Sprintf("relu=%v rows=%d n=%d", relu, rows, n)
						for _, x := range [][]float32{randSlice(r, 4*rows*n), tiedSlice(4*rows*n, r)} {
							if relu {
								for i, v := range x {
									x[i] = max(v, 0)
								}
							}
							dy := randSlice(r, rows*n)
							want, got := make([]float32, 4*rows*n), withGuard(4*rows*n)
							maxPool2GradGo(x, dy, want, rows, n, relu)
							for i := range want[:4*rows*n] {
								got[i] = float32(math.NaN()) // every element must be written
							}
							MaxPool2Grad(x, dy, got[:4*rows*n], rows, n, relu)
							sameBits(t, "MaxPool2Grad "+name, n, got, want)
						}
					}
				}
			}
		})
	}
}

// The Go reference against the definition: the whole dy of a window on its
// first maximum, nothing elsewhere, nothing where a ReLU's maximum is 0.
func TestMaxPool2GradGoSemantics(t *testing.T) {
	x := []float32{
		1, 3, 0, 0, 2, 2,
		3, 0, 0, 0, 1, 2,
	}
	dy := []float32{10, 20, 30}
	for _, tc := range []struct {
		relu bool
		want []float32
	}{
		{false, []float32{0, 10, 20, 0, 30, 0, 0, 0, 0, 0, 0, 0}},
		{true, []float32{0, 10, 0, 0, 30, 0, 0, 0, 0, 0, 0, 0}},
	} {
		got := make([]float32, len(x))
		maxPool2GradGo(x, dy, got, 1, 3, tc.relu)
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("relu=%v: dx = %v, want %v", tc.relu, got, tc.want)
			}
		}
	}
}

func TestSum(t *testing.T) {
	for _, p := range Supported() {
		t.Run(string(p), func(t *testing.T) {
			usePath(t, p)
			r := newRand()
			for n := 0; n <= 200; n++ {
				v := randSlice(r, n)
				var want, abs float64
				for _, x := range v {
					want += float64(x)
					abs += math.Abs(float64(x))
				}
				got := Sum(v)
				// Float32 summation error bound: n·ε·Σ|x|.
				if d := math.Abs(float64(got) - want); d > float64(n)*0x1p-24*abs+1e-30 {
					t.Fatalf("n=%d: Sum = %v, float64 sum %v (off by %g)", n, got, want, d)
				}
				if got2 := Sum(v); math.Float32bits(got2) != math.Float32bits(got) {
					t.Fatalf("n=%d: Sum not reproducible: %v then %v", n, got, got2)
				}
				if p == PathGo && math.Float32bits(got) != math.Float32bits(sumGo(v)) {
					t.Fatalf("n=%d: the portable path is not sumGo", n)
				}
			}
		})
	}
}

func TestReLUGrad(t *testing.T) {
	for _, p := range Supported() {
		t.Run(string(p), func(t *testing.T) {
			usePath(t, p)
			r := newRand()
			for n := 0; n <= 40; n++ {
				y := randSlice(r, n) // has +0, −0 and negatives: only +0 blocks
				dy := randSlice(r, n)
				want, got := make([]float32, n), withGuard(n)
				reluGradGo(want, y, dy)
				ReLUGrad(got[:n], y, dy)
				sameBits(t, "ReLUGrad", n, got, want)
				for i, v := range y {
					wantBits := math.Float32bits(dy[i])
					if math.Float32bits(v) == 0 {
						wantBits = 0
					}
					if math.Float32bits(want[i]) != wantBits {
						t.Fatalf("n=%d: y=%v dy=%v gave %v", n, v, dy[i], want[i])
					}
				}
			}
		})
	}
}
