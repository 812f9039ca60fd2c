//go:build openblas

package model

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

import "unsafe"

// SGEMMBackend names the matrix-multiply implementation this build uses.
const SGEMMBackend = "openblas"

func init() {
	// Parallelism comes from running images on separate goroutines; OpenBLAS's
	// own threads would fight them for the same cores.
	C.openblas_set_num_threads(1)
}

// sgemm computes C = A·B + beta·C with optional transposes, row-major, with
// OpenBLAS (libopenblas-dev).
func sgemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans), C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans)
	if tA {
		ta = C.CblasTrans
	}
	if tB {
		tb = C.CblasTrans
	}
	C.cblas_sgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k), 1,
		(*C.float)(unsafe.Pointer(&a[0])), C.blasint(lda), (*C.float)(unsafe.Pointer(&b[0])), C.blasint(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}

// sgemmTransposes reports whether sgemm takes transposed operands at no
// extra cost: OpenBLAS reads transposed operands in place.
const sgemmTransposes = true
