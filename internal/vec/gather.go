package vec

import "fmt"

// HasGather reports whether SgemmGather runs on the path in use.
func HasGather() bool { return level >= lvlAVX2 }

// SgemmGather computes C = A·G for row-major A [m×k] and C [m×n] with row
// strides lda and ldc, where G's row p is b[off[p] : off[p]+n]: a product
// whose right-hand rows are anywhere in b. A 3×3 convolution over a padded
// input is one such product with k = 9·Cin (row (tap, c) of G is channel c
// shifted by the tap), which the assembly runs with each tile's sums in
// registers over all nine taps (gather_amd64.s). C is written, never read.
// It reports false, doing nothing, when the path in use has no assembly for
// it (PathGo); the caller then runs the taps as separate products.
//
// It panics if an offset puts a row outside b.
func SgemmGather(m, n, k int, a []float32, lda int, b []float32, off []int, c []float32, ldc int) bool {
	if !HasGather() {
		return false
	}
	if m <= 0 || n <= 0 {
		return true
	}
	_ = c[(m-1)*ldc+n-1]
	if k <= 0 {
		for i := 0; i < m; i++ {
			clear(c[i*ldc:][:n])
		}
		return true
	}
	_, _ = a[(m-1)*lda+k-1], off[k-1]
	for p, o := range off[:k] {
		if o < 0 || o > len(b)-n {
			panic(fmt.Sprintf("vec: SgemmGather: row %d at %d: %d values past it, want %d", p, o, len(b)-o, n))
		}
	}
	if level >= lvlAVX512 {
		i := 0
		for ; i+4 <= m; i += 4 {
			gemmGather4AVX512(&c[i*ldc], &a[i*lda], &b[0], &off[0], n, k, lda, ldc)
		}
		for ; i < m; i++ {
			gemmGather1AVX512(&c[i*ldc], &a[i*lda], &b[0], &off[0], n, k)
		}
		return true
	}
	i := 0
	for ; i+4 <= m; i += 4 {
		gemmGather4AVX2(&c[i*ldc], &a[i*lda], &b[0], &off[0], n, k, lda, ldc)
	}
	for ; i < m; i++ {
		gemmGather1AVX2(&c[i*ldc], &a[i*lda], &b[0], &off[0], n, k)
	}
	return true
}
