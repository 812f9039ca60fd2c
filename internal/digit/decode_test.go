package digit

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"image"
	"image/color"
	"math"
	"runtime"
	"strings"
	"testing"
)

func TestRoundTripEveryGreyLevel(t *testing.T) {
	px := make([]float32, pixels)
	for i := range px {
		px[i] = float32(i%256) / 255
	}
	data, err := EncodePNG(px)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data, Limits{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range px {
		if got[i] != px[i] {
			t.Fatalf("pixel %d: got %v, want %v (exactly)", i, got[i], px[i])
		}
	}
}

func TestRoundTripMNIST(t *testing.T) {
	for n, d := range mnistDigits(t, 10) {
		px := toFloat(d)
		data, err := EncodePNG(px)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(data, Limits{MaxPixels: 784}, Options{})
		if err != nil {
			t.Fatalf("digit %d: %v", n, err)
		}
		for i := range px {
			if got[i] != px[i] {
				t.Fatalf("digit %d pixel %d: got %v, want %v", n, i, got[i], px[i])
			}
		}
	}
}

func TestEncodePNG(t *testing.T) {
	px := make([]float32, pixels)
	px[0], px[1], px[2], px[3] = -1, 2, float32(math.Inf(1)), float32(math.Inf(-1))
	px[4], px[5], px[6] = 0.5/255, 1.5/255, 0.998
	data, err := EncodePNG(px)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Decode(data, Limits{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 1, 1, 0, 1.0 / 255, 2.0 / 255, 254.0 / 255}
	for i, w := range want {
		if img[i] != w {
			t.Errorf("pixel %d (from %v): got %v, want %v", i, px[i], img[i], w)
		}
	}
	// The output is an 8-bit greyscale (colour type 0) 28×28 PNG.
	if got := data[16:26]; !bytes.Equal(got, ihdr(28, 28, 8, 0)[:10]) {
		t.Errorf("IHDR = % x, want 28×28 8-bit grey", got)
	}

	for _, n := range []int{0, 783, 785} {
		if _, err := EncodePNG(make([]float32, n)); err == nil {
			t.Errorf("EncodePNG of %d pixels: no error", n)
		}
	}
	px[100] = float32(math.NaN())
	if _, err := EncodePNG(px); err == nil || !strings.Contains(err.Error(), "100") {
		t.Errorf("EncodePNG with NaN at 100: err = %v", err)
	}
}

func TestEncodePNGAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	px := toFloat(mnistDigits(t, 1)[0])
	if _, err := EncodePNG(px); err != nil {
		t.Fatal(err)
	}
	// The pools leave the returned slice; allow a little for pool churn.
	if a := testing.AllocsPerRun(100, func() { EncodePNG(px) }); a > 4 {
		t.Errorf("EncodePNG allocates %v times per call, want ≤ 4", a)
	}
}

// TestColourModels checks every PNG colour type the standard encoder writes:
// an opaque image is read by luminance, against BT.601 computed
// independently; one with any pixel less than opaque by its alpha.
func TestColourModels(t *testing.T) {
	lum := func(r, g, b, a, max float64) float64 {
		return (0.299*r + 0.587*g + 0.114*b) / max * (a / max)
	}
	rect := image.Rect(0, 0, side, side)
	type sample struct {
		x    int
		want float64
	}
	cases := []struct {
		name      string
		img       image.Image
		colorType byte // IHDR colour type and bit depth the encoder must pick
		depth     byte
		samples   []sample
		tol       float64
	}{
		{"gray", func() image.Image {
			m := image.NewGray(rect)
			m.Pix[0], m.Pix[1], m.Pix[2] = 0, 128, 255
			return m
		}(), 0, 8, []sample{{0, 0}, {1, 128.0 / 255}, {2, 1}}, 0},
		{"gray16", func() image.Image {
			m := image.NewGray16(rect)
			m.SetGray16(0, 0, color.Gray16{0})
			m.SetGray16(1, 0, color.Gray16{1})
			m.SetGray16(2, 0, color.Gray16{40000})
			m.SetGray16(3, 0, color.Gray16{65535})
			return m
		}(), 0, 16, []sample{{0, 0}, {1, 1.0 / 65535}, {2, 40000.0 / 65535}, {3, 1}}, 0},
		{"rgb8", func() image.Image {
			m := image.NewRGBA(rect)
			for i := range m.Pix {
				m.Pix[i] = 0xff // opaque black would be all zero; start from white
			}
			m.SetRGBA(0, 0, color.RGBA{255, 0, 0, 255})
			m.SetRGBA(1, 0, color.RGBA{0, 255, 0, 255})
			m.SetRGBA(2, 0, color.RGBA{0, 0, 255, 255})
			m.SetRGBA(3, 0, color.RGBA{10, 200, 30, 255})
			return m
		}(), 2, 8, []sample{
			{0, lum(255, 0, 0, 255, 255)}, {1, lum(0, 255, 0, 255, 255)}, {2, lum(0, 0, 255, 255, 255)},
			{3, lum(10, 200, 30, 255, 255)}, {4, 1},
		}, 1e-4},
		{"nrgba8 half alpha", func() image.Image {
			m := image.NewNRGBA(rect)
			m.SetNRGBA(0, 0, color.NRGBA{255, 255, 255, 128})
			m.SetNRGBA(1, 0, color.NRGBA{255, 0, 0, 128})
			m.SetNRGBA(2, 0, color.NRGBA{90, 90, 90, 255})
			m.SetNRGBA(3, 0, color.NRGBA{255, 255, 255, 0})
			return m
		}(), 6, 8, []sample{
			{0, 128.0 / 255}, {1, 128.0 / 255}, {2, 1}, {3, 0}, {4, 0},
		}, 0},
		{"nrgba8 opaque", func() image.Image {
			m := image.NewNRGBA(rect)
			for i := range m.Pix {
				m.Pix[i] = 0xff
			}
			m.SetNRGBA(0, 0, color.NRGBA{255, 0, 0, 255})
			m.SetNRGBA(1, 0, color.NRGBA{90, 90, 90, 255})
			return m
		}(), 2, 8, []sample{
			{0, lum(255, 0, 0, 255, 255)}, {1, 90.0 / 255}, {2, 1},
		}, 1e-4},
		{"paletted", func() image.Image {
			m := image.NewPaletted(rect, color.Palette{
				color.RGBA{0, 0, 0, 255},
				color.RGBA{255, 255, 255, 255},
				color.RGBA{0, 0, 200, 255},
				color.NRGBA{200, 100, 50, 64},
			})
			m.SetColorIndex(1, 0, 1)
			m.SetColorIndex(2, 0, 2)
			m.SetColorIndex(3, 0, 3)
			return m
		}(), 3, 2, []sample{
			// One translucent entry in use: every pixel is read by its alpha.
			{0, 1}, {1, 1}, {2, 1}, {3, 64.0 / 255},
		}, 0},
		{"paletted opaque", func() image.Image {
			m := image.NewPaletted(rect, color.Palette{
				color.RGBA{0, 0, 0, 255},
				color.RGBA{255, 255, 255, 255},
				color.RGBA{0, 0, 200, 255},
			})
			m.SetColorIndex(1, 0, 1)
			m.SetColorIndex(2, 0, 2)
			return m
		}(), 3, 2, []sample{
			{0, 0}, {1, 1}, {2, lum(0, 0, 200, 255, 255)},
		}, 1e-4},
		{"rgb16", func() image.Image {
			m := image.NewRGBA64(rect)
			for x := range side {
				for y := range side {
					m.SetRGBA64(x, y, color.RGBA64{0, 0, 0, 0xffff})
				}
			}
			m.SetRGBA64(0, 0, color.RGBA64{65535, 1000, 20000, 0xffff})
			m.SetRGBA64(1, 0, color.RGBA64{300, 300, 300, 0xffff})
			return m
		}(), 2, 16, []sample{
			{0, lum(65535, 1000, 20000, 65535, 65535)}, {1, 300.0 / 65535}, {2, 0},
		}, 2e-5},
		{"rgba16 alpha", func() image.Image {
			m := image.NewNRGBA64(rect)
			m.SetNRGBA64(0, 0, color.NRGBA64{65535, 65535, 65535, 32768})
			m.SetNRGBA64(1, 0, color.NRGBA64{10000, 50000, 3000, 60000})
			return m
		}(), 6, 16, []sample{
			{0, 32768.0 / 65535}, {1, 60000.0 / 65535}, {2, 0},
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := encodeImage(t, c.img)
			if data[24] != c.depth || data[25] != c.colorType {
				t.Fatalf("encoder wrote depth %d colour type %d, test wants %d/%d", data[24], data[25], c.depth, c.colorType)
			}
			px, err := Decode(data, Limits{}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range c.samples {
				if d := math.Abs(float64(px[s.x]) - s.want); d > c.tol && px[s.x] != float32(s.want) {
					t.Errorf("pixel %d = %v, want %v (±%g)", s.x, px[s.x], s.want, c.tol)
				}
			}
			// Every pixel agrees with Go's own Gray16 conversion, or, if
			// any pixel is less than opaque, with its Alpha16 conversion.
			translucent := false
			for i := range pixels {
				if _, _, _, a := c.img.At(i%side, i/side).RGBA(); a < 0xffff {
					translucent = true
				}
			}
			for i, v := range px {
				at := c.img.At(i%side, i/side)
				want, model := float32(color.Gray16Model.Convert(at).(color.Gray16).Y)/0xffff, "Gray16"
				if translucent {
					want, model = float32(color.Alpha16Model.Convert(at).(color.Alpha16).A)/0xffff, "Alpha16"
				}
				if v != want {
					t.Fatalf("pixel %d = %v, color.%sModel says %v", i, v, model, want)
				}
			}
		})
	}
}

// TestGreyGeneric covers image types PNG never produces (Fit accepts any
// image.Image) and a non-zero origin.
func TestGreyGeneric(t *testing.T) {
	cmyk := image.NewCMYK(image.Rect(5, 7, 9, 10))
	cmyk.Set(5, 7, color.CMYK{0, 200, 100, 20})
	cmyk.Set(8, 9, color.CMYK{10, 10, 10, 10})
	sub := image.NewGray(image.Rect(0, 0, 10, 10))
	sub.SetGray(3, 4, color.Gray{77})
	for _, img := range []image.Image{cmyk, sub.SubImage(image.Rect(2, 3, 6, 8))} {
		g, w, h := grey(img)
		b := img.Bounds()
		if w != b.Dx() || h != b.Dy() {
			t.Fatalf("%T: size %d×%d, want %v", img, w, h, b.Size())
		}
		for y := range h {
			for x := range w {
				want := float32(color.Gray16Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray16).Y) / 0xffff
				if g[y*w+x] != want {
					t.Errorf("%T (%d,%d) = %v, want %v", img, x, y, g[y*w+x], want)
				}
			}
		}
	}
}

// bomb is a well-formed PNG whose IHDR claims w×h grey pixels with only a
// few bytes of IDAT behind it.
func bomb(w, h uint32) []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(make([]byte, 1000))
	zw.Close()
	b := []byte(pngSignature)
	b = append(b, chunk("IHDR", ihdr(w, h, 8, 0))...)
	b = append(b, chunk("IDAT", z.Bytes())...)
	return append(b, chunk("IEND", nil)...)
}

