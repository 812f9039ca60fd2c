package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Sgemm against a float64 reference, for shapes around every tile edge (4
// rows, 16 and 32 columns, masked tails), strides wider than the matrices,
// and beta 0, 1 and ½. Only C's m×n block may change: the strided gaps and
// the slack after it hold a sentinel.
func TestSgemmMatchesReference(t *testing.T) {
	if !Sgemm(1, 1, 1, []float32{1}, 1, []float32{1}, 1, 0, []float32{0}, 1) {
		t.Skip("no AVX2+FMA on this CPU: callers use the general SGEMM, tested with the model")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, m := range []int{1, 2, 3, 4, 5, 8, 9, 32} {
		for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 56, 210} {
			for _, k := range []int{0, 1, 3, 9, 32} {
				for _, beta := range []float32{0, 1, 0.5} {
					lda, ldb, ldc := k+2, n+3, n+5
					a, b := randSlice(r, max(m*lda, 1)), randSlice(r, max(k*ldb, 1))
					c := withGuard(m * ldc)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							c[i*ldc+j] = float32(r.NormFloat64())
						}
					}
					want := append([]float32(nil), c...)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							var s float64
							for p := 0; p < k; p++ {
								s += float64(a[i*lda+p]) * float64(b[p*ldb+j])
							}
							want[i*ldc+j] = float32(s + float64(beta)*float64(c[i*ldc+j]))
						}
					}
					name := fmt.Sprintf("m=%d n=%d k=%d beta=%v", m, n, k, beta)
					Sgemm(m, n, k, a, lda, b, ldb, beta, c[:m*ldc], ldc)
					for i := range want {
						got, w := float64(c[i]), float64(want[i])
						if math.Abs(got-w) > 1e-5+1e-5*math.Abs(w)*float64(k+1) {
							t.Fatalf("%s: C[%d] = %v, want %v", name, i, got, w)
						}
					}
				}
			}
		}
	}
}

// With beta = 0, C is written, never read: whatever it held, NaN included,
// is gone (as in BLAS), also when k = 0.
func TestSgemmBetaZeroIgnoresC(t *testing.T) {
	for _, k := range []int{0, 2} {
		c := []float32{float32(math.NaN()), float32(math.Inf(1)), 7, float32(math.NaN())}
		a, b := []float32{1, 1, 1, 1}, []float32{0, 0, 0, 0}
		if !Sgemm(2, 2, k, a, 2, b, 2, 0, c, 2) {
			t.Skip("no AVX2+FMA on this CPU")
		}
		for i, v := range c {
			if v != 0 {
				t.Fatalf("k=%d: C[%d] = %v, want 0", k, i, v)
			}
		}
	}
}

func BenchmarkSgemm(b *testing.B) {
	// The shapes of the model's largest layers at batch 1.
	for _, s := range []struct{ m, n, k int }{{32, 224, 32}, {32, 210, 32}, {1, 840, 32}, {32, 784, 9}} {
		b.Run(fmt.Sprintf("m=%d/n=%d/k=%d", s.m, s.n, s.k), func(b *testing.B) {
			a, bb, c := make([]float32, s.m*s.k), make([]float32, s.k*s.n), make([]float32, s.m*s.n)
			for b.Loop() {
				Sgemm(s.m, s.n, s.k, a, s.k, bb, s.n, 1, c, s.n)
			}
			b.ReportMetric(float64(2*s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
