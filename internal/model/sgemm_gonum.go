//go:build !openblas

package model

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// SGEMMBackend names the matrix-multiply implementation this build uses.
const SGEMMBackend = "gonum"

// sgemm computes C = A·B + beta·C with optional transposes, row-major.
// The default build is pure Go (gonum); build with -tags openblas for
// OpenBLAS through cgo.
func sgemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := blas.NoTrans, blas.NoTrans
	if tA {
		ta = blas.Trans
	}
	if tB {
		tb = blas.Trans
	}
	blas32.Implementation().Sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
}
