package digit

import (
	"bytes"
	"image"
	"image/png"
	"math"
	"testing"
)

// Each image lands in its cell, row after row, as EncodePNG would write it
// alone; the cells past the last image are black.
func TestEncodeGridPlacesEachImage(t *testing.T) {
	for _, tc := range []struct{ n, cols, w, h int }{
		{1, 8, 28, 28},
		{3, 8, 84, 28},
		{8, 8, 224, 28},
		{10, 8, 224, 56},
		{64, 8, 224, 224},
		{5, 2, 56, 84},
	} {
		px := make([]float32, tc.n*pixels)
		for k := 0; k < tc.n; k++ {
			for i := 0; i < pixels; i++ {
				px[k*pixels+i] = float32((k*31+i)%256) / 255
			}
		}
		b, err := EncodeGrid(px, tc.n, tc.cols)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		g, ok := img.(*image.Gray)
		if !ok || g.Bounds() != image.Rect(0, 0, tc.w, tc.h) {
			t.Fatalf("n=%d cols=%d: %T %v, want %d×%d grey", tc.n, tc.cols, img, img.Bounds(), tc.w, tc.h)
		}
		cols := min(tc.cols, tc.n)
		for k := 0; k < (tc.w/side)*(tc.h/side); k++ {
			var one []byte
			if k < tc.n {
				alone, err := EncodePNG(px[k*pixels : (k+1)*pixels])
				if err != nil {
					t.Fatal(err)
				}
				a, _ := png.Decode(bytes.NewReader(alone))
				one = a.(*image.Gray).Pix
			} else {
				one = make([]byte, pixels)
			}
			x0, y0 := (k%cols)*side, (k/cols)*side
			for y := 0; y < side; y++ {
				got := g.Pix[(y0+y)*g.Stride+x0 : (y0+y)*g.Stride+x0+side]
				if !bytes.Equal(got, one[y*side:(y+1)*side]) {
					t.Fatalf("n=%d cols=%d: cell %d row %d differs", tc.n, tc.cols, k, y)
				}
			}
		}
	}
}

func TestEncodeGridRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		px      []float32
		n, cols int
	}{
		{make([]float32, pixels), 0, 8},
		{make([]float32, pixels), 1, 0},
		{make([]float32, pixels+1), 1, 8},
		{append(make([]float32, pixels-1), float32(math.NaN())), 1, 8},
	} {
		if _, err := EncodeGrid(tc.px, tc.n, tc.cols); err == nil {
			t.Errorf("n=%d cols=%d, %d pixels: accepted", tc.n, tc.cols, len(tc.px))
		}
	}
}