func TestHeaderBombRefusedWithoutAllocating(t *testing.T) {
	data := bomb(100000, 100000)
	for _, lim := range []Limits{{}, {MaxPixels: 1 << 22}, {MaxPixels: 1 << 30}} {
		_, err := Decode(data, lim, Options{Fit: true})
		if kindOf(err) != KindTooLarge {
			t.Fatalf("limit %d: err = %v, want KindTooLarge", lim.MaxPixels, err)
		}
	}
	if !strings.Contains(fmt.Sprint(Decode(data, Limits{MaxPixels: 1000}, Options{})), "100000×100000") {
		t.Error("error does not name the declared size")
	}

	allocs := testing.AllocsPerRun(50, func() { Decode(data, Limits{MaxPixels: 1 << 22}, Options{}) })
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const runs = 100
	for range runs {
		Decode(data, Limits{MaxPixels: 1 << 22}, Options{})
	}
	runtime.ReadMemStats(&after)
	perCall := (after.TotalAlloc - before.TotalAlloc) / runs
	t.Logf("refusing a 10-gigapixel header: %v allocs, %d bytes per call", allocs, perCall)
	if allocs > 10 || perCall > 1024 {
		t.Errorf("refusing the bomb costs %v allocs and %d bytes per call", allocs, perCall)
	}

	// Just within the limit the same file is decoded (and found malformed,
	// since its IDAT is far too short), proving the refusal came from the
	// header. (With fit: without it, 100×100 is refused from the header too.)
	_, err := Decode(bomb(100, 100), Limits{MaxPixels: 100 * 100}, Options{Fit: true})
	if kindOf(err) != KindMalformed {
		t.Errorf("100×100 with short IDAT: err = %v, want KindMalformed", err)
	}
}

