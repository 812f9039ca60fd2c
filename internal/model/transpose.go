package model

// transposeStrided writes the rows×cols matrix src (row stride lds) into
// dst as cols×rows (row stride ldd): dst[c·ldd+r] = src[r·lds+c]. It works
// in square tiles so that both sides stay in cache.
func transposeStrided(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	const t = 16
	if rows <= 0 || cols <= 0 {
		return
	}
	_, _ = src[(rows-1)*lds+cols-1], dst[(cols-1)*ldd+rows-1]
	for r0 := 0; r0 < rows; r0 += t {
		r1 := min(r0+t, rows)
		for c0 := 0; c0 < cols; c0 += t {
			c1 := min(c0+t, cols)
			for r := r0; r < r1; r++ {
				row := src[r*lds+c0 : r*lds+c1]
				for j, v := range row {
					dst[(c0+j)*ldd+r] = v
				}
			}
		}
	}
}
