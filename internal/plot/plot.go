package plot

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"
	"strings"
)

// Loss curve geometry. The plot area leaves room on the left for y labels and at the bottom for
// x labels and the axis title.
const (
	curveWidth  = 640
	curveHeight = 400

	plotLeft   = 76
	plotRight  = curveWidth - 20
	plotTop    = 36
	plotBottom = curveHeight - 52

	glyphScale = 2              // 3×5 glyphs drawn at 6×10 pixels
	glyphAdv   = 4 * glyphScale // one pixel column of spacing between glyphs
	glyphH     = 5 * glyphScale
	tickLen    = 5
	markerMax  = 40 // above this many epochs point markers only clutter the lines
	legendLine = 22 // length of the line sample in the legend
)

// Palette indices for the loss curve; a paletted image keeps the PNG small.
const (
	cWhite = iota
	cBlack
	cGrid
	cBlue
	cOrange
)

var curvePalette = color.Palette{
	color.RGBA{255, 255, 255, 255},
	color.RGBA{0, 0, 0, 255},
	color.RGBA{225, 225, 225, 255},
	color.RGBA{31, 119, 180, 255}, // the usual "tab:blue" and "tab:orange", which stay
	color.RGBA{255, 127, 14, 255}, // distinguishable for the common colour-vision deficiencies
}

