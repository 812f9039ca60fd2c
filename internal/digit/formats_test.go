package digit

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func encodeJPEG(t testing.TB, img image.Image, quality int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// greyPalette is 256 greys, so that a grey image survives GIF exactly.
var greyPalette = func() color.Palette {
	p := make(color.Palette, 256)
	for i := range p {
		p[i] = color.Gray{uint8(i)}
	}
	return p
}()

func palettedGrey(w, h int, pix []byte) *image.Paletted {
	m := image.NewPaletted(image.Rect(0, 0, w, h), greyPalette)
	copy(m.Pix, pix)
	return m
}

func encodeGIF(t testing.TB, g *gif.GIF) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, g); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withEXIF inserts an APP1 Exif segment holding orientation o right after a
// JPEG's SOI marker, in the given byte order.
func withEXIF(jpg []byte, o uint16, order binary.ByteOrder) []byte {
	bo := order.(binary.AppendByteOrder)
	tiff := []byte("MM\x00*")
	if order == binary.ByteOrder(binary.LittleEndian) {
		tiff = []byte("II*\x00")
	}
	tiff = bo.AppendUint32(tiff, 8)      // IFD0 right after the header
	tiff = bo.AppendUint16(tiff, 2)      // two entries
	tiff = bo.AppendUint16(tiff, 0x010f) // Make, ASCII, 4 bytes inline: not ours
	tiff = bo.AppendUint16(tiff, 2)
	tiff = bo.AppendUint32(tiff, 4)
	tiff = append(tiff, 'G', 'o', '!', 0)
	tiff = bo.AppendUint16(tiff, 0x0112) // Orientation, SHORT, 1
	tiff = bo.AppendUint16(tiff, 3)
	tiff = bo.AppendUint32(tiff, 1)
	tiff = bo.AppendUint16(tiff, o)
	tiff = bo.AppendUint16(tiff, 0)
	tiff = bo.AppendUint32(tiff, 0) // no next IFD
	return withAPP1(jpg, append([]byte("Exif\x00\x00"), tiff...))
}

