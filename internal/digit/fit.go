package digit

import (
	"image"
	"math"
	"slices"
)

// Fit reproduces MNIST's own preparation so that a digit from anywhere (a
// scan, a canvas drawing, a phone photo, any size) looks like what the models
// were trained on:
//
//  0. Working size: an image larger than 512 pixels on its longer side is
//     box-averaged down to at most that (see sample), as it is read.
//  1. Ink: the opacity if any pixel is less than opaque (a drawing on a
//     transparent canvas: the strokes are the digit whatever their colour),
//     otherwise grey by luminance (as Decode).
//  2. Polarity (opaque images only; opacity already is light ink on dark):
//     MNIST is light ink on a dark background. The image's one-pixel frame is
//     taken as background; if its mean is brighter than the mean of the whole
//     image, the ink is darker than the paper and the image is inverted. Ink
//     pulls the overall mean towards its own colour, whichever that is, so
//     the rule needs no fixed threshold.
//  3. Levels: the background level is the lower of the border median and the
//     image median (each one is robust to ink covering part of its pixels), and
//     is mapped to 0 while the brightest pixel is mapped to 1, as MNIST digits
//     span the full range. Less than 10% contrast means there is no ink: a
//     *Error of KindSize.
//  4. Background (opaque images only): the strokes are the pixels above
//     Otsu's threshold on a 3×3 blur, and the background's ceiling the level
//     that 99% of the pixels away from them stay under (backgroundCeiling).
//     A clean background (MNIST itself, a scan, a drawing) has a ceiling of
//     exactly 0, and nothing changes. A nearly clean one (up to 0.05: a
//     JPEG's ringing, a speck of dust) loses what is not connected to the
//     strokes (suppressBackground). Above that it is a photo: paper unevenly
//     lit and noisy, much of it still above the ink threshold of step 5,
//     which would crop to the whole page. Then the lighting is divided out
//     (flatten), the noise blurred (3×3), the levels of step 3 taken again,
//     and only the regions rising above the new ceiling and reaching the
//     strokes are kept, rescaled from the ceiling to 1; the rest is 0.
//  5. Crop to the bounding box of the ink: pixels above 10%. MNIST's boxes
//     include all anti-aliasing (any pixel above 0); here the faintest tenth
//     is left out so that blur and halos in photos and enlarged images do not
//     make the digit come out small. On MNIST digits themselves this changes
//     almost nothing (mean abs diff 0.0005 over 500 t10k digits fitted again).
//  6. Scale so that the longer side of the box is 20 pixels, keeping the
//     aspect ratio: area averaging when shrinking (every source pixel counts,
//     no aliasing; a 2× pixel-replicated image gives exactly the result of
//     the original), bilinear
//     when enlarging.
//  7. Place in 28×28 so that the centre of mass of the ink lands on pixel
//     (14,14), shifting by whole pixels as MNIST did and staying inside the
//     frame. (Over MNIST's t10k set the mean centre of mass is (14.01, 13.99) in
//     the same pixel-index coordinates.)
//
// The result has 784 values in [0,1]. Fit does not quantise to 8 bits.
func Fit(img image.Image) ([]float32, error) {
	s := sample(img, img.Bounds(), workSide)
	g, alphaInk := s.ink()
	return fit(g, s.w, s.h, alphaInk)
}

const (
	fitBox       = 20
	minContrast  = 0.1
	inkThreshold = 0.1
	// comTarget is where MNIST's centres of mass are, in pixel-index coordinates.
	comTarget = 14
	// photoCeiling is the background ceiling (see backgroundCeiling) above
	// which an image is treated as a photo: half the ink threshold, which
	// a clean background's faint artefacts (a JPEG's ringing, at 0.005 to
	// 0.03 at quality 75 to 95) stay under, and a photo's paper is far above.
	photoCeiling = inkThreshold / 2
)

func errNoInk() *Error {
	return errorf(KindSize, "no ink found: the image is blank or has less than %d%% contrast", int(minContrast*100))
}