func validPNG(t testing.TB) []byte {
	data, err := EncodePNG(toFloat(mnistDigits(t, 1)[0]))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestTrailingBytes(t *testing.T) {
	data := validPNG(t)
	for _, extra := range [][]byte{{0}, []byte("junk"), data} {
		_, err := Decode(append(bytes.Clone(data), extra...), Limits{}, Options{})
		want := fmt.Sprintf("trailing %d bytes after IEND", len(extra))
		if kindOf(err) != KindMalformed || !strings.Contains(err.Error(), want) {
			t.Errorf("with %d extra bytes: err = %v, want KindMalformed %q", len(extra), err, want)
		}
	}
}

func TestTruncated(t *testing.T) {
	data := validPNG(t)
	for n := range len(data) {
		if _, err := Decode(data[:n], Limits{}, Options{}); kindOf(err) != KindMalformed {
			t.Fatalf("first %d of %d bytes: err = %v, want KindMalformed", n, len(data), err)
		}
	}
}

func TestMalformed(t *testing.T) {
	valid := validPNG(t)
	corrupt := func(i int) []byte {
		b := bytes.Clone(valid)
		b[i] ^= 0x40
		return b
	}
	badIHDR := bomb(100000, 100000)
	badIHDR[20] ^= 1 // height changes, CRC no longer matches: corrupt, not "too large"
	noIDAT := append([]byte(pngSignature), chunk("IHDR", ihdr(28, 28, 8, 0))...)
	noIDAT = append(noIDAT, chunk("IEND", nil)...)
	badDepth := append([]byte(pngSignature), chunk("IHDR", ihdr(28, 28, 7, 0))...)
	badDepth = append(badDepth, valid[33:]...)
	hugeChunk := append(bytes.Clone(valid[:33]), 0xff, 0xff, 0xff, 0xff, 'I', 'D', 'A', 'T')

	cases := map[string][]byte{
		"empty":             nil,
		"gif":               []byte("GIF89a\x1c\x00\x1c\x00\x00\x00\x00;"),
		"jpeg":              {0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0},
		"signature only":    []byte(pngSignature),
		"half a signature":  []byte(pngSignature[:4]),
		"IHDR CRC":          corrupt(30),
		"bad IHDR bomb":     badIHDR,
		"IDAT CRC":          corrupt(len(valid) - 13),
		"IDAT data":         corrupt(45),
		"no IDAT":           noIDAT,
		"bad bit depth":     badDepth,
		"huge chunk length": hugeChunk,
		"zero width":        append(append([]byte(pngSignature), chunk("IHDR", ihdr(0, 28, 8, 0))...), chunk("IEND", nil)...),
		"first chunk not IHDR": append(append([]byte(pngSignature), chunk("gAMA", []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})...),
			chunk("IEND", nil)...),
	}
	for name, data := range cases {
		px, err := Decode(data, Limits{}, Options{Fit: true})
		if kindOf(err) != KindMalformed {
			t.Errorf("%s: got %d pixels, err = %v, want KindMalformed", name, len(px), err)
		}
	}
}

