package evaluate

import (
	"math"
	"math/rand"
)

// Kinds of non-digit images, for scoring autoencoders as anomaly detectors.
const (
	KindNoise   = "noise"   // uniform random pixels, at random densities
	KindShapes  = "shapes"  // rectangles, rings, lines and crosses
	KindLetters = "letters" // capital letters, drawn as MNIST digits are: white strokes on black, in the centre
)

// NonDigits draws n images of each kind, 28×28 in [0, 1] white on black as
// MNIST, from a seeded source: what an anomaly score should tell from
// digits. It returns the images, one after another, and each one's kind.
func NonDigits(n int, seed int64) ([]float32, []string) {
	rng := rand.New(rand.NewSource(seed))
	var images []float32
	var kinds []string
	for _, kind := range []string{KindNoise, KindShapes, KindLetters} {
		for range n {
			img := make([]float32, side*side)
			switch kind {
			case KindNoise:
				density := 0.05 + 0.4*rng.Float64()
				for i := range img {
					if rng.Float64() < density {
						img[i] = float32(rng.Float64())
					}
				}
			case KindShapes:
				drawShape(img, rng)
			case KindLetters:
				drawLetter(img, rng)
			}
			images = append(images, img...)
			kinds = append(kinds, kind)
		}
	}
	return images, kinds
}

const side = 28

// stamp paints a disc of radius r at (x, y), as a pen stroke.
func stamp(img []float32, x, y, r float64) {
	for py := int(y - r - 1); py <= int(y+r+1); py++ {
		for px := int(x - r - 1); px <= int(x+r+1); px++ {
			if px < 0 || py < 0 || px >= side || py >= side {
				continue
			}
			d := math.Hypot(float64(px)+0.5-x, float64(py)+0.5-y)
			if v := float32(math.Min(1, math.Max(0, r+0.5-d))); v > img[py*side+px] {
				img[py*side+px] = v
			}
		}
	}
}

// line strokes from (x0, y0) to (x1, y1).
func line(img []float32, x0, y0, x1, y1, r float64) {
	steps := int(math.Hypot(x1-x0, y1-y0)*2) + 1
	for s := 0; s <= steps; s++ {
		t := float64(s) / float64(steps)
		stamp(img, x0+t*(x1-x0), y0+t*(y1-y0), r)
	}
}

func drawShape(img []float32, rng *rand.Rand) {
	r := 0.8 + 0.8*rng.Float64() // pen radius
	cx, cy := 14+2*(rng.Float64()-0.5), 14+2*(rng.Float64()-0.5)
	w, h := 6+4*rng.Float64(), 6+4*rng.Float64()
	switch rng.Intn(5) {
	case 0: // rectangle outline
		line(img, cx-w, cy-h, cx+w, cy-h, r)
		line(img, cx+w, cy-h, cx+w, cy+h, r)
		line(img, cx+w, cy+h, cx-w, cy+h, r)
		line(img, cx-w, cy+h, cx-w, cy-h, r)
	case 1: // filled rectangle
		for y := int(cy - h); y < int(cy+h); y++ {
			for x := int(cx - w); x < int(cx+w); x++ {
				if x >= 0 && y >= 0 && x < side && y < side {
					img[y*side+x] = 1
				}
			}
		}
	case 2: // ring
		for a := 0.0; a < 2*math.Pi; a += 0.05 {
			stamp(img, cx+w*math.Cos(a), cy+h*math.Sin(a), r)
		}
	case 3: // a cross
		line(img, cx-w, cy-h, cx+w, cy+h, r)
		line(img, cx-w, cy+h, cx+w, cy-h, r)
	default: // a grid of dots
		for y := cy - h; y <= cy+h; y += 4 {
			for x := cx - w; x <= cx+w; x += 4 {
				stamp(img, x, y, r)
			}
		}
	}
}

// letters are 5×7 bitmaps, each row's bits from the left, of capitals that
// no digit resembles closely.
var letters = [][7]uint8{
	{0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}, // A
	{0x0f, 0x10, 0x10, 0x10, 0x10, 0x10, 0x0f}, // C
	{0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f}, // E
	{0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10}, // F
	{0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}, // H
	{0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}, // K
	{0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11}, // M
	{0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11}, // N
	{0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10}, // P
	{0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11}, // R
	{0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}, // T
	{0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}, // U
	{0x11, 0x11, 0x11, 0x11, 0x0a, 0x0a, 0x04}, // V
	{0x11, 0x11, 0x11, 0x15, 0x15, 0x1b, 0x11}, // W
	{0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11}, // X
	{0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04}, // Y
}

// drawLetter strokes a letter, scaled into MNIST's 20×20 box with a little
// jitter: a pen line joins every two neighbouring pixels of the glyph, so
// the strokes are continuous as handwriting is.
func drawLetter(img []float32, rng *rand.Rand) {
	glyph := letters[rng.Intn(len(letters))]
	scale := 2.3 + 0.5*rng.Float64() // 5×7 cells to about 13×18 pixels
	r := 0.9 + 0.5*rng.Float64()
	x0 := 14 - 2*scale + 2*(rng.Float64()-0.5)
	y0 := 14 - 3*scale + 2*(rng.Float64()-0.5)
	on := func(row, col int) bool {
		return row >= 0 && row < 7 && col >= 0 && col < 5 && glyph[row]&(0x10>>col) != 0
	}
	at := func(row, col int) (float64, float64) { return x0 + float64(col)*scale, y0 + float64(row)*scale }
	for row := 0; row < 7; row++ {
		for col := 0; col < 5; col++ {
			if !on(row, col) {
				continue
			}
			x, y := at(row, col)
			stamp(img, x, y, r)
			for _, d := range [][2]int{{0, 1}, {1, 0}, {1, 1}, {1, -1}} {
				if on(row+d[0], col+d[1]) {
					x1, y1 := at(row+d[0], col+d[1])
					line(img, x, y, x1, y1, r)
				}
			}
		}
	}
}