// fit works in place on g, which it owns. alphaInk says g is opacity, whose
// polarity is known and whose background is clean.
func fit(g []float32, w, h int, alphaInk bool) ([]float32, error) {
	if w <= 0 || h <= 0 {
		return nil, errNoInk()
	}
	border := borderOf(g, w, h)
	var sum, bsum float64
	for _, v := range g {
		sum += float64(v)
	}
	for _, v := range border {
		bsum += float64(v)
	}
	if !alphaInk && bsum/float64(len(border)) > sum/float64(len(g)) {
		for i, v := range g {
			g[i] = 1 - v
		}
		for i, v := range border {
			border[i] = 1 - v
		}
	}

	var raw []float32
	if !alphaInk {
		raw = slices.Clone(g)
	}
	if err := levels(g, border); err != nil {
		return nil, err
	}
	if !alphaInk {
		switch ceiling, strong := backgroundCeiling(g, w, h); {
		case ceiling <= 0:
			// A clean background: MNIST, a scan, a drawing.
		case ceiling <= photoCeiling:
			// Nearly clean (a JPEG's ringing, a speck of dust): only what
			// is not connected to the strokes goes.
			suppressBackground(g, w, h, ceiling, strong)
		default:
			// A photo. Start again from the unlevelled image, relative to
			// its paper.
			g = raw
			flatten(g, w, h)
			// Photo noise is still there at pixel level; it would go in the
			// resampling to 20 pixels anyway, and here it keeps the ceiling up.
			g = blur3(g, w, h)
			if err := levels(g, borderOf(g, w, h)); err != nil {
				return nil, err
			}
			ceiling, strong = backgroundCeiling(g, w, h)
			suppressBackground(g, w, h, ceiling, strong)
		}
	}
	x0, y0, x1, y1 := w, h, -1, -1
	for y := 0; y < h; y++ {
		for x, v := range g[y*w : (y+1)*w] {
			if v > inkThreshold {
				x0, x1 = min(x0, x), max(x1, x)
				y0, y1 = min(y0, y), max(y1, y)
			}
		}
	}
	if x1 < 0 {
		// Only if suppressBackground kept nothing above the threshold: the
		// brightest pixel maps to 1 otherwise.
		return nil, errNoInk()
	}
	bw, bh := x1-x0+1, y1-y0+1
	s := float64(fitBox) / float64(max(bw, bh))
	nw := max(1, int(math.Round(float64(bw)*s)))
	nh := max(1, int(math.Round(float64(bh)*s)))

	// Separable resampling: rows of the crop to nw columns, then columns to nh rows.
	tx, ty := taps(bw, nw), taps(bh, nh)
	tmp := make([]float64, bh*nw)
	for y := 0; y < bh; y++ {
		row := g[(y0+y)*w+x0:]
		for x, t := range tx {
			var acc float64
			for k, wt := range t.w {
				acc += wt * float64(row[t.i0+k])
			}
			tmp[y*nw+x] = acc
		}
	}
	small := make([]float64, nh*nw)
	var mass, mx, my float64
	for y, t := range ty {
		for x := 0; x < nw; x++ {
			var acc float64
			for k, wt := range t.w {
				acc += wt * tmp[(t.i0+k)*nw+x]
			}
			acc = min(max(acc, 0), 1)
			small[y*nw+x] = acc
			mass += acc
			mx += acc * float64(x)
			my += acc * float64(y)
		}
	}
	if mass == 0 {
		return nil, errNoInk()
	}
	ox := min(max(int(math.Round(comTarget-mx/mass)), 0), side-nw)
	oy := min(max(int(math.Round(comTarget-my/mass)), 0), side-nh)

	px := make([]float32, pixels)
	for y := 0; y < nh; y++ {
		for x := 0; x < nw; x++ {
			px[(oy+y)*side+ox+x] = float32(small[y*nw+x])
		}
	}
	return px, nil
}

