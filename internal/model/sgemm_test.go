package model

import (
	"fmt"
	"math/rand"
	"testing"
)

// refGemm is C = op(A)·op(B) + beta·C in float64, row-major with strides.
func refGemm(tA, tB bool, m, n, k int, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float64
				if tA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if tB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			c[i*ldc+j] = s + beta*c[i*ldc+j]
		}
	}
}

// TestSgemmTransposes checks every transpose combination of this build's
// sgemm against float64, with strides wider than the matrices, odd sizes
// the kernels' tiles do not divide, and beta 0 and 1 (the gradients
// accumulate).
func TestSgemmTransposes(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, sz := range [][3]int{{1, 1, 1}, {3, 5, 7}, {4, 16, 9}, {17, 33, 5}, {32, 32, 840}, {9, 70, 128}, {70, 9, 1}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, beta := range []float64{0, 1} {
					t.Run(fmt.Sprintf("m=%d/n=%d/k=%d/tA=%v/tB=%v/beta=%v", m, n, k, tA, tB, beta), func(t *testing.T) {
						ar, ac := m, k
						if tA {
							ar, ac = k, m
						}
						br, bc := k, n
						if tB {
							br, bc = n, k
						}
						lda, ldb, ldc := ac+3, bc+1, n+2
						a, b := randVec(rng, (ar-1)*lda+ac, 1), randVec(rng, (br-1)*ldb+bc, 1)
						c := randVec(rng, (m-1)*ldc+n, 1)
						want := append([]float64(nil), c...)
						refGemm(tA, tB, m, n, k, a, lda, b, ldb, beta, want, ldc)
						got := to32(c)
						sgemm(tA, tB, m, n, k, to32(a), lda, to32(b), ldb, float32(beta), got, ldc)
						// Entries between rows (stride padding) must be untouched.
						closeEnough(t, "c", got, want, 1e-4*float64(k), 1e-5)
					})
				}
			}
		}
	}
}

func TestTransposeStrided(t *testing.T) {
	for _, sz := range [][2]int{{1, 1}, {1, 40}, {40, 1}, {16, 16}, {17, 33}, {100, 7}} {
		rows, cols := sz[0], sz[1]
		lds, ldd := cols+2, rows+5
		src := make([]float32, rows*lds)
		for i := range src {
			src[i] = float32(i)
		}
		dst := make([]float32, cols*ldd)
		for i := range dst {
			dst[i] = -1
		}
		transposeStrided(dst, ldd, src, lds, rows, cols)
		for c := 0; c < cols; c++ {
			for r := 0; r < ldd; r++ {
				want := float32(-1)
				if r < rows {
					want = src[r*lds+c]
				}
				if got := dst[c*ldd+r]; got != want {
					t.Fatalf("%dx%d: dst[%d][%d] = %v, want %v", rows, cols, c, r, got, want)
				}
			}
		}
	}
}
