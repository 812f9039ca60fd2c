package plot

import (
	"bytes"
	"image"
	"image/color"
	"math"
	"strings"
	"testing"
)

func TestTileGrid(t *testing.T) {
	ramp := func(n, size int) []float32 {
		v := make([]float32, n*size)
		for i := range v {
			v[i] = float32(i%size) / float32(size-1)
		}
		return v
	}
	tests := []struct {
		name                     string
		tiles                    []float32
		n, tw, th, cols, sc, gap int
		w, h                     int
		wantErr                  string
	}{
		{name: "32 kernels", tiles: ramp(32, 9), n: 32, tw: 3, th: 3, cols: 8, sc: 12, gap: 6, w: 8*42 - 6, h: 4*42 - 6},
		{name: "partial last row", tiles: ramp(5, 784), n: 5, tw: 28, th: 28, cols: 4, sc: 1, gap: 2, w: 4*30 - 2, h: 2*30 - 2},
		{name: "fewer than cols", tiles: ramp(3, 784), n: 3, tw: 28, th: 28, cols: 16, sc: 2, gap: 2, w: 3*58 - 2, h: 56},
		{name: "one pixel", tiles: []float32{1}, n: 1, tw: 1, th: 1, cols: 1, sc: 1, w: 1, h: 1},
		{name: "no tiles", n: 0, tw: 3, th: 3, cols: 1, sc: 1, wantErr: "no tiles"},
		{name: "short", tiles: ramp(2, 9)[:10], n: 2, tw: 3, th: 3, cols: 1, sc: 1, wantErr: "10 values for 2 tiles"},
		{name: "no columns", tiles: ramp(2, 9), n: 2, tw: 3, th: 3, cols: 0, sc: 1, wantErr: "0 columns"},
		{name: "negative gap", tiles: ramp(2, 9), n: 2, tw: 3, th: 3, cols: 1, sc: 1, gap: -1, wantErr: "gap of -1"},
		{name: "no gap", tiles: ramp(4, 9), n: 4, tw: 3, th: 3, cols: 2, sc: 1, w: 6, h: 6},
		{name: "empty tile", n: 1, tw: 0, th: 3, cols: 1, sc: 1, wantErr: "tiles of 0×3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := TileGrid(&buf, tt.tiles, tt.n, tt.tw, tt.th, tt.cols, tt.sc, tt.gap)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			saveForInspection(t, "tiles-"+tt.name+".png", buf.Bytes())
			g, ok := decodePNG(t, buf.Bytes()).(*image.Paletted)
			if !ok {
				t.Fatal("not a paletted PNG")
			}
			if b := g.Bounds(); b.Dx() != tt.w || b.Dy() != tt.h {
				t.Fatalf("size %v, want %dx%d", b.Size(), tt.w, tt.h)
			}
			// The first tile's first pixel is 0 (black) and its last 1
			// (white), each enlarged to scale×scale.
			if tt.tw*tt.th > 1 {
				last := (tt.th-1)*tt.sc + tt.sc - 1
				if !colorEq(g.At(tt.sc-1, tt.sc-1), color.Black) || !colorEq(g.At((tt.tw-1)*tt.sc, last), color.White) {
					t.Error("the first tile is not drawn where it belongs")
				}
			}
		})
	}
}

func TestTileGridGapsAndEmptyCells(t *testing.T) {
	var buf bytes.Buffer
	tiles := []float32{0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1}
	if err := TileGrid(&buf, tiles, 3, 2, 2, 2, 1, 2); err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, buf.Bytes())
	// Two columns of 2×2 tiles with a 2-pixel gap: the gap runs along x 2–3
	// and y 2–3, and the empty fourth cell starts at (4, 4).
	for _, p := range [][2]int{{2, 0}, {3, 5}, {0, 2}, {5, 3}, {4, 4}, {5, 5}} {
		if c := img.At(p[0], p[1]); !colorEq(c, TileGridGap) {
			t.Errorf("pixel %v = %v, want the gap colour", p, c)
		}
	}
	for _, tc := range []struct {
		x, y int
		want color.Color
	}{{0, 0, color.Black}, {4, 1, color.RGBA{128, 128, 128, 255}}, {1, 5, color.White}} {
		if c := img.At(tc.x, tc.y); !colorEq(c, tc.want) {
			t.Errorf("pixel (%d,%d) = %v, want %v", tc.x, tc.y, c, tc.want)
		}
	}
}

func TestNormalise(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	got, err := Normalise([]float32{-2, 0, 2, 5, 5, 5, nan, 1, 3, nan, nan, inf}, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 0.5, 1, 0.5, 0.5, 0.5, 0.5, 0, 1, 0.5, 0.5, 0.5}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Normalise = %v, want %v", got, want)
		}
	}
	if _, err := Normalise(make([]float32, 10), 3); err == nil {
		t.Error("10 values in 3 parts accepted")
	}
	if _, err := Normalise(nil, 0); err == nil {
		t.Error("0 parts accepted")
	}
}