// median of values in [0,1], to within 1/1024 and never above the true
// median: a histogram keeps it O(n) on multi-megapixel inputs. It returns the
// smallest value of the median's bin, which is exact for a flat background.
func median(g []float32) float32 {
	const bins = 1024
	var hist [bins]int
	var low [bins]float32
	for _, v := range g {
		b := min(max(int(v*bins), 0), bins-1)
		if hist[b] == 0 || v < low[b] {
			low[b] = v
		}
		hist[b]++
	}
	half, acc := len(g)/2, 0
	for i, c := range hist {
		acc += c
		if acc > half {
			return low[i]
		}
	}
	return 1
}

// tap is one output sample's weights over consecutive input samples from i0.
type tap struct {
	i0 int
	w  []float64
}

// taps resamples n samples to m. Shrinking averages each output pixel's exact
// footprint (a box filter with fractional edge weights), so that pixel
// replication is undone exactly; enlarging interpolates bilinearly between
// pixel centres, clamped at the edges.
func taps(n, m int) []tap {
	ts := make([]tap, m)
	if m < n {
		f := float64(n) / float64(m)
		for i := range ts {
			lo, hi := float64(i)*f, float64(i+1)*f
			j0, j1 := int(lo), min(int(math.Ceil(hi)), n)
			w := make([]float64, j1-j0)
			for j := j0; j < j1; j++ {
				w[j-j0] = (min(hi, float64(j+1)) - max(lo, float64(j))) / f
			}
			ts[i] = tap{j0, w}
		}
		return ts
	}
	for i := range ts {
		src := (float64(i)+0.5)*float64(n)/float64(m) - 0.5
		j := int(math.Floor(src))
		t := src - float64(j)
		switch {
		case j < 0:
			ts[i] = tap{0, []float64{1}}
		case j >= n-1:
			ts[i] = tap{n - 1, []float64{1}}
		case t == 0:
			ts[i] = tap{j, []float64{1}}
		default:
			ts[i] = tap{j, []float64{1 - t, t}}
		}
	}
	return ts
}

// borderOf is the image's one-pixel frame.
func borderOf(g []float32, w, h int) []float32 {
	border := make([]float32, 0, 2*(w+h))
	for x := 0; x < w; x++ {
		border = append(border, g[x])
		if h > 1 {
			border = append(border, g[(h-1)*w+x])
		}
	}
	for y := 1; y < h-1; y++ {
		border = append(border, g[y*w])
		if w > 1 {
			border = append(border, g[y*w+w-1])
		}
	}
	return border
}

// levels is step 3 of Fit: the background level (the lower of the border
// median and the image median) to 0, the brightest pixel to 1, in place.
// border is sorted.
func levels(g, border []float32) error {
	slices.Sort(border)
	bg := min(border[len(border)/2], median(g))
	hi := slices.Max(g)
	if hi-bg < minContrast {
		return errNoInk()
	}
	scale := 1 / (hi - bg)
	for i, v := range g {
		g[i] = min(max((v-bg)*scale, 0), 1)
	}
	return nil
}

// backgroundCeiling finds the strokes of levelled g (ink bright, the
// background's level at 0) and the level of the background away from them:
//
//   - Strokes: pixels whose 3×3 mean is above Otsu's threshold over all the
//     3×3 means (blurring first keeps noise from splitting the classes).
//   - Ceiling: the level that at most 1% of the pixels farther from the
//     strokes than a few pixels (1/32 of the longer side, at least 2) exceed,
//     to a multiple of 1/1023 rounded up. On a clean background (MNIST, a
//     scan, a drawing) it is exactly 0.
func backgroundCeiling(g []float32, w, h int) (ceiling float32, strong []bool) {
	if w < 3 || h < 3 {
		return 0, nil
	}
	b := blur3(g, w, h)
	t := otsu(b)
	strong = make([]bool, len(g))
	for i, v := range b {
		strong[i] = v > t
	}
	near := dilate(strong, w, h, max(2, (max(w, h)+31)/32))
	return ceilingOf(g, near), strong
}

