//go:build !openblas

package model

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/aeserve/aeserve/internal/vec"
)

// SGEMMBackend names the matrix-multiply implementation this build uses:
// "go" is vec's AVX2 kernels for untransposed products with gonum for the
// rest (and for everything on CPUs without AVX2 and FMA), "gonum" gonum
// alone.
var SGEMMBackend = func() string {
	if vec.Sgemm(1, 1, 1, []float32{0}, 1, []float32{0}, 1, 0, []float32{0}, 1) {
		return "go"
	}
	return "gonum"
}()

// sgemm computes C = A·B + beta·C with optional transposes, row-major.
// The default build is pure Go; build with -tags openblas for OpenBLAS
// through cgo. Every product of the forward pass is untransposed and takes
// vec's kernel (about 7× gonum's on this model's shapes); the gradients'
// transposed products use gonum.
func sgemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if !tA && !tB && vec.Sgemm(m, n, k, a, lda, b, ldb, beta, c, ldc) {
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	if tA {
		ta = blas.Trans
	}
	if tB {
		tb = blas.Trans
	}
	blas32.Implementation().Sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
}
