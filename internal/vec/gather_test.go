package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// SgemmGather against a float64 reference on every assembly path, for
// shapes around every tile edge, with rows gathered from anywhere in b
// (overlapping, repeated, at its very end), and bit for bit across paths.
func TestSgemmGatherMatchesReference(t *testing.T) {
	var first map[string][]float32
	for _, p := range asmPaths(t) {
		usePath(t, p)
		got := map[string][]float32{}
		for _, m := range []int{1, 2, 3, 4, 5, 8, 32} {
			for _, n := range sgemmCols {
				for _, k := range []int{0, 1, 3, 9, 32, 288} {
					rr := rand.New(rand.NewPCG(uint64(m*1000+n), uint64(k)))
					lda, ldc := k+1, n+3
					a := randSlice(rr, max(m*lda, 1))
					b := randSlice(rr, 3*n+17)
					off := make([]int, k)
					for i := range off {
						off[i] = rr.IntN(len(b) - n + 1)
					}
					if k > 0 {
						off[k-1] = len(b) - n // the last row ends where b does
					}
					c := withGuard(m * ldc)
					for i := range c[:m*ldc] {
						c[i] = float32(math.NaN()) // never read
					}
					name := fmt.Sprintf("m=%d n=%d k=%d", m, n, k)
					if !SgemmGather(m, n, k, a, lda, b, off, c[:m*ldc], ldc) {
						t.Fatalf("%s: %s declined", p, name)
					}
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							var s float64
							for q := 0; q < k; q++ {
								s += float64(a[i*lda+q]) * float64(b[off[q]+j])
							}
							g := float64(c[i*ldc+j])
							if math.Abs(g-s) > 1e-5+1e-6*float64(k+1)*math.Abs(s)+1e-6*float64(k) {
								t.Fatalf("%s %s: C[%d,%d] = %v, want %v", p, name, i, j, g, s)
							}
						}
						for j := n; j < ldc && i < m-1; j++ {
							if !math.IsNaN(float64(c[i*ldc+j])) {
								t.Fatalf("%s %s: wrote the stride gap at [%d,%d]", p, name, i, j)
							}
						}
					}
					for i := m * ldc; i < len(c); i++ {
						if c[i] != guard {
							t.Fatalf("%s %s: wrote past C at %d", p, name, i)
						}
					}
					got[name] = c
				}
			}
		}
		if first != nil {
			for name, c := range got {
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(first[name][i]) && !(math.IsNaN(float64(c[i])) && math.IsNaN(float64(first[name][i]))) {
						t.Fatalf("%s vs %s, %s: C[%d] = %v vs %v: not bit for bit", p, Supported()[0], name, i, c[i], first[name][i])
					}
				}
			}
		} else {
			first = got
		}
	}
}

func TestSgemmGatherRefusesRowsOutsideB(t *testing.T) {
	if len(asmPaths(t)) == 0 {
		return
	}
	for _, off := range [][]int{{-1}, {6}, {0, 6}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("offsets %v into 10 values, n = 5: no panic", off)
				}
			}()
			SgemmGather(1, 5, len(off), make([]float32, len(off)), len(off), make([]float32, 10), off, make([]float32, 5), 5)
		}()
	}
}

func BenchmarkSgemmGather(b *testing.B) {
	// conv2 of the model (32→32 channels, 14×14 padded to 16 wide) and the
	// last layer (32→1 at 28×28, 30 wide): nine taps as one product.
	for _, p := range Supported() {
		if p == PathGo {
			continue
		}
		for _, s := range []struct{ m, h, w, cin int }{{32, 14, 14, 32}, {1, 28, 28, 32}, {32, 28, 28, 32}} {
			b.Run(fmt.Sprintf("path=%s/m=%d/hw=%d/cin=%d", p, s.m, s.h, s.cin), func(b *testing.B) {
				usePath(b, p)
				pw, stride := s.w+2, (s.h+2)*(s.w+2)+2
				n, k := s.h*pw, 9*s.cin
				xp := randSlice(newRand(), s.cin*stride)
				off := make([]int, 0, k)
				for tap := 0; tap < 9; tap++ {
					for c := 0; c < s.cin; c++ {
						off = append(off, c*stride+(tap/3)*pw+tap%3)
					}
				}
				a, c := randSlice(newRand(), s.m*k), make([]float32, s.m*n)
				for b.Loop() {
					SgemmGather(s.m, n, k, a, k, xp, off, c, n)
				}
				b.ReportMetric(float64(2*s.m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
