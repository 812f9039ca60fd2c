package vec

import "golang.org/x/sys/cpu"

// best is the fastest path this CPU runs. The AVX-512 SGEMM needs F for the
// arithmetic, BW for 64-bit mask moves and BMI2 for the tail masks.
var best = func() int {
	x := cpu.X86
	switch {
	case x.HasAVX2 && x.HasFMA && x.HasAVX512F && x.HasAVX512BW && x.HasBMI2:
		return lvlAVX512
	case x.HasAVX2 && x.HasFMA:
		return lvlAVX2
	}
	return lvlGo
}()

//go:noescape
func addReLUAVX2(dst, src *float32, n int, b float32)

//go:noescape
func interleaveAddReLURowsAVX2(dst, p0, p1 *float32, rows, n, dstStride, srcStride int, b float32)

//go:noescape
func copyRowsAVX2(dst, src *float32, rows, n, dstStride, srcStride int)

//go:noescape
func sgemm4AVX2(c, a, b *float32, n, k, lda, ldb, ldc, accum int, beta float32)

//go:noescape
func sgemm1AVX2(c, a, b *float32, n, k, ldb, accum int, beta float32)

//go:noescape
func sgemm4AVX512(c, a, b *float32, n, k, lda, ldb, ldc, accum int, beta float32)

//go:noescape
func sgemm1AVX512(c, a, b *float32, n, k, ldb, accum int, beta float32)

//go:noescape
func gemmGather4AVX512(c, a, b *float32, off *int, n, k, lda, ldc int)

//go:noescape
func gemmGather1AVX512(c, a, b *float32, off *int, n, k int)

//go:noescape
func gemmGather4AVX2(c, a, b *float32, off *int, n, k, lda, ldc int)

//go:noescape
func gemmGather1AVX2(c, a, b *float32, off *int, n, k int)

//go:noescape
func addSigmoidAVX2(dst, src *float32, n int, b float32)

//go:noescape
func interleaveAddReLURowsAVX512(dst, p0, p1 *float32, rows, n, dstStride, srcStride int, b float32)

//go:noescape
func poolAddReLURowsAVX2(out, in *float32, rows, n, outStride, inStride int, b float32)

//go:noescape
func poolAddReLURowsAVX512(out, in *float32, rows, n, outStride, inStride int, b float32)

//go:noescape
func transpose8AVX2(dst, src *float32, cols, dstStride, srcStride, step int)

//go:noescape
func maxPool2GradAVX2(x, dy, dx *float32, rows, n int, relu bool)

//go:noescape
func sumAVX2(v *float32, n int) float32

//go:noescape
func reluGradAVX2(dst, y, dy *float32, n int)

//go:noescape
func copyRowsStride2AVX2(dst, src *float32, rows, n, dstStride, srcStride int)