// LossCurve draws the per-epoch training and validation losses (epoch 1 is index 0) as a
// 640×400 PNG: train in blue, validation in orange. Either slice may be empty, not both; NaN
// and ±Inf values are left out and break the line.
func LossCurve(w io.Writer, train, val []float64) error {
	n := max(len(train), len(val))
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range [][]float64{train, val} {
		for _, v := range s {
			if isFinite(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if lo > hi {
		return errors.New("plot: loss curve: no finite values to plot")
	}
	if lo == hi {
		pad := math.Abs(lo) * 0.1
		if pad == 0 {
			pad = 1
		}
		lo, hi = lo-pad, hi+pad
	}
	// A margin keeps the extreme points off the axes, where markers would be half hidden; losses
	// are never negative, so the margin must not make the axis suggest they could be.
	padLo, padHi := lo-0.05*(hi-lo), hi+0.05*(hi-lo)
	if lo >= 0 {
		padLo = max(padLo, 0)
	}
	yStep := niceStep(padHi-padLo, 6)
	yMin, yMax := math.Floor(padLo/yStep)*yStep, math.Ceil(padHi/yStep)*yStep

	// Epochs run from 1. A single epoch is centred, rather than drawn on the y axis.
	xMin, xMax := 1.0, float64(n)
	if n == 1 {
		xMin, xMax = 0.5, 1.5
	}
	xStep := max(1, math.Ceil(niceStep(xMax-xMin, 8)))

	img := image.NewPaletted(image.Rect(0, 0, curveWidth, curveHeight), curvePalette)
	// Index 0 is white, so the background needs no fill.
	px := func(x float64) int {
		return plotLeft + int(math.Round((x-xMin)/(xMax-xMin)*(plotRight-plotLeft)))
	}
	py := func(y float64) int {
		return plotBottom - int(math.Round((y-yMin)/(yMax-yMin)*(plotBottom-plotTop)))
	}

	dec := decimals(yStep)
	for i := 0; ; i++ {
		y := yMin + float64(i)*yStep
		if y > yMax+yStep/2 {
			break
		}
		yy := py(y)
		hline(img, plotLeft, plotRight, yy, cGrid)
		hline(img, plotLeft-tickLen, plotLeft, yy, cBlack)
		label := formatTick(y, dec)
		drawText(img, plotLeft-tickLen-3-textWidth(label), yy-glyphH/2, label, cBlack)
	}
	for x := xStep * math.Ceil(xMin/xStep); x <= xMax+1e-9; x += xStep {
		xx := px(x)
		vline(img, xx, plotTop, plotBottom, cGrid)
		vline(img, xx, plotBottom, plotBottom+tickLen, cBlack)
		label := strconv.Itoa(int(x))
		drawText(img, xx-textWidth(label)/2, plotBottom+tickLen+4, label, cBlack)
	}
	hline(img, plotLeft, plotRight, plotBottom, cBlack)
	vline(img, plotLeft, plotTop, plotBottom, cBlack)
	drawText(img, (plotLeft+plotRight-textWidth("EPOCH"))/2, curveHeight-glyphH-8, "EPOCH", cBlack)
	drawText(img, 8, plotTop-glyphH-10, "LOSS", cBlack)

	series := func(s []float64, c uint8) {
		prevOK := false
		var x0, y0 int
		for i, v := range s {
			if !isFinite(v) {
				prevOK = false
				continue
			}
			x1, y1 := px(float64(i+1)), py(v)
			if prevOK {
				thickLine(img, x0, y0, x1, y1, c)
			}
			// An isolated point would otherwise be invisible.
			if n <= markerMax || !prevOK {
				fillRect(img, x1-2, y1-2, x1+3, y1+3, c)
			}
			x0, y0, prevOK = x1, y1, true
		}
	}
	// Validation second: it is the curve that matters for early stopping.
	series(train, cBlue)
	series(val, cOrange)

	type entry struct {
		name string
		c    uint8
	}
	var legend []entry
	if len(train) > 0 {
		legend = append(legend, entry{"TRAIN", cBlue})
	}
	if len(val) > 0 {
		legend = append(legend, entry{"VAL", cOrange})
	}
	lw := legendLine + 8 + textWidth("TRAIN") + 16
	lh := len(legend)*(glyphH+8) + 8
	lx, ly := plotRight-lw-8, plotTop+8
	fillRect(img, lx, ly, lx+lw, ly+lh, cWhite)
	rect(img, lx, ly, lx+lw, ly+lh, cBlack)
	for i, e := range legend {
		y := ly + 8 + i*(glyphH+8)
		thickLine(img, lx+8, y+glyphH/2, lx+8+legendLine, y+glyphH/2, e.c)
		drawText(img, lx+8+legendLine+8, y, e.name, cBlack)
	}

	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("plot: loss curve: %w", err)
	}
	return nil
}

// Sample grid geometry: MNIST tiles doubled so that a digit is legible at a glance.
const (
	tileScale = 2
	tileGap   = 2
	tileSize  = side * tileScale
	gapGrey   = 128 // mid-grey separates black tiles from each other without matching any ink
)

// SampleGrid draws rows of images as a grid of 28×28 tiles scaled ×2, with a 2-pixel
// mid-grey gap between tiles (none around the edge), as an 8-bit grey PNG. Every row must hold
// the same number k ≥ 1 of 784-pixel images, so the PNG is k·58−2 by len(rows)·58−2 pixels.
// By convention row 0 is the originals, then the noisy inputs if any, and the last row the outputs.
func SampleGrid(w io.Writer, rows [][]float32) error {
	if len(rows) == 0 {
		return errors.New("plot: sample grid: no rows")
	}
	k := len(rows[0]) / imageLen
	for r, row := range rows {
		if len(row) == 0 || len(row)%imageLen != 0 {
			return fmt.Errorf("plot: sample grid: row %d has %d values, not a positive multiple of %d",
				r, len(row), imageLen)
		}
		if len(row)/imageLen != k {
			return fmt.Errorf("plot: sample grid: row %d has %d images, row 0 has %d", r, len(row)/imageLen, k)
		}
	}
	width, height := gridLen(k), gridLen(len(rows))
	img := image.NewGray(image.Rect(0, 0, width, height))
	for i := range img.Pix {
		img.Pix[i] = gapGrey
	}
	for r, row := range rows {
		for c := range k {
			tile := row[c*imageLen : (c+1)*imageLen]
			x0, y0 := c*(tileSize+tileGap), r*(tileSize+tileGap)
			for y := range side {
				for x := range side {
					v := greyByte(tile[y*side+x])
					for dy := range tileScale {
						off := img.PixOffset(x0+x*tileScale, y0+y*tileScale+dy)
						for dx := range tileScale {
							img.Pix[off+dx] = v
						}
					}
				}
			}
		}
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("plot: sample grid: %w", err)
	}
	return nil
}

func gridLen(tiles int) int { return tiles*(tileSize+tileGap) - tileGap }

// greyByte rounds like digit.EncodePNG (round(px*255)) so grids match the served PNGs.
func greyByte(v float32) uint8 {
	if !(v > 0) { // also catches NaN
		return 0
	}
	if v >= 1 {
		return 255
	}
	return uint8(math.Round(float64(v) * 255))
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// niceStep returns a step of 1, 2 or 5 × 10^k giving at most about maxTicks intervals over span.
func niceStep(span float64, maxTicks int) float64 {
	raw := span / float64(maxTicks)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch norm := raw / mag; {
	case norm <= 1:
		return mag
	case norm <= 2:
		return 2 * mag
	case norm <= 5:
		return 5 * mag
	default:
		return 10 * mag
	}
}

// decimals is how many decimals distinguish ticks step apart; -1 asks for exponent notation,
// used when fixed notation would be too long for the left margin.
func decimals(step float64) int {
	d := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	if d > 5 || step >= 1e6 {
		return -1
	}
	return d
}

func formatTick(v float64, dec int) string {
	if math.Abs(v) < 1e-12 {
		v = 0 // avoids "-0.00" from accumulated rounding
	}
	if dec < 0 {
		return strings.ToUpper(strconv.FormatFloat(v, 'g', 3, 64))
	}
	return strconv.FormatFloat(v, 'f', dec, 64)
}

func hline(img *image.Paletted, x0, x1, y int, c uint8) {
	for x := x0; x <= x1; x++ {
		img.SetColorIndex(x, y, c)
	}
}

func vline(img *image.Paletted, x, y0, y1 int, c uint8) {
	for y := y0; y <= y1; y++ {
		img.SetColorIndex(x, y, c)
	}
}

// fillRect fills [x0,x1)×[y0,y1).
func fillRect(img *image.Paletted, x0, y0, x1, y1 int, c uint8) {
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			img.SetColorIndex(x, y, c)
		}
	}
}

func rect(img *image.Paletted, x0, y0, x1, y1 int, c uint8) {
	hline(img, x0, x1, y0, c)
	hline(img, x0, x1, y1, c)
	vline(img, x0, y0, y1, c)
	vline(img, x1, y0, y1, c)
}

// thickLine is Bresenham with a 2×2 pen: one-pixel lines are hard to see and to tell apart by
// colour.
func thickLine(img *image.Paletted, x0, y0, x1, y1 int, c uint8) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		fillRect(img, x0, y0, x0+2, y0+2, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// font3x5 has the glyphs the plot needs: each row is 3 bits, the high bit on the left.
// A tiny hand-made font avoids a dependency on golang.org/x/image just for axis labels.
var font3x5 = map[rune][5]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 7, 1, 7},
	'4': {5, 5, 7, 1, 1}, '5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 1, 1, 1},
	'8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7}, '.': {0, 0, 0, 0, 2}, '-': {0, 0, 7, 0, 0},
	'+': {0, 2, 7, 2, 0}, ' ': {},
	'A': {2, 5, 7, 5, 5}, 'C': {7, 4, 4, 4, 7}, 'E': {7, 4, 7, 4, 7}, 'H': {5, 5, 7, 5, 5},
	'I': {7, 2, 2, 2, 7}, 'L': {4, 4, 4, 4, 7}, 'N': {6, 5, 5, 5, 5}, 'O': {2, 5, 5, 5, 2},
	'P': {6, 5, 6, 4, 4}, 'R': {6, 5, 6, 5, 5}, 'S': {3, 4, 2, 1, 6}, 'T': {7, 2, 2, 2, 2},
	'V': {5, 5, 5, 5, 2}, 'B': {6, 5, 6, 5, 6}, 'D': {6, 5, 5, 5, 6}, 'Y': {5, 5, 2, 2, 2},
}

func textWidth(s string) int {
	n := len([]rune(s))
	if n == 0 {
		return 0
	}
	return n*glyphAdv - glyphScale // no spacing after the last glyph
}

// drawText draws s with its top-left corner at (x, y); unknown runes draw as blanks.
func drawText(img *image.Paletted, x, y int, s string, c uint8) {
	for _, r := range s {
		g := font3x5[r]
		for row, bits := range g {
			for col := range 3 {
				if bits&(4>>col) != 0 {
					fillRect(img, x+col*glyphScale, y+row*glyphScale,
						x+(col+1)*glyphScale, y+(row+1)*glyphScale, c)
				}
			}
		}
		x += glyphAdv
	}
}