func withAPP1(jpg, payload []byte) []byte {
	seg := []byte{0xff, 0xe1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(len(payload)+2))
	seg = append(seg, payload...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// shiftedPearson is the best correlation of a with b shifted by up to a
// pixel each way: Fit places the centre of mass to the nearest pixel, and
// half a pixel of difference in a stroke's position or weight may round either way.
func shiftedPearson(a, b []float32) float64 {
	best := -1.0
	for dy := -1; dy <= 1; dy++ {
		for dx := -1; dx <= 1; dx++ {
			s := make([]float32, pixels)
			for y := range side {
				for x := range side {
					if sx, sy := x+dx, y+dy; sx >= 0 && sy >= 0 && sx < side && sy < side {
						s[y*side+x] = b[sy*side+sx]
					}
				}
			}
			best = max(best, pearson(a, s))
		}
	}
	return best
}

// pearson is the correlation of two images' pixels.
func pearson(a, b []float32) float64 {
	var ma, mb float64
	for i := range a {
		ma += float64(a[i])
		mb += float64(b[i])
	}
	ma /= float64(len(a))
	mb /= float64(len(b))
	var sab, saa, sbb float64
	for i := range a {
		da, db := float64(a[i])-ma, float64(b[i])-mb
		sab += da * db
		saa += da * da
		sbb += db * db
	}
	return sab / math.Sqrt(saa*sbb)
}

func TestDecodeJPEG(t *testing.T) {
	for n, d := range mnistDigits(t, 10) {
		want := toFloat(d)
		grey := encodeJPEG(t, grayImage(28, 28, d), 100)
		rgb := image.NewRGBA(image.Rect(0, 0, 28, 28))
		for i, v := range d {
			rgb.SetRGBA(i%28, i/28, color.RGBA{v, v, v, 255})
		}
		colour := encodeJPEG(t, rgb, 100)
		for name, data := range map[string][]byte{"grey": grey, "YCbCr": colour} {
			if f, ok := Sniff(data); !ok || f != JPEG {
				t.Fatalf("Sniff = %v %v", f, ok)
			}
			px, err := Decode(data, Limits{}, Options{})
			if err != nil {
				t.Fatalf("digit %d %s: %v", n, name, err)
			}
			if mad := meanAbsDiff(px, want); mad > 0.01 {
				t.Errorf("digit %d %s JPEG: mean abs diff %.4f from the original", n, name, mad)
			}
		}
		// Larger, through fit: the same digit as fitting the original.
		ref, err := Fit(grayImage(28, 28, d))
		if err != nil {
			t.Fatal(err)
		}
		// JPEG's ringing around the strokes is no photo background: it
		// must not cost the digit anything.
		for _, q := range []int{75, 95} {
			px, err := Decode(encodeJPEG(t, grayImage(84, 84, enlarge(d, 28, 28, 3, 3)), q), Limits{}, Options{Fit: true})
			if err != nil {
				t.Fatal(err)
			}
			if c := pearson(px, ref); c < 0.97 {
				t.Errorf("digit %d as an 84×84 JPEG at quality %d, fitted: correlation %.3f with the fitted original", n, q, c)
			}
		}
	}
	// A JPEG that is not 28×28 is refused from its header without fit.
	_, err := Decode(encodeJPEG(t, image.NewGray(image.Rect(0, 0, 40, 30)), 90), Limits{}, Options{})
	if kindOf(err) != KindSize || !strings.Contains(err.Error(), "40×30") {
		t.Errorf("40×30 JPEG: err = %v, want KindSize", err)
	}
}

func TestDecodeGIF(t *testing.T) {
	ds := mnistDigits(t, 3)
	for n, d := range ds {
		data := encodeGIF(t, &gif.GIF{Image: []*image.Paletted{palettedGrey(28, 28, d)}, Delay: []int{0}})
		px, err := Decode(data, Limits{}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if mad := meanAbsDiff(px, toFloat(d)); mad != 0 {
			t.Errorf("digit %d as a GIF: mean abs diff %v, want exact", n, mad)
		}
	}
	// An animation: its first frame is the image.
	anim := encodeGIF(t, &gif.GIF{
		Image: []*image.Paletted{palettedGrey(28, 28, ds[0]), palettedGrey(28, 28, ds[1]), palettedGrey(28, 28, ds[2])},
		Delay: []int{10, 10, 10},
	})
	px, err := Decode(anim, Limits{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if mad := meanAbsDiff(px, toFloat(ds[0])); mad != 0 {
		t.Errorf("animated GIF: mean abs diff %v from its first frame", mad)
	}
	// The header gives the logical screen; the size rule applies to it.
	wide := encodeGIF(t, &gif.GIF{Image: []*image.Paletted{palettedGrey(30, 28, make([]byte, 30*28))}, Delay: []int{0}})
	if h, err := ReadHeader(wide, Limits{}); err != nil || h != (Header{Format: GIF, Width: 30, Height: 28, Orientation: 1}) {
		t.Errorf("ReadHeader = %+v, %v", h, err)
	}
	if _, err := Decode(wide, Limits{}, Options{}); kindOf(err) != KindSize {
		t.Errorf("30×28 GIF without fit: err = %v, want KindSize", err)
	}
	// A first frame covering part of the logical screen: the rest is
	// transparent, as a browser shows it, so the frame is read by opacity.
	part := encodeGIF(t, &gif.GIF{
		Image:  []*image.Paletted{image.NewPaletted(image.Rect(5, 0, 15, 12), greyPalette), palettedGrey(28, 28, ds[0])},
		Delay:  []int{1, 1},
		Config: image.Config{ColorModel: greyPalette, Width: 28, Height: 28},
	})
	px, err = Decode(part, Limits{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range px {
		x, y := i%28, i/28
		if in := x >= 5 && x < 15 && y < 12; in != (v == 1) {
			t.Fatalf("partial first frame: pixel (%d,%d) = %v", x, y, v)
		}
	}
	// A transparent background (the usual way to draw on a GIF): ink is opacity.
	pal := image.NewPaletted(image.Rect(0, 0, 28, 28), color.Palette{color.Transparent, color.Black})
	for i, v := range ds[1] {
		if v > 127 {
			pal.Pix[i] = 1
		}
	}
	px, err = Decode(encodeGIF(t, &gif.GIF{Image: []*image.Paletted{pal}, Delay: []int{0}}), Limits{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range ds[1] {
		if want := float32(0); v > 127 && px[i] != 1 || v <= 127 && px[i] != want {
			t.Fatalf("black on transparent GIF: pixel %d = %v (source %d)", i, px[i], v)
		}
	}
}

// The display image D of each orientation is stored as S, the transform a
// viewer undoes: Decode must give back D.
func TestEXIFOrientation(t *testing.T) {
	const n = 28
	d := mnistDigits(t, 3)[2] // a 1: far from symmetric under these maps
	// Independent of orientPlane: rotations and flips of square images.
	rotCW := func(a []byte) []byte { // new (x, y) = old (y, n-1-x)... as a viewer turns it
		out := make([]byte, len(a))
		for y := range n {
			for x := range n {
				out[y*n+x] = a[(n-1-x)*n+y]
			}
		}
		return out
	}
	flipH := func(a []byte) []byte {
		out := make([]byte, len(a))
		for y := range n {
			for x := range n {
				out[y*n+x] = a[y*n+n-1-x]
			}
		}
		return out
	}
	rot180 := func(a []byte) []byte { return rotCW(rotCW(a)) }
	rotCCW := func(a []byte) []byte { return rotCW(rotCW(rotCW(a))) }
	stored := map[uint16][]byte{
		1: d,
		2: flipH(d),
		3: rot180(d),
		4: flipH(rot180(d)),
		5: flipH(rotCW(d)), // transpose
		6: rotCCW(d),
		7: flipH(rotCCW(d)), // transverse
		8: rotCW(d),
	}
	for o := uint16(1); o <= 8; o++ {
		for _, bo := range []binary.ByteOrder{binary.BigEndian, binary.LittleEndian} {
			data := withEXIF(encodeJPEG(t, grayImage(n, n, stored[o]), 100), o, bo)
			h, err := ReadHeader(data, Limits{})
			if err != nil || h.Orientation != int(o) {
				t.Fatalf("orientation %d (%v): header %+v, %v", o, bo, h, err)
			}
			px, err := Decode(data, Limits{}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			right, asStored := meanAbsDiff(px, toFloat(d)), meanAbsDiff(px, toFloat(stored[o]))
			if right > 0.01 || (o != 1 && asStored < 0.05) {
				t.Errorf("orientation %d (%v): mean abs diff %.4f from the upright digit, %.4f from the stored one", o, bo, right, asStored)
			}
		}
	}
	// Turned by 90°, a 40×30 photo is 30×40: the header says so, and so
	// does the size rule.
	data := withEXIF(encodeJPEG(t, image.NewGray(image.Rect(0, 0, 40, 30)), 90), 6, binary.BigEndian)
	if h, err := ReadHeader(data, Limits{}); err != nil || h.Width != 30 || h.Height != 40 {
		t.Errorf("40×30 stored, orientation 6: header %+v, %v; want 30×40", h, err)
	}
	if _, err := Decode(data, Limits{}, Options{}); err == nil || !strings.Contains(err.Error(), "30×40") {
		t.Errorf("err = %v, want the displayed size 30×40", err)
	}
	// Through fit, a tall digit photographed sideways comes out upright.
	tall := enlarge(d, 28, 28, 2, 3) // 56×84
	var side []byte
	{
		out := make([]byte, len(tall))
		for y := range 56 { // stored 84×56: the display turned counter-clockwise
			for x := range 84 {
				out[y*84+x] = tall[x*56+55-y]
			}
		}
		side = out
	}
	ref, err := Fit(grayImage(56, 84, tall))
	if err != nil {
		t.Fatal(err)
	}
	px, err := Decode(withEXIF(encodeJPEG(t, grayImage(84, 56, side), 100), 6, binary.LittleEndian), Limits{}, Options{Fit: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := pearson(px, ref); c < 0.97 {
		t.Errorf("sideways tall digit with orientation 6: correlation %.3f with the upright one", c)
	}
}

// Corrupt EXIF never fails an image that decodes, and never panics: the
// orientation is then 1.
func TestEXIFCorrupt(t *testing.T) {
	base := encodeJPEG(t, grayImage(28, 28, mnistDigits(t, 1)[0]), 90)
	good := withEXIF(base, 6, binary.BigEndian)
	exifAt := bytes.Index(good, []byte("Exif\x00\x00")) + 6
	mutate := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	le := func(s string) []byte { return withAPP1(base, append([]byte("Exif\x00\x00"), s...)) }
	cases := map[string][]byte{
		"no TIFF header":       le(""),
		"short TIFF header":    le("MM\x00*\x00\x00"),
		"bad byte order":       mutate(func(b []byte) { b[exifAt] = 'X' }),
		"IFD offset past end":  mutate(func(b []byte) { binary.BigEndian.PutUint32(b[exifAt+4:], 1<<31) }),
		"IFD offset inside":    mutate(func(b []byte) { binary.BigEndian.PutUint32(b[exifAt+4:], 2) }),
		"IFD offset max":       mutate(func(b []byte) { binary.BigEndian.PutUint32(b[exifAt+4:], math.MaxUint32) }),
		"orientation 0":        withEXIF(base, 0, binary.BigEndian),
		"orientation 9":        withEXIF(base, 9, binary.LittleEndian),
		"orientation 0xffff":   withEXIF(base, 0xffff, binary.BigEndian),
		"wrong type":           mutate(func(b []byte) { binary.BigEndian.PutUint16(b[exifAt+10+12+2:], 7) }),
		"two values":           mutate(func(b []byte) { binary.BigEndian.PutUint32(b[exifAt+10+12+4:], 2) }),
		"segment length 0":     append(append([]byte{0xff, 0xd8, 0xff, 0xe1, 0, 0}, "Exif\x00\x00MM"...), base[2:]...),
		"segment length 1":     append([]byte{0xff, 0xd8, 0xff, 0xe1, 0, 1}, base[2:]...),
		"segment past the end": append([]byte{0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff, 'E', 'x', 'i', 'f', 0, 0}, base[2:]...),
	}
	for name, data := range cases {
		if o := jpegOrientation(data); o != 1 {
			t.Errorf("%s: orientation %d, want 1", name, o)
		}
	}
	// Those whose JPEG structure is intact still decode.
	for _, name := range []string{"no TIFF header", "bad byte order", "IFD offset past end", "orientation 9", "wrong type"} {
		if _, err := Decode(cases[name], Limits{}, Options{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// An entry count past the segment's end: the entries that are there are
	// read, and the walk stops at the end.
	huge := mutate(func(b []byte) { binary.BigEndian.PutUint16(b[exifAt+8:], 0xffff) })
	if o := jpegOrientation(huge); o != 6 {
		t.Errorf("entry count 65535: orientation %d, want the 6 among the entries present", o)
	}
	noOrientation := mutate(func(b []byte) {
		binary.BigEndian.PutUint16(b[exifAt+8:], 0xffff)
		binary.BigEndian.PutUint16(b[exifAt+10+12:], 0x0110) // Model, not Orientation
	})
	if o := jpegOrientation(noOrientation); o != 1 {
		t.Errorf("entry count 65535 without the tag: orientation %d, want 1", o)
	}
	// Every prefix of a JPEG with EXIF: no panic, orientation 6 or 1.
	for n := range len(good) {
		if o := jpegOrientation(good[:n]); o != 1 && o != 6 {
			t.Fatalf("first %d bytes: orientation %d", n, o)
		}
	}
}

func FuzzJPEGOrientation(f *testing.F) {
	base := encodeJPEG(f, grayImage(28, 28, mnistDigits(f, 1)[0]), 90)
	f.Add(withEXIF(base, 6, binary.BigEndian))
	f.Add(withEXIF(base, 3, binary.LittleEndian))
	f.Add(base)
	f.Add([]byte{0xff, 0xd8, 0xff, 0xff, 0xff, 0xe1, 0, 8, 'E', 'x', 'i', 'f', 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if o := jpegOrientation(data); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

// Dark strokes on a transparent canvas, as an HTML canvas or a drawing app
// exports them: the ink is the opacity, whatever the strokes' colour.
func TestTransparentInk(t *testing.T) {
	for n, d := range mnistDigits(t, 5) {
		for _, ink := range []color.NRGBA{{0, 0, 0, 0}, {20, 40, 200, 0}, {255, 255, 255, 0}} {
			img := image.NewNRGBA(image.Rect(0, 0, 28, 28))
			for i, v := range d {
				c := ink
				c.A = v
				img.SetNRGBA(i%28, i/28, c)
			}
			px, err := Decode(encodeImage(t, img), Limits{}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if mad := meanAbsDiff(px, toFloat(d)); mad != 0 {
				t.Errorf("digit %d in %v on transparent: mean abs diff %v, want exactly the alpha", n, ink, mad)
			}
		}
		// Larger, as a canvas exports it: fitted as the digit itself.
		big := enlarge(d, 28, 28, 4, 4)
		img := image.NewNRGBA(image.Rect(0, 0, 112, 112))
		for i, v := range big {
			img.SetNRGBA(i%112, i/112, color.NRGBA{0, 0, 0, v})
		}
		ref, err := Fit(grayImage(28, 28, d))
		if err != nil {
			t.Fatal(err)
		}
		px, err := Decode(encodeImage(t, img), Limits{}, Options{Fit: true})
		if err != nil {
			t.Fatal(err)
		}
		if mad := meanAbsDiff(px, ref); mad > 1e-6 {
			t.Errorf("digit %d black on transparent ×4 with fit: mean abs diff %v from the fitted digit", n, mad)
		}
	}
	// Opaque images keep the luminance rule: black on opaque white is
	// inverted by fit, and without fit reads as the dark image it is.
	d := mnistDigits(t, 1)[0]
	img := image.NewNRGBA(image.Rect(0, 0, 28, 28))
	for i, v := range d {
		img.SetNRGBA(i%28, i/28, color.NRGBA{255 - v, 255 - v, 255 - v, 255})
	}
	px, err := Decode(encodeImage(t, img), Limits{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if px[0] != 1 {
		t.Errorf("opaque white background reads as %v, want 1", px[0])
	}
}

// photo renders an MNIST digit as a phone photographs one written on paper:
// dark ink on a bright page lit unevenly (brighter to the right and
// bottom), with sensor noise; w×h, the digit size pixels square at (ox, oy).
func photo(d []byte, w, h, size, ox, oy int, seed uint64) *image.Gray {
	big := bilinear(d, 28, 28, size, size)
	rng := rand.New(rand.NewPCG(seed, 1))
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			light := 0.45 + 0.4*float64(x)/float64(w) + 0.12*float64(y)/float64(h)
			ink := 0.0
			if bx, by := x-ox, y-oy; bx >= 0 && by >= 0 && bx < size && by < size {
				ink = float64(big[by*size+bx]) / 255
			}
			v := light*(1-0.8*ink) + 0.07*rng.NormFloat64()
			img.Pix[y*w+x] = uint8(min(max(math.Round(v*255), 0), 255))
		}
	}
	return img
}

// A photo of a digit on paper, fitted, is the digit: its background is
// found and removed before the crop (without, the crop takes in the whole
// unevenly lit page and the digit comes out a speck).
func TestFitPhoto(t *testing.T) {
	for n, d := range mnistDigits(t, 10) {
		ref, err := Fit(grayImage(28, 28, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			w, h, size, ox, oy int
			jpeg               bool
		}{
			{480, 360, 200, 60, 120, false},   // worked on at full size
			{1600, 1200, 600, 500, 300, true}, // box-averaged 4× to 400×300
		} {
			if c.w > 1000 && n >= 5 {
				continue // the large ones take their time
			}
			img := photo(d, c.w, c.h, c.size, c.ox, c.oy, uint64(n))
			name, data := "PNG", encodeImage(t, img)
			if c.jpeg {
				name, data = "JPEG", encodeJPEG(t, img, 85)
			}
			px, err := Decode(data, Limits{MaxPixels: 4 << 20}, Options{Fit: true})
			if err != nil {
				t.Fatalf("digit %d %d×%d %s: %v", n, c.w, c.h, name, err)
			}
			corr := shiftedPearson(px, ref)
			t.Logf("digit %d %d×%d %s: correlation %.3f", n, c.w, c.h, name, corr)
			if corr < 0.88 {
				t.Errorf("digit %d photographed %d×%d (%s), fitted: correlation %.3f with the fitted digit, want ≥ 0.88",
					n, c.w, c.h, name, corr)
			}
			checkInkBox(t, fmt.Sprintf("digit %d %d×%d %s", n, c.w, c.h, name), px)
		}
	}
}

// sample box-averages a large image as it reads it; k×k blocks, partial at
// the edges, and exact values when no reduction is needed.
func TestSampleBoxDownscale(t *testing.T) {
	const w, h = 1030, 700 // k = 3: 344×234, the last column and row partial
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8((i*7 + i/w*13) % 256)
	}
	s := sample(img, img.Bounds(), workSide)
	if s.w != 344 || s.h != 234 || s.transparent {
		t.Fatalf("sampled %d×%d (transparent %v), want 344×234", s.w, s.h, s.transparent)
	}
	for _, p := range [][2]int{{0, 0}, {343, 0}, {0, 233}, {343, 233}, {100, 77}} {
		var sum, n float64
		for y := p[1] * 3; y < min(p[1]*3+3, h); y++ {
			for x := p[0] * 3; x < min(p[0]*3+3, w); x++ {
				sum += float64(img.Pix[y*w+x]) / 255
				n++
			}
		}
		if got := s.lum[p[1]*s.w+p[0]]; math.Abs(float64(got)-sum/n) > 1e-6 {
			t.Errorf("cell %v = %v, want the mean of its block %v", p, got, sum/n)
		}
	}
	if s := sample(img.SubImage(image.Rect(0, 0, 512, 300)), image.Rect(0, 0, 512, 300), workSide); s.w != 512 || s.h != 300 {
		t.Errorf("512×300 sampled to %d×%d, want as it is", s.w, s.h)
	}
}

func TestReadHeader(t *testing.T) {
	jpg := encodeJPEG(t, image.NewGray(image.Rect(0, 0, 40, 30)), 90)
	gf := encodeGIF(t, &gif.GIF{Image: []*image.Paletted{palettedGrey(33, 21, make([]byte, 33*21))}, Delay: []int{0}})
	for name, c := range map[string]struct {
		data []byte
		want Header
	}{
		"PNG":  {encodeImage(t, image.NewGray(image.Rect(0, 0, 50, 20))), Header{PNG, 50, 20, 1}},
		"JPEG": {jpg, Header{JPEG, 40, 30, 1}},
		"GIF":  {gf, Header{GIF, 33, 21, 1}},
	} {
		h, err := ReadHeader(c.data, Limits{})
		if err != nil || h != c.want {
			t.Errorf("%s: %+v, %v; want %+v", name, h, err, c.want)
		}
	}
	// Too large, from the header alone: SOF and the logical screen patched
	// to 60000×60000 with no pixel data to match.
	bigJPEG := bytes.Clone(jpg)
	sof := bytes.Index(bigJPEG, []byte{0xff, 0xc0})
	binary.BigEndian.PutUint16(bigJPEG[sof+5:], 60000)
	binary.BigEndian.PutUint16(bigJPEG[sof+7:], 60000)
	bigGIF := bytes.Clone(gf)
	binary.LittleEndian.PutUint16(bigGIF[6:], 60000)
	binary.LittleEndian.PutUint16(bigGIF[8:], 60000)
	for name, data := range map[string][]byte{"JPEG": bigJPEG, "GIF": bigGIF} {
		_, err := ReadHeader(data, Limits{MaxPixels: 50_000_000})
		if kindOf(err) != KindTooLarge || !strings.Contains(err.Error(), "60000×60000") {
			t.Errorf("%s declaring 60000×60000: err = %v, want KindTooLarge", name, err)
		}
		allocs := testing.AllocsPerRun(10, func() { Decode(data, Limits{MaxPixels: 50_000_000}, Options{Fit: true}) })
		t.Logf("%s: refusing 3.6 Gpx from the header: %v allocs", name, allocs)
	}
	// A corrupt file with a known signature is malformed (400), not an
	// unknown format (415).
	for name, data := range map[string][]byte{
		"JPEG cut": jpg[:len(jpg)/2],
		"GIF cut":  gf[:20],
		"JPEG SOI": []byte("\xff\xd8\xff\xd9"),
	} {
		if _, err := Decode(data, Limits{}, Options{Fit: true}); kindOf(err) != KindMalformed {
			t.Errorf("%s: err = %v, want KindMalformed", name, err)
		}
	}
	if _, err := ReadHeader(nil, Limits{}); kindOf(err) != KindMalformed || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty: err = %v, want KindMalformed saying empty", err)
	}
}
