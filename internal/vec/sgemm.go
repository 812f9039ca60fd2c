package vec

// HasSgemm reports whether Sgemm runs on the path in use (it declines on
// PathGo).
func HasSgemm() bool { return level >= lvlAVX2 }

// Sgemm computes C = A·B + beta·C for row-major A [m×k], B [k×n] and C
// [m×n] with row strides lda, ldb and ldc, without transposes: the products
// the inference kernels make. It reports false, doing nothing, when this
// path in use has no assembly for it (PathGo); the caller then uses a
// general SGEMM.
//
// It runs register-tiled FMA kernels: with AVX2 (sgemm_amd64.s) 4 rows × 16
// columns a tile, or 1 × 32 for leftover rows; with AVX-512
// (sgemm512_amd64.s) 4 × 64, or 1 × 128. Sums are kept in float32 and fused
// multiply-adds round once, so results differ from a plain loop's in the
// last bits; the tests bound that against float64. Both paths add the k
// terms of a sum in the same order with the same roundings, so they agree
// bit for bit.
func Sgemm(m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) bool {
	if !HasSgemm() {
		return false
	}
	if m <= 0 || n <= 0 {
		return true
	}
	_ = c[(m-1)*ldc+n-1]
	if k <= 0 {
		for i := 0; i < m; i++ {
			row := c[i*ldc:][:n]
			if beta == 0 {
				clear(row) // as BLAS: C is not read, so NaN there does not survive
				continue
			}
			for j := range row {
				row[j] *= beta
			}
		}
		return true
	}
	_, _ = a[(m-1)*lda+k-1], b[(k-1)*ldb+n-1]
	accum := 0
	if beta != 0 {
		accum = 1
	}
	i := 0
	if level >= lvlAVX512 {
		for ; i+4 <= m; i += 4 {
			sgemm4AVX512(&c[i*ldc], &a[i*lda], &b[0], n, k, lda, ldb, ldc, accum, beta)
		}
		for ; i < m; i++ {
			sgemm1AVX512(&c[i*ldc], &a[i*lda], &b[0], n, k, ldb, accum, beta)
		}
		return true
	}
	for ; i+4 <= m; i += 4 {
		sgemm4AVX2(&c[i*ldc], &a[i*lda], &b[0], n, k, lda, ldb, ldc, accum, beta)
	}
	for ; i < m; i++ {
		sgemm1AVX2(&c[i*ldc], &a[i*lda], &b[0], n, k, ldb, accum, beta)
	}
	return true
}
