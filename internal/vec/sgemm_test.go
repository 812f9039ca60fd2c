package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// asmPaths are the paths with an SGEMM of their own on this CPU.
func asmPaths(t *testing.T) []Path {
	var ps []Path
	for _, p := range Supported() {
		if p != PathGo {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		t.Skip("no AVX2+FMA on this CPU: callers use the general SGEMM, tested with the model")
	}
	return ps
}

// Column counts around every tile edge of both paths: 16 and 32 (AVX2), 64
// and 128 (AVX-512), their masked tails, and sizes of the model's layers.
var sgemmCols = []int{1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 56, 63, 64, 65, 100, 127, 128, 129, 191, 192, 210, 300}

// Sgemm against a float64 reference on every path this CPU runs, for shapes
// around every tile edge (4 rows, the column tiles, masked tails), strides
// wider than the matrices, and beta 0, 1 and ½. Only C's m×n block may
// change: the strided gaps and the slack after it hold a sentinel.
func TestSgemmMatchesReference(t *testing.T) {
	for _, p := range asmPaths(t) {
		t.Run(string(p), func(t *testing.T) {
			usePath(t, p)
			testSgemmReference(t)
		})
	}
}

func testSgemmReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, m := range []int{1, 2, 3, 4, 5, 8, 9, 32} {
		for _, n := range sgemmCols {
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
	for _, p := range asmPaths(t) {
		usePath(t, p)
		for _, k := range []int{0, 2} {
			c := []float32{float32(math.NaN()), float32(math.Inf(1)), 7, float32(math.NaN())}
			a, b := []float32{1, 1, 1, 1}, []float32{0, 0, 0, 0}
			if !Sgemm(2, 2, k, a, 2, b, 2, 0, c, 2) {
				t.Fatalf("%s: Sgemm declined", p)
			}
			for i, v := range c {
				if v != 0 {
					t.Fatalf("%s k=%d: C[%d] = %v, want 0", p, k, i, v)
				}
			}
		}
	}
}

// The assembly paths agree bit for bit: each adds a sum's k products in the
// same order with one rounding per FMA, whatever its tile width. Random
// shapes, strides and betas, compared with every other path this CPU runs.
func TestSgemmPathsAgree(t *testing.T) {
	ps := asmPaths(t)
	if len(ps) < 2 {
		t.Skipf("only %v here: nothing to compare", ps)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 300; trial++ {
		m, n, k := 1+r.IntN(40), 1+r.IntN(400), r.IntN(80)
		lda, ldb, ldc := k+r.IntN(3), n+r.IntN(3), n+r.IntN(3)
		beta := []float32{0, 1, 0.5, -2}[r.IntN(4)]
		a, b := randSlice(r, max(m*lda, 1)), randSlice(r, max(k*ldb, 1))
		c0 := randSlice(r, m*ldc)
		var first []float32
		for _, p := range ps {
			usePath(t, p)
			c := append(append([]float32(nil), c0...), withGuard(0)...)
			Sgemm(m, n, k, a, lda, b, ldb, beta, c[:m*ldc], ldc)
			if first == nil {
				first = c
				continue
			}
			sameBits(t, fmt.Sprintf("%s vs %s m=%d n=%d k=%d beta=%v", p, ps[0], m, n, k, beta), m*ldc, c, first)
		}
	}
}

func BenchmarkSgemm(b *testing.B) {
	// The shapes of the model's largest layers at batch 1, and a square one.
	for _, p := range Supported() {
		if p == PathGo {
			continue
		}
		for _, s := range []struct{ m, n, k int }{{32, 224, 32}, {32, 210, 32}, {32, 900, 32}, {1, 840, 32}, {32, 784, 9}, {256, 256, 256}} {
			b.Run(fmt.Sprintf("path=%s/m=%d/n=%d/k=%d", p, s.m, s.n, s.k), func(b *testing.B) {
				usePath(b, p)
				benchSgemm(b, s.m, s.n, s.k)
			})
		}
	}
}

func benchSgemm(b *testing.B, m, n, k int) {
	a, bb, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
	for b.Loop() {
		Sgemm(m, n, k, a, k, bb, n, 1, c, n)
	}
	b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
