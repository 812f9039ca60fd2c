package vec

import "golang.org/x/sys/cpu"

var (
	useAVX2 = cpu.X86.HasAVX2
	hasFMA  = cpu.X86.HasFMA
)

//go:noescape
func addReLUAVX2(dst, src *float32, n int, b float32)

//go:noescape
func poolAddReLUAVX2(out, r0, r1 *float32, n int, b float32)

//go:noescape
func interleaveAddReLURowsAVX2(dst, p0, p1 *float32, rows, n, dstStride, srcStride int, b float32)

//go:noescape
func copyRowsAVX2(dst, src *float32, rows, n, dstStride, srcStride int)

//go:noescape
func sgemm4AVX2(c, a, b *float32, n, k, lda, ldb, ldc, accum int, beta float32)

//go:noescape
func sgemm1AVX2(c, a, b *float32, n, k, ldb, accum int, beta float32)
