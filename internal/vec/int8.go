package vec

import (
	"fmt"
	"math"
)

// Integer GEMMs for int8 inference (AVX-512 VNNI's VPDPBUSD: unsigned bytes
// times signed bytes, four adjacent products summed into an int32 lane).
//
// Both products compute C[m×n] (row stride ldc) = A·B over k = 4·nkb
// values, nkb = len(boff), with the operands laid out for the instruction:
//
//   - A is a panel: blocks of 4 rows, each [nkb][4 rows][4 k-values] bytes,
//     so that one int32 load gives a row's 4 k-values for a broadcast, and
//     the 4 rows' values for one k-block are 16 adjacent bytes. m must be a
//     multiple of 4 (pad A with zero rows and C with room for them).
//   - B is gathered: k-block kb starts at byte boff[kb] of b, and column j
//     of that block is the 4 bytes at boff[kb]+4j ([k/4][n][4] when boff is
//     kb·4n, or 9 shifted views of one padded image for a 3×3 convolution).
//
// Sums are exact int32 arithmetic (wrapping on overflow, in the assembly
// and in the portable loop alike), so the two agree bit for bit.

// PanelLen is the bytes of an A panel of m rows (rounded up to 4) by nkb
// k-blocks.
func PanelLen(m, nkb int) int { return (m + 3) / 4 * 4 * nkb * 4 }

// PanelIndex is the byte of an A panel holding row r, k-value k.
func PanelIndex(r, k, nkb int) int {
	return ((r/4*nkb+k/4)*4+r%4)*4 + k%4
}

// GemmS8U8Scaled computes C = A·B with A signed (the weights of a
// convolution) and B unsigned (its activations), giving float32: row r of
// the int32 sums is converted to float32 and multiplied by scale[r]
// (len(scale) ≥ m), without an int32 matrix in between.
func GemmS8U8Scaled(c []float32, ldc int, a []int8, b []uint8, boff []int32, m, n int, scale []float32) {
	if !checkInt8(len(c), ldc, len(a), len(b), boff, m, n) {
		return
	}
	_ = scale[m-1]
	if useVNNI {
		gemmS8U8F32VNNI(&c[0], ldc, &a[0], &b[0], &boff[0], len(boff), m, n, &scale[0])
		return
	}
	nkb := len(boff)
	for r := 0; r < m; r++ {
		row := c[r*ldc:][:n]
		av := a[(r/4*nkb*4+r%4)*4:]
		for j := range row {
			var s int32
			for kb, o := range boff {
				x, q := av[kb*16:][:4], b[int(o)+4*j:][:4]
				s += int32(x[0])*int32(q[0]) + int32(x[1])*int32(q[1]) + int32(x[2])*int32(q[2]) + int32(x[3])*int32(q[3])
			}
			row[j] = float32(s) * scale[r]
		}
	}
}

// GemmU8S8 computes C = A·B with A unsigned (a dense layer's activations,
// one row per item) and B signed (its weights).
func GemmU8S8(c []int32, ldc int, a []uint8, b []int8, boff []int32, m, n int) {
	if !checkInt8(len(c), ldc, len(a), len(b), boff, m, n) {
		return
	}
	if useVNNI {
		gemmU8S8VNNI(&c[0], ldc, &a[0], &b[0], &boff[0], len(boff), m, n)
		return
	}
	gemmInt8Go(c, ldc, a, b, boff, m, n)
}

// checkInt8 validates the operands' sizes, so that the assembly never reads
// or writes out of bounds; it reports whether there is anything to compute.
func checkInt8(lc, ldc, la, lb int, boff []int32, m, n int) bool {
	if m <= 0 || n <= 0 {
		return false
	}
	if m%4 != 0 || ldc < n || lc < (m-1)*ldc+n || len(boff) == 0 || la < PanelLen(m, len(boff)) {
		panic(fmt.Sprintf("vec: int8 gemm: m=%d n=%d ldc=%d len(c)=%d nkb=%d len(a)=%d", m, n, ldc, lc, len(boff), la))
	}
	for kb, o := range boff {
		if o < 0 || int(o)+4*n > lb {
			panic(fmt.Sprintf("vec: int8 gemm: k-block %d at byte %d, %d columns, but len(b)=%d", kb, o, n, lb))
		}
	}
	return true
}

// gemmInt8Go is the portable product and the assembly's reference.
func gemmInt8Go[A, B int8 | uint8](c []int32, ldc int, a []A, b []B, boff []int32, m, n int) {
	nkb := len(boff)
	for r := 0; r < m; r++ {
		row := c[r*ldc:][:n]
		base := (r/4*nkb*4 + r%4) * 4
		clear(row)
		for kb, o := range boff {
			av := a[base+kb*16:][:4]
			a0, a1, a2, a3 := int32(av[0]), int32(av[1]), int32(av[2]), int32(av[3])
			bv := b[o:][:4*n]
			for j := range row {
				q := bv[4*j:][:4]
				row[j] += a0*int32(q[0]) + a1*int32(q[1]) + a2*int32(q[2]) + a3*int32(q[3])
			}
		}
	}
}

// Int8Accelerated reports whether the int8 products run the AVX-512 VNNI
// assembly.
func Int8Accelerated() bool { return useVNNI }

// SetInt8Accelerated turns the assembly off (or back on, where the CPU has
// it) and returns the previous setting: for tests that hold the portable
// path and the assembly to the same results. Not safe to call while
// products run.
func SetInt8Accelerated(on bool) bool {
	prev := useVNNI
	useVNNI = on && hasVNNI
	return prev
}

// MaxPositive is the largest of 0 and x's values (NaN is never the
// largest): an activation scale's numerator.
func MaxPositive(x []float32) float32 {
	if useVNNI && len(x) > 0 {
		return maxPosVNNI(&x[0], len(x))
	}
	var m float32
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	return m
}

// QuantU8 is v·inv rounded to the nearest of 0…255, ties to even (as the
// conversion instruction rounds); below 0 and NaN give 0.
func QuantU8(v, inv float32) uint8 {
	v *= inv
	if !(v > 0) {
		return 0
	}
	return uint8(math.RoundToEven(float64(min(v, 255))))
}

// QuantU8x4 quantises four rows of n values, src[c·stride+j] for c < 4,
// interleaved: dst[4j+c] = QuantU8(src[c·stride+j], inv). These are four
// channels of a row of an image, as the int8 convolutions lay them out.
func QuantU8x4(dst []uint8, src []float32, stride, n int, inv float32) {
	if n <= 0 {
		return
	}
	_, _ = dst[4*n-1], src[3*stride+n-1]
	if useVNNI {
		quantU8x4VNNI(&dst[0], &src[0], stride, n, inv)
		return
	}
	for j := 0; j < n; j++ {
		d := dst[4*j:][:4]
		d[0], d[1], d[2], d[3] = QuantU8(src[j], inv), QuantU8(src[stride+j], inv), QuantU8(src[2*stride+j], inv), QuantU8(src[3*stride+j], inv)
	}
}
