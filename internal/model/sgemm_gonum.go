//go:build !openblas

package model

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/aeserve/aeserve/internal/vec"
)

// SGEMMBackend names the matrix-multiply implementation this build uses:
// "go" is vec's kernels for every product (a transposed operand is first
// copied out untransposed), "gonum" gonum alone, on CPUs vec has no kernel
// for.
var SGEMMBackend = func() string {
	if vec.HasSgemm() {
		return "go"
	}
	return "gonum"
}()

// packBufs holds the untransposed copies of transposed operands, reused
// across calls and goroutines.
var packBufs = sync.Pool{New: func() any { return new([]float32) }}

// sgemm computes C = A·B + beta·C with optional transposes, row-major.
// The default build is pure Go; build with -tags openblas for OpenBLAS
// through cgo. Every product takes vec's kernel (about 7× gonum's on this
// model's shapes, more with AVX-512): a transposed operand, which only the
// gradients have, is copied into a reused buffer in the layout the kernel
// reads, which costs one pass over it against the k-fold reuse the product
// makes of it.
func sgemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if !vec.HasSgemm() { // checked per call: vec.Use may have chosen the portable path
		ta, tb := blas.NoTrans, blas.NoTrans
		if tA {
			ta = blas.Trans
		}
		if tB {
			tb = blas.Trans
		}
		blas32.Implementation().Sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if m <= 0 || n <= 0 || k <= 0 || (!tA && !tB) {
		vec.Sgemm(m, n, k, a, lda, b, ldb, beta, c, ldc)
		return
	}
	var pa, pb *[]float32
	if tA { // a is k×m: copy it out as m×k
		pa = packBufs.Get().(*[]float32)
		a, lda = transposeInto(pa, a, lda, k, m), k
	}
	if tB { // b is n×k: copy it out as k×n
		pb = packBufs.Get().(*[]float32)
		b, ldb = transposeInto(pb, b, ldb, n, k), n
	}
	vec.Sgemm(m, n, k, a, lda, b, ldb, beta, c, ldc)
	if pa != nil {
		packBufs.Put(pa)
	}
	if pb != nil {
		packBufs.Put(pb)
	}
}

// transposeInto writes the rows×cols matrix src (row stride ld) into *buf,
// grown if need be, as a dense cols×rows matrix, and returns it.
func transposeInto(buf *[]float32, src []float32, ld, rows, cols int) []float32 {
	if cap(*buf) < rows*cols {
		*buf = make([]float32, rows*cols)
	}
	dst := (*buf)[:rows*cols]
	transposeStrided(dst, rows, src, ld, rows, cols)
	return dst
}

// sgemmTransposes reports whether sgemm takes transposed operands at no
// extra cost: vec's kernel takes untransposed operands only: a transposed one costs a copy.
const sgemmTransposes = false
