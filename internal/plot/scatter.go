package plot

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"iter"
	"math"
	"strconv"
)

// Scatter plot geometry: a plot area like the loss curve's, and a legend
// column on the right.
const (
	scatterWidth  = 600
	scatterHeight = 480

	scatterLeft   = 76
	scatterRight  = scatterWidth - 96
	scatterTop    = 36
	scatterBottom = scatterHeight - 52

	// Classes is how many labels Scatter can tell apart by colour: the ten
	// digits.
	Classes = 10
)

// Palette indices for the scatter plot: white, black, grid grey, then the
// ten class colours.
const cClass0 = cOrange + 1

// ClassColours are the scatter plot's colours for labels 0–9: matplotlib's
// "tab10", the usual categorical palette.
var ClassColours = [Classes]color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}, {148, 103, 189, 255},
	{140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255}, {188, 189, 34, 255}, {23, 190, 207, 255},
}

var scatterPalette = func() color.Palette {
	p := append(color.Palette{}, curvePalette...)
	for _, c := range ClassColours {
		p = append(p, c)
	}
	return p
}()

// Scatter draws points (x[i], y[i]) as 3×3 squares coloured by labels[i]
// (0–9, see ClassColours), in the given order, on a 600×480 paletted PNG
// with axes, ticks, the axis titles xTitle and yTitle (drawn in the tiny
// font: digits, a few capitals; other runes are blanks) and a legend of the
// labels that occur. Points with a NaN or infinite coordinate are left out;
// the axes span the others with a 5% margin. It fails if the slices differ
// in length, a label is 10 or more, or no point is finite.
func Scatter(w io.Writer, x, y []float64, labels []uint8, xTitle, yTitle string) error {
	if len(x) != len(y) || len(x) != len(labels) {
		return fmt.Errorf("plot: scatter: %d x, %d y and %d labels", len(x), len(y), len(labels))
	}
	xlo, xhi := math.Inf(1), math.Inf(-1)
	ylo, yhi := math.Inf(1), math.Inf(-1)
	var present [Classes]bool
	for i := range x {
		if labels[i] >= Classes {
			return fmt.Errorf("plot: scatter: label %d of point %d is not a digit", labels[i], i)
		}
		if !isFinite(x[i]) || !isFinite(y[i]) {
			continue
		}
		xlo, xhi = min(xlo, x[i]), max(xhi, x[i])
		ylo, yhi = min(ylo, y[i]), max(yhi, y[i])
		present[labels[i]] = true
	}
	if xlo > xhi {
		return errors.New("plot: scatter: no finite points to plot")
	}
	xMin, xMax, xStep := axisRange(xlo, xhi)
	yMin, yMax, yStep := axisRange(ylo, yhi)

	img := image.NewPaletted(image.Rect(0, 0, scatterWidth, scatterHeight), scatterPalette)
	px := func(v float64) int {
		return scatterLeft + int(math.Round((v-xMin)/(xMax-xMin)*(scatterRight-scatterLeft)))
	}
	py := func(v float64) int {
		return scatterBottom - int(math.Round((v-yMin)/(yMax-yMin)*(scatterBottom-scatterTop)))
	}
	ydec, xdec := decimals(yStep), decimals(xStep)
	for v := range ticks(yMin, yMax, yStep) {
		yy := py(v)
		hline(img, scatterLeft, scatterRight, yy, cGrid)
		hline(img, scatterLeft-tickLen, scatterLeft, yy, cBlack)
		label := formatTick(v, ydec)
		drawText(img, scatterLeft-tickLen-3-textWidth(label), yy-glyphH/2, label, cBlack)
	}
	for v := range ticks(xMin, xMax, xStep) {
		xx := px(v)
		vline(img, xx, scatterTop, scatterBottom, cGrid)
		vline(img, xx, scatterBottom, scatterBottom+tickLen, cBlack)
		label := formatTick(v, xdec)
		drawText(img, xx-textWidth(label)/2, scatterBottom+tickLen+4, label, cBlack)
	}
	for i := range x {
		if isFinite(x[i]) && isFinite(y[i]) {
			xx, yy := px(x[i]), py(y[i])
			fillRect(img, xx-1, yy-1, xx+2, yy+2, cClass0+labels[i])
		}
	}
	rect(img, scatterLeft, scatterTop, scatterRight, scatterBottom, cBlack)
	drawText(img, (scatterLeft+scatterRight-textWidth(xTitle))/2, scatterHeight-glyphH-8, xTitle, cBlack)
	drawText(img, 8, scatterTop-glyphH-10, yTitle, cBlack)

	// The legend: a swatch and the digit for each label present.
	lx, ly := scatterRight+16, scatterTop
	row := 0
	for c := range Classes {
		if !present[c] {
			continue
		}
		y0 := ly + row*(glyphH+8)
		fillRect(img, lx, y0, lx+glyphH, y0+glyphH, cClass0+uint8(c))
		drawText(img, lx+glyphH+8, y0, strconv.Itoa(c), cBlack)
		row++
	}

	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("plot: scatter: %w", err)
	}
	return nil
}

// axisRange pads [lo, hi] by 5% on each side (or, for a single value, by
// 10% of it, or 1 if it is 0) and returns it with a 1-2-5 tick step giving
// about five ticks.
func axisRange(lo, hi float64) (from, to, step float64) {
	if lo == hi {
		pad := math.Abs(lo) * 0.1
		if pad == 0 {
			pad = 1
		}
		lo, hi = lo-pad, hi+pad
	}
	span := hi - lo
	lo, hi = lo-0.05*span, hi+0.05*span
	return lo, hi, niceStep(hi-lo, 5)
}

// ticks yields the multiples of step in [lo, hi].
func ticks(lo, hi, step float64) iter.Seq[float64] {
	return func(yield func(float64) bool) {
		first := math.Ceil(lo/step - 1e-9)
		for i := 0; ; i++ {
			v := (first + float64(i)) * step
			if v > hi+step*1e-9 || !yield(v) {
				return
			}
		}
	}
}
