// Package vec holds the vector kernels of the layer epilogues (bias, ReLU,
// σ, pooling, the interleaving of transposed-convolution phases), of the
// training graph's backward pass (train.go, transpose.go), the pure-Go
// build's SGEMM and gathered convolution products, and the int8 products,
// each with its portable Go form, on the path chosen at run time (path.go).
package vec

import "math"

// At batch 1 these epilogues took over half of a pass as scalar Go, more
// than the GEMMs. On amd64 with AVX2 they run as assembly (vec_amd64.s, and
// with AVX-512 vec512_amd64.s for pooling and interleaving, in a
// package of its own because Go assembly cannot sit beside the cgo OpenBLAS
// binding); the Go versions are the portable path and the reference the
// assembly is tested against, bit for bit for every input but NaN. (For
// NaN the assembly gives +0, where the Go code keeps a positive NaN; the
// layers never see one: inputs and weights are checked finite.)
//
// Every kernel computes relu(v + b) as max(v+b, +0), so −0 becomes +0, and
// pools before adding the bias: relu(max(…) + b) = max(relu(… + b)) exactly,
// because rounded addition and relu are both monotone.

// AddReLU sets dst[i] = relu(src[i] + b) for i < len(src). dst may be src.
func AddReLU(dst, src []float32, b float32) {
	if len(src) == 0 {
		return
	}
	_ = dst[len(src)-1]
	if level >= lvlAVX2 {
		addReLUAVX2(&dst[0], &src[0], len(src), b)
		return
	}
	addReLUGo(dst, src, b)
}

// PoolAddReLURows sets out[r·outStride + j] = relu(max(a[2j], a[2j+1],
// c[2j], c[2j+1]) + b) for r < rows and j < n, where a and c are input
// rows 2r and 2r+1 (in[2r·inStride:] and in[(2r+1)·inStride:]): a 2×2 max
// pool of a plane, then bias and ReLU. One call a plane, not a row: the
// model's rows are 7 or 14 values, and per-row calls had cost as much as
// the pooling.
func PoolAddReLURows(out, in []float32, rows, n, outStride, inStride int, b float32) {
	if rows <= 0 || n <= 0 {
		return
	}
	_, _ = in[(2*rows-1)*inStride+2*n-1], out[(rows-1)*outStride+n-1]
	switch {
	case level >= lvlAVX512:
		poolAddReLURowsAVX512(&out[0], &in[0], rows, n, outStride, inStride, b)
		return
	case level >= lvlAVX2:
		poolAddReLURowsAVX2(&out[0], &in[0], rows, n, outStride, inStride, b)
		return
	}
	for r := 0; r < rows; r++ {
		poolAddReLUGo(out[r*outStride:][:n], in[2*r*inStride:], in[(2*r+1)*inStride:], b)
	}
}

// InterleaveAddReLU sets dst[2q] = relu(p0[q] + b) and dst[2q+1] =
// relu(p1[q] + b) for q < n, for rows rows: row r reads p0 and p1 from
// r·srcStride and writes dst from r·dstStride. That is two column phases of
// a transposed convolution merged into its output rows, a whole plane per
// call.
func InterleaveAddReLU(dst, p0, p1 []float32, rows, n, dstStride, srcStride int, b float32) {
	if rows <= 0 || n <= 0 {
		return
	}
	_, _ = p0[(rows-1)*srcStride+n-1], p1[(rows-1)*srcStride+n-1]
	_ = dst[(rows-1)*dstStride+2*n-1]
	switch {
	case level >= lvlAVX512:
		interleaveAddReLURowsAVX512(&dst[0], &p0[0], &p1[0], rows, n, dstStride, srcStride, b)
		return
	case level >= lvlAVX2:
		interleaveAddReLURowsAVX2(&dst[0], &p0[0], &p1[0], rows, n, dstStride, srcStride, b)
		return
	}
	for r := 0; r < rows; r++ {
		interleaveAddReLUGo(dst[r*dstStride:], p0[r*srcStride:][:n], p1[r*srcStride:], b)
	}
}

// CopyRows copies rows rows of n values: row r from src[r·srcStride:] to
// dst[r·dstStride:]. It is how an image gets into a padded buffer: one call
// per plane instead of one copy per short row.
func CopyRows(dst, src []float32, rows, n, dstStride, srcStride int) {
	if rows <= 0 || n <= 0 {
		return
	}
	_, _ = src[(rows-1)*srcStride+n-1], dst[(rows-1)*dstStride+n-1]
	if level >= lvlAVX2 { // AVX-512's masked moves measured slower here (BenchmarkEpilogues)
		copyRowsAVX2(&dst[0], &src[0], rows, n, dstStride, srcStride)
		return
	}
	for r := 0; r < rows; r++ {
		copy(dst[r*dstStride:][:n], src[r*srcStride:][:n])
	}
}

// ReLU is max(v, +0) without a branch: about half of the activations are
// negative, so a branch would mispredict on every other element.
func ReLU(v float32) float32 {
	b := math.Float32bits(v)
	return math.Float32frombits(b &^ uint32(int32(b)>>31))
}

func addReLUGo(dst, src []float32, b float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = ReLU(v + b)
	}
}

func poolAddReLUGo(out, r0, r1 []float32, b float32) {
	r0, r1 = r0[:2*len(out)], r1[:2*len(out)]
	for j := range out {
		out[j] = ReLU(max(r0[2*j], r0[2*j+1], r1[2*j], r1[2*j+1]) + b)
	}
}

func interleaveAddReLUGo(dst, p0, p1 []float32, b float32) {
	p1, dst = p1[:len(p0)], dst[:2*len(p0)]
	for q, v := range p0 {
		dst[2*q] = ReLU(v + b)
		dst[2*q+1] = ReLU(p1[q] + b)
	}
}