// Bytes of no format Decode reads are KindFormat, not malformed: the server
// answers 415 naming the formats it takes.
func TestUnknownFormat(t *testing.T) {
	valid := validPNG(t)
	badSig := bytes.Clone(valid)
	badSig[1] ^= 0x40
	for name, data := range map[string][]byte{
		"text":          []byte("hello, world"),
		"bad signature": badSig,
		"webp":          []byte("RIFF\x24\x00\x00\x00WEBPVP8 "),
		"bmp":           []byte("BM\x36\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00"),
		"zeros":         make([]byte, 100),
	} {
		for _, fit := range []bool{false, true} {
			_, err := Decode(data, Limits{}, Options{Fit: fit})
			if kindOf(err) != KindFormat || !strings.Contains(err.Error(), "PNG, JPEG or GIF") {
				t.Errorf("%s (fit %v): err = %v, want KindFormat naming PNG, JPEG and GIF", name, fit, err)
			}
		}
	}
}

func TestWrongSize(t *testing.T) {
	data := encodeImage(t, image.NewGray(image.Rect(0, 0, 32, 30)))
	_, err := Decode(data, Limits{}, Options{})
	if kindOf(err) != KindSize || err.Error() != "image is 32×30, want 28×28 (send fit=true to resize)" {
		t.Errorf("err = %v, want KindSize about 32×30", err)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindMalformed: "malformed", KindTooLarge: "too large", KindSize: "size", KindFormat: "format", 0: "Kind(0)"} {
		if k.String() != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), k.String(), want)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	data := validPNG(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data, Limits{}, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePNG(b *testing.B) {
	px := toFloat(mnistDigits(b, 1)[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodePNG(px); err != nil {
			b.Fatal(err)
		}
	}
}
