package digit

import (
	"bytes"
	"image"
	"math"
)

// EncodeGrid writes n 28×28 images (n×784 pixels, one after another) as one
// 8-bit grey PNG: side by side, cols to a row, row after row, with the rest
// of the last row black. Pixels are written as EncodePNG writes them, and
// MNIST's black border around each digit keeps neighbours apart, so no gap
// is drawn. It is what a client shows of a set of generated digits.
func EncodeGrid(px []float32, n, cols int) ([]byte, error) {
	if n < 1 || cols < 1 || len(px) != n*pixels {
		return nil, errorf(KindSize, "got %d pixels for %d images in %d columns, want %d", len(px), n, cols, n*pixels)
	}
	cols = min(cols, n)
	rows := (n + cols - 1) / cols
	img := image.NewGray(image.Rect(0, 0, cols*side, rows*side))
	for k := 0; k < n; k++ {
		x0, y0 := (k%cols)*side, (k/cols)*side
		for y := 0; y < side; y++ {
			row := img.Pix[(y0+y)*img.Stride+x0:]
			for x, v := range px[k*pixels+y*side : k*pixels+(y+1)*side] {
				if v != v {
					return nil, errorf(KindMalformed, "image %d: pixel %d is NaN", k, y*side+x)
				}
				row[x] = uint8(math.Round(float64(min(max(v, 0), 1)) * 255))
			}
		}
	}
	var buf bytes.Buffer
	if err := encoder.Encode(&buf, img); err != nil {
		return nil, errorf(KindMalformed, "encoding PNG: %v", err)
	}
	return buf.Bytes(), nil
}
