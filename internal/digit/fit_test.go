package digit

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"strings"
	"testing"
)

func fitPNG(t *testing.T, img image.Image) []float32 {
	t.Helper()
	px, err := Decode(encodeImage(t, img), Limits{}, Options{Fit: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(px) != pixels {
		t.Fatalf("got %d pixels", len(px))
	}
	for i, v := range px {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("pixel %d = %v, outside [0,1]", i, v)
		}
	}
	return px
}

func checkCentred(t *testing.T, px []float32) {
	t.Helper()
	x, y := centreOfMass(px)
	if math.Abs(x-comTarget) > 0.5+1e-9 || math.Abs(y-comTarget) > 0.5+1e-9 {
		t.Errorf("centre of mass (%.2f, %.2f), want within half a pixel of (14, 14)", x, y)
	}
}

// MNIST digits are already prepared, so preparing them again changes little.
func TestFitMNISTIsNearlyIdentity(t *testing.T) {
	for n, d := range mnistDigits(t, 20) {
		px := fitPNG(t, grayImage(28, 28, d))
		if mad := meanAbsDiff(px, toFloat(d)); mad > 0.01 {
			t.Errorf("digit %d: mean abs diff %.4f after Fit", n, mad)
		}
		checkCentred(t, px)
	}
}

func TestFitEnlargedDigit(t *testing.T) {
	for n, d := range mnistDigits(t, 10) {
		orig := toFloat(d)
		ref, err := Fit(grayImage(28, 28, d))
		if err != nil {
			t.Fatal(err)
		}
		// Pixel replication ×2: area averaging must undo it exactly.
		px := fitPNG(t, grayImage(56, 56, enlarge(d, 28, 28, 2, 2)))
		if mad := meanAbsDiff(px, ref); mad > 1e-6 {
			t.Errorf("digit %d ×2: differs from Fit of the original by %.6f", n, mad)
		}
		if mad := meanAbsDiff(px, orig); mad > 0.01 {
			t.Errorf("digit %d ×2: mean abs diff %.4f from the original", n, mad)
		}
		checkCentred(t, px)

		// Smooth enlargement to a size that is not a multiple, off-centre on a
		// larger canvas: resampling blurs a little, nothing more.
		big := bilinear(d, 28, 28, 70, 70)
		canvas := image.NewGray(image.Rect(0, 0, 120, 90))
		for y := range 70 {
			copy(canvas.Pix[(y+15)*120+45:], big[y*70:(y+1)*70])
		}
		px = fitPNG(t, canvas)
		checkInkBox(t, fmt.Sprintf("digit %d bilinear ×2.5", n), px)
		// Half-pixel rounding of the centre of mass, here and in MNIST, is
		// most of the difference.
		mad := meanAbsDiff(px, orig)
		t.Logf("digit %d bilinear ×2.5: mean abs diff %.4f", n, mad)
		if mad > 0.08 {
			t.Errorf("digit %d bilinear ×2.5: mean abs diff %.4f from the original", n, mad)
		}
		checkCentred(t, px)
	}
}

func TestFitInvertedDigit(t *testing.T) {
	for n, d := range mnistDigits(t, 10) {
		big := enlarge(d, 28, 28, 3, 3)
		want, err := Fit(grayImage(84, 84, big))
		if err != nil {
			t.Fatal(err)
		}
		inv := make([]byte, len(big))
		for i, v := range big {
			inv[i] = 255 - v
		}
		rgb := image.NewRGBA(image.Rect(0, 0, 84, 84))
		for i, v := range inv {
			rgb.SetRGBA(i%84, i/84, color.RGBA{v, v, v, 255})
		}
		for _, img := range []image.Image{grayImage(84, 84, inv), rgb} {
			px := fitPNG(t, img)
			if mad := meanAbsDiff(px, want); mad > 1e-5 {
				t.Errorf("digit %d inverted %T: mean abs diff %.6f from the upright one", n, img, mad)
			}
		}
	}
}

// A paper-like background (grey, dark ink) is levelled to MNIST's black and white.
func TestFitGreyPaper(t *testing.T) {
	d := mnistDigits(t, 1)[0]
	paper := make([]byte, len(d))
	for i, v := range d {
		paper[i] = 200 - byte(int(v)*150/255) // background 200, ink 50
	}
	px := fitPNG(t, grayImage(28, 28, paper))
	if mad := meanAbsDiff(px, toFloat(d)); mad > 0.01 {
		t.Errorf("mean abs diff %.4f from the original", mad)
	}
}

func TestFitTinyDigit(t *testing.T) {
	for n, d := range mnistDigits(t, 10) {
		small := shrink2(d, 28, 28) // 14×14, ink box ~10 pixels
		canvas := image.NewGray(image.Rect(0, 0, 60, 60))
		for y := range 14 {
			copy(canvas.Pix[(y+40)*60+5:], small[y*14:(y+1)*14])
		}
		for _, img := range []image.Image{grayImage(14, 14, small), canvas} {
			px := fitPNG(t, img)
			checkInkBox(t, fmt.Sprintf("digit %d from %v", n, img.Bounds().Size()), px)
			// Halving lost detail that enlarging cannot bring back.
			mad := meanAbsDiff(px, toFloat(d))
			t.Logf("digit %d from %v: mean abs diff %.4f", n, img.Bounds().Size(), mad)
			if mad > 0.1 {
				t.Errorf("digit %d from %v: mean abs diff %.4f from the original", n, img.Bounds().Size(), mad)
			}
			checkCentred(t, px)
		}
	}
}

func TestFitKeepsAspect(t *testing.T) {
	// A 60×10 bar becomes 20×3 (20/60·10 = 3.33), solid, centred.
	bar := image.NewGray(image.Rect(0, 0, 100, 100))
	for y := 45; y < 55; y++ {
		for x := 20; x < 80; x++ {
			bar.SetGray(x, y, color.Gray{255})
		}
	}
	px := fitPNG(t, bar)
	if w, h := inkBox(px, 0); w != 20 || h != 3 {
		t.Errorf("bar: ink box %d×%d, want 20×3", w, h)
	}
	for i, v := range px {
		if v != 0 && v != 1 {
			t.Fatalf("bar pixel %d = %v, want 0 or 1", i, v)
		}
	}
	checkCentred(t, px)

	// A one-pixel vertical line stays one pixel wide.
	line := image.NewGray(image.Rect(0, 0, 9, 40))
	for y := range 40 {
		line.SetGray(4, y, color.Gray{255})
	}
	px = fitPNG(t, line)
	if w, h := inkBox(px, 0); w != 1 || h != 20 {
		t.Errorf("line: ink box %d×%d, want 1×20", w, h)
	}

	// A digit stretched 3× horizontally keeps that shape.
	for n, d := range mnistDigits(t, 5) {
		ow, oh := inkBox(toFloat(d), inkThreshold)
		px := fitPNG(t, grayImage(84, 28, enlarge(d, 28, 28, 3, 1)))
		w, h := inkBox(px, inkThreshold)
		want := 20 * float64(oh) / float64(3*ow)
		if w < 19 || math.Abs(float64(h)-want) > 1 {
			t.Errorf("digit %d stretched: ink box %d×%d, want 20×%.1f", n, w, h, want)
		}
	}
}

func TestFitBlank(t *testing.T) {
	white := image.NewGray(image.Rect(0, 0, 40, 40))
	grey := image.NewGray(image.Rect(0, 0, 40, 40))
	faint := image.NewGray(image.Rect(0, 0, 40, 40))
	for i := range white.Pix {
		white.Pix[i], grey.Pix[i], faint.Pix[i] = 255, 128, 100
	}
	faint.SetGray(20, 20, color.Gray{110}) // 4% contrast: dust, not ink
	// A transparent canvas with nothing drawn on it.
	transparent := image.NewNRGBA(image.Rect(0, 0, 40, 40))
	for i := range transparent.Pix {
		transparent.Pix[i] = 0xff
		if i%4 == 3 {
			transparent.Pix[i] = 0
		}
	}
	for name, img := range map[string]image.Image{
		"black":       image.NewGray(image.Rect(0, 0, 40, 40)),
		"white":       white,
		"grey":        grey,
		"faint":       faint,
		"transparent": transparent,
		"1×1":         image.NewGray(image.Rect(0, 0, 1, 1)),
		"28×28 black": image.NewGray(image.Rect(0, 0, 28, 28)),
	} {
		px, err := Decode(encodeImage(t, img), Limits{}, Options{Fit: true})
		if kindOf(err) != KindSize || !strings.Contains(err.Error(), "no ink") {
			t.Errorf("%s: got %d pixels, err = %v, want KindSize no ink", name, len(px), err)
		}
	}
	if _, err := Fit(image.NewGray(image.Rect(0, 0, 0, 0))); kindOf(err) != KindSize {
		t.Errorf("empty image: err = %v, want KindSize", err)
	}
}

func TestTaps(t *testing.T) {
	for _, c := range [][2]int{{1, 1}, {1, 20}, {3, 20}, {20, 20}, {40, 20}, {41, 20}, {1000, 20}, {60, 3}, {7, 1}} {
		for i, tp := range taps(c[0], c[1]) {
			var s float64
			for _, w := range tp.w {
				if w < 0 {
					t.Errorf("taps%v[%d]: negative weight %v", c, i, w)
				}
				s += w
			}
			if math.Abs(s-1) > 1e-9 || tp.i0 < 0 || tp.i0+len(tp.w) > c[0] {
				t.Errorf("taps%v[%d] = %+v: weights sum to %v", c, i, tp, s)
			}
		}
	}
}

// shrink2 halves an image by averaging 2×2 blocks.
func shrink2(pix []byte, w, h int) []byte {
	out := make([]byte, w/2*h/2)
	for y := range h / 2 {
		for x := range w / 2 {
			s := int(pix[2*y*w+2*x]) + int(pix[2*y*w+2*x+1]) + int(pix[(2*y+1)*w+2*x]) + int(pix[(2*y+1)*w+2*x+1])
			out[y*w/2+x] = byte((s + 2) / 4)
		}
	}
	return out
}

// bilinear resizes independently of the package's own resampler.
func bilinear(pix []byte, w, h, nw, nh int) []byte {
	at := func(x, y int) float64 {
		return float64(pix[min(max(y, 0), h-1)*w+min(max(x, 0), w-1)])
	}
	out := make([]byte, nw*nh)
	for y := range nh {
		sy := (float64(y)+0.5)*float64(h)/float64(nh) - 0.5
		y0 := int(math.Floor(sy))
		fy := sy - float64(y0)
		for x := range nw {
			sx := (float64(x)+0.5)*float64(w)/float64(nw) - 0.5
			x0 := int(math.Floor(sx))
			fx := sx - float64(x0)
			v := (1-fy)*((1-fx)*at(x0, y0)+fx*at(x0+1, y0)) + fy*((1-fx)*at(x0, y0+1)+fx*at(x0+1, y0+1))
			out[y*nw+x] = byte(math.Round(v))
		}
	}
	return out
}
