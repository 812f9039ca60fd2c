package plot

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
)

// TileGridGap is the colour between TileGrid's tiles: not a grey, so that
// it cannot be mistaken for a weight.
var TileGridGap = color.RGBA{173, 199, 232, 255}

// tilePalette is 255 greys, black to white, then the gap colour.
var tilePalette = func() color.Palette {
	p := make(color.Palette, 0, 256)
	for i := range 255 {
		v := uint8((i*255 + 127) / 254)
		p = append(p, color.RGBA{v, v, v, 255})
	}
	return append(p, TileGridGap)
}()

const tileGapIndex = 255

// TileGrid draws n tiles of tw×th values each (row-major, one tile after
// another in tiles, values in [0,1]: below 0 and NaN draw black, above 1
// white) in 255 levels of grey as a paletted PNG: cols tiles to a row, each
// pixel enlarged to scale×scale, with gap pixels of TileGridGap between
// tiles and none around the edge. The last row may be partly empty; its
// empty cells are the gap colour too. So the PNG is cols·(tw·scale+gap)−gap
// by rows·(th·scale+gap)−gap pixels, rows = ⌈n/cols⌉ (cols is lowered to n
// when n is smaller).
func TileGrid(w io.Writer, tiles []float32, n, tw, th, cols, scale, gap int) error {
	switch {
	case n < 1:
		return errors.New("plot: tile grid: no tiles")
	case tw < 1 || th < 1:
		return fmt.Errorf("plot: tile grid: tiles of %d×%d pixels", tw, th)
	case cols < 1 || scale < 1 || gap < 0:
		return fmt.Errorf("plot: tile grid: %d columns at scale %d with a gap of %d", cols, scale, gap)
	case len(tiles) != n*tw*th:
		return fmt.Errorf("plot: tile grid: %d values for %d tiles of %d×%d", len(tiles), n, tw, th)
	}
	cols = min(cols, n)
	rows := (n + cols - 1) / cols
	cw, ch := tw*scale+gap, th*scale+gap
	img := image.NewPaletted(image.Rect(0, 0, cols*cw-gap, rows*ch-gap), tilePalette)
	for i := range img.Pix {
		img.Pix[i] = tileGapIndex
	}
	size := tw * th
	for t := range n {
		tile := tiles[t*size : (t+1)*size]
		x0, y0 := (t%cols)*cw, (t/cols)*ch
		for y := range th {
			for x := range tw {
				v := greyLevel(tile[y*tw+x])
				for dy := range scale {
					off := img.PixOffset(x0+x*scale, y0+y*scale+dy)
					for dx := range scale {
						img.Pix[off+dx] = v
					}
				}
			}
		}
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("plot: tile grid: %w", err)
	}
	return nil
}

// greyLevel is the palette index of value v: round(v·254), clamped.
func greyLevel(v float32) uint8 {
	if !(v > 0) { // also catches NaN
		return 0
	}
	if v >= 1 {
		return 254
	}
	return uint8(math.Round(float64(v) * 254))
}

// Normalise returns each of the n equal parts of v (the tiles of a weight
// image) min-max scaled to [0,1] on its own, so that every filter uses the
// whole grey range whatever its magnitude. A constant part (and one with no
// finite values) becomes 0.5; NaN and ±Inf values become 0.5 and are left
// out of the minimum and maximum. len(v) must be a multiple of n.
func Normalise(v []float32, n int) ([]float32, error) {
	if n < 1 || len(v)%n != 0 {
		return nil, fmt.Errorf("plot: normalise %d values in %d parts", len(v), n)
	}
	out := make([]float32, len(v))
	size := len(v) / n
	for t := range n {
		part, dst := v[t*size:(t+1)*size], out[t*size:(t+1)*size]
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, x := range part {
			if f := float64(x); isFinite(f) {
				lo, hi = min(lo, f), max(hi, f)
			}
		}
		for i, x := range part {
			f := float64(x)
			if !isFinite(f) || !(hi > lo) {
				dst[i] = 0.5
				continue
			}
			dst[i] = float32((f - lo) / (hi - lo))
		}
	}
	return out, nil
}
