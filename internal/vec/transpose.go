package vec

// Transpose sets dst[j·dstStride + i] = src[i·srcStride + j·step] for
// i < rows and j < cols, with step 1 or 2 (every other column: one phase of
// a transposed convolution's output). Training lays each image's output
// gradient out position-major with it, so that the filter gradient is an
// untransposed product; as a scalar loop that layout took a tenth of a
// training step.
func Transpose(dst []float32, dstStride int, src []float32, srcStride, rows, cols, step int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	if step != 1 && step != 2 {
		panic("vec.Transpose: step is 1 or 2")
	}
	_, _ = src[(rows-1)*srcStride+(cols-1)*step], dst[(cols-1)*dstStride+rows-1]
	i := 0
	if level >= lvlAVX2 {
		for ; i+8 <= rows; i += 8 {
			transpose8AVX2(&dst[i], &src[i*srcStride], cols, dstStride, srcStride, step)
		}
	}
	for ; i < rows; i++ {
		row := src[i*srcStride:]
		for j := 0; j < cols; j++ {
			dst[j*dstStride+i] = row[j*step]
		}
	}
}

// CopyRowsStride2 sets dst[r·dstStride + q] = src[r·srcStride + 2q] for
// r < rows and q < n: every other value of each row, as a transposed
// convolution's output gradient is split into its column phases.
func CopyRowsStride2(dst, src []float32, rows, n, dstStride, srcStride int) {
	if rows <= 0 || n <= 0 {
		return
	}
	_, _ = src[(rows-1)*srcStride+2*(n-1)], dst[(rows-1)*dstStride+n-1]
	if level >= lvlAVX2 {
		copyRowsStride2AVX2(&dst[0], &src[0], rows, n, dstStride, srcStride)
		return
	}
	for r := 0; r < rows; r++ {
		s, d := src[r*srcStride:], dst[r*dstStride:][:n]
		for q := range d {
			d[q] = s[2*q]
		}
	}
}