// flatten is the first half of step 4 of Fit, on a photo: it divides out
// uneven lighting. g is ink-bright (inverted when the ink was dark), so the
// paper is its low envelope: P, the grey opening (a minimum then a maximum
// filter, over a window wider than a stroke: a quarter of the shorter side)
// of g's 3×3 mean. With the photographed brightness v = L·ρ (the light L
// times the ink's or paper's reflectance ρ, paper 1) and g = 1 - v, the
// paper is 1 - P = L, and the ink 1 - ρ = (g - P) / (1 - P) wherever the
// paper is lit at all.
func flatten(g []float32, w, h int) {
	r := max(1, min(w, h)/8)
	p := blur3(g, w, h)
	p = extreme(p, w, h, r, func(a, b float32) bool { return a < b })
	p = extreme(p, w, h, r, func(a, b float32) bool { return a > b })
	for i, v := range g {
		if lit := 1 - p[i]; lit > 1.0/255 {
			g[i] = min(max((v-p[i])/lit, 0), 1)
		} else {
			g[i] = 0
		}
	}
}

// extreme is the minimum (better = less) or maximum (better = greater) of g
// over the (2r+1)×(2r+1) window around each pixel, clipped at the edges:
// separable, each pass a sliding window with a monotonic queue, O(w·h).
func extreme(g []float32, w, h, r int, better func(a, b float32) bool) []float32 {
	pass := func(n int, get func(int) float32, set func(int, float32), q []int) {
		q = q[:0]
		head := 0
		next := 0 // next index to enter the window
		for i := range n {
			for ; next < n && next <= i+r; next++ {
				v := get(next)
				for len(q) > head && !better(get(q[len(q)-1]), v) {
					q = q[:len(q)-1]
				}
				q = append(q, next)
			}
			for q[head] < i-r {
				head++
			}
			set(i, get(q[head]))
		}
	}
	q := make([]int, 0, max(w, h))
	rows := make([]float32, len(g))
	for y := range h {
		src, dst := g[y*w:(y+1)*w], rows[y*w:(y+1)*w]
		pass(w, func(x int) float32 { return src[x] }, func(x int, v float32) { dst[x] = v }, q)
	}
	out := make([]float32, len(g))
	for x := range w {
		pass(h, func(y int) float32 { return rows[y*w+x] }, func(y int, v float32) { out[y*w+x] = v }, q)
	}
	return out
}

// suppressBackground is the second half of step 4 of Fit, on a flattened
// and levelled photo. The 8-connected regions of pixels above the
// background's ceiling (see backgroundCeiling) that reach a stroke are the
// candidates; those holding at least 5% of the ink of the largest are kept
// (a digit written in two strokes keeps both; a speck of noise that
// happened to pass Otsu's threshold does not stretch the crop), rescaled so
// that the ceiling maps to 0, and everything else, the paper and its
// noise, is set to 0.
func suppressBackground(g []float32, w, h int, ceiling float32, strong []bool) {
	if ceiling <= 0 || ceiling >= 1-minContrast {
		return
	}
	label := make([]int32, len(g)) // 0: not in a region; k: region k-1
	var mass []float64
	var stack []int32
	for seed, s := range strong {
		if !s || g[seed] <= ceiling || label[seed] != 0 {
			continue
		}
		mass = append(mass, 0)
		k := int32(len(mass))
		label[seed] = k
		stack = append(stack[:0], int32(seed))
		for len(stack) > 0 {
			i := int(stack[len(stack)-1])
			stack = stack[:len(stack)-1]
			mass[k-1] += float64(g[i] - ceiling)
			x, y := i%w, i/w
			for ny := max(y-1, 0); ny <= min(y+1, h-1); ny++ {
				for nx := max(x-1, 0); nx <= min(x+1, w-1); nx++ {
					if j := ny*w + nx; label[j] == 0 && g[j] > ceiling {
						label[j] = k
						stack = append(stack, int32(j))
					}
				}
			}
		}
	}
	if len(mass) == 0 {
		return
	}
	floor := slices.Max(mass) / 20
	scale := 1 / (1 - ceiling)
	for i, v := range g {
		if k := label[i]; k != 0 && mass[k-1] >= floor {
			g[i] = min((v-ceiling)*scale, 1)
		} else {
			g[i] = 0
		}
	}
}

