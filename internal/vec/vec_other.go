//go:build !amd64

package vec

const best = lvlGo

func addReLUAVX2(dst, src *float32, n int, b float32) { panic("unreachable") }
func interleaveAddReLURowsAVX2(dst, p0, p1 *float32, rows, n, dstStride, srcStride int, b float32) {
	panic("unreachable")
}

func copyRowsAVX2(dst, src *float32, rows, n, dstStride, srcStride int) { panic("unreachable") }

func sgemm4AVX2(c, a, b *float32, n, k, lda, ldb, ldc, accum int, beta float32) { panic("unreachable") }
func sgemm1AVX2(c, a, b *float32, n, k, ldb, accum int, beta float32)           { panic("unreachable") }
func sgemm4AVX512(c, a, b *float32, n, k, lda, ldb, ldc, accum int, beta float32) {
	panic("unreachable")
}
func sgemm1AVX512(c, a, b *float32, n, k, ldb, accum int, beta float32) { panic("unreachable") }

func gemmGather4AVX512(c, a, b *float32, off *int, n, k, lda, ldc int) { panic("unreachable") }
func gemmGather1AVX512(c, a, b *float32, off *int, n, k int)           { panic("unreachable") }
func gemmGather4AVX2(c, a, b *float32, off *int, n, k, lda, ldc int)   { panic("unreachable") }
func gemmGather1AVX2(c, a, b *float32, off *int, n, k int)             { panic("unreachable") }

func addSigmoidAVX2(dst, src *float32, n int, b float32) { panic("unreachable") }

func interleaveAddReLURowsAVX512(dst, p0, p1 *float32, rows, n, dstStride, srcStride int, b float32) {
	panic("unreachable")
}

func poolAddReLURowsAVX2(out, in *float32, rows, n, outStride, inStride int, b float32) {
	panic("unreachable")
}
func poolAddReLURowsAVX512(out, in *float32, rows, n, outStride, inStride int, b float32) {
	panic("unreachable")
}

func transpose8AVX2(dst, src *float32, cols, dstStride, srcStride, step int) { panic("unreachable") }

func maxPool2GradAVX2(x, dy, dx *float32, rows, n int, relu bool) { panic("unreachable") }
func sumAVX2(v *float32, n int) float32                           { panic("unreachable") }
func reluGradAVX2(dst, y, dy *float32, n int)                     { panic("unreachable") }

func copyRowsStride2AVX2(dst, src *float32, rows, n, dstStride, srcStride int) { panic("unreachable") }