// blur3 is the 3×3 mean of g, the edges replicated.
func blur3(g []float32, w, h int) []float32 {
	tmp := make([]float32, len(g))
	for y := range h {
		row, out := g[y*w:(y+1)*w], tmp[y*w:(y+1)*w]
		for x := range w {
			out[x] = (row[max(x-1, 0)] + row[x] + row[min(x+1, w-1)]) / 3
		}
	}
	b := make([]float32, len(g))
	for y := range h {
		up, mid, down := tmp[max(y-1, 0)*w:], tmp[y*w:], tmp[min(y+1, h-1)*w:]
		for x := range w {
			b[y*w+x] = (up[x] + mid[x] + down[x]) / 3
		}
	}
	return b
}

// otsu is the threshold between the two classes of values in [0,1] that
// maximises the variance between them (Otsu, 1979), over a 256-bin
// histogram: values above it are one class, the rest the other.
func otsu(v []float32) float32 {
	const bins = 256
	var hist [bins]float64
	for _, x := range v {
		hist[min(max(int(x*bins), 0), bins-1)]++
	}
	var total, sumAll float64
	for i, c := range hist {
		total += c
		sumAll += float64(i) * c
	}
	var w0, sum0, best float64
	bestBin := 0
	for i, c := range hist[:bins-1] {
		w0 += c
		sum0 += float64(i) * c
		w1 := total - w0
		if w0 == 0 || w1 == 0 {
			continue
		}
		m0, m1 := sum0/w0, (sumAll-sum0)/w1
		if between := w0 * w1 * (m0 - m1) * (m0 - m1); between > best {
			best, bestBin = between, i
		}
	}
	return float32(bestBin+1) / bins
}

// dilate marks every pixel within r (Chebyshev distance) of a marked one.
func dilate(m []bool, w, h, r int) []bool {
	spread := func(n int, get func(int) bool, set func(int)) {
		// A running count of marked pixels in the window [i-r, i+r].
		count := 0
		for i := 0; i < min(r, n); i++ {
			if get(i) {
				count++
			}
		}
		for i := range n {
			if j := i + r; j < n && get(j) {
				count++
			}
			if count > 0 {
				set(i)
			}
			if j := i - r; j >= 0 && get(j) {
				count--
			}
		}
	}
	rows := make([]bool, len(m))
	for y := range h {
		spread(w, func(x int) bool { return m[y*w+x] }, func(x int) { rows[y*w+x] = true })
	}
	out := make([]bool, len(m))
	for x := range w {
		spread(h, func(y int) bool { return rows[y*w+x] }, func(y int) { out[y*w+x] = true })
	}
	return out
}

// ceilingOf is the level that at most 1% of g's pixels outside near exceed,
// rounded up to a multiple of 1/1023; exactly 0 when at least 99% of them are
// 0, and 0 when too few pixels are far from the strokes to tell.
func ceilingOf(g []float32, near []bool) float32 {
	const bins = 1024
	var hist [bins]int
	n := 0
	for i, v := range g {
		if near[i] {
			continue
		}
		// Bin 0 holds exact zeros only, so that a clean background gives 0.
		hist[min(int(math.Ceil(float64(v)*(bins-1))), bins-1)]++
		n++
	}
	if n < 64 {
		return 0
	}
	allowed, above := n/100, n
	for i, c := range hist {
		above -= c
		if above <= allowed {
			return float32(i) / (bins - 1)
		}
	}
	return 1
}
