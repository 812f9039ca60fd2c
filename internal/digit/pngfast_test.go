package digit

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// greyCases are 28×28 grey images that exercise every filter choice: real
// digits, flat fields, ramps, stripes and noise.
func greyCases(t testing.TB) map[string][]byte {
	cases := map[string][]byte{}
	for i, d := range mnistDigits(t, 20) {
		cases[fmt.Sprintf("mnist %d", i)] = d
	}
	fill := func(f func(x, y int) byte) []byte {
		b := make([]byte, pixels)
		for y := range side {
			for x := range side {
				b[y*side+x] = f(x, y)
			}
		}
		return b
	}
	cases["black"] = make([]byte, pixels)
	cases["white"] = fill(func(int, int) byte { return 255 })
	cases["every level"] = fill(func(x, y int) byte { return byte(y*side + x) })
	cases["horizontal ramp"] = fill(func(x, _ int) byte { return byte(x * 9) })
	cases["vertical ramp"] = fill(func(_, y int) byte { return byte(y * 9) })
	cases["diagonal"] = fill(func(x, y int) byte { return byte((x + y) * 5) })
	cases["checkerboard"] = fill(func(x, y int) byte { return byte((x + y) % 2 * 255) })
	cases["stripes"] = fill(func(x, _ int) byte { return byte(x % 3 * 120) })
	for seed := range uint64(4) {
		r := rand.New(rand.NewPCG(seed, 7))
		cases[fmt.Sprintf("noise %d", seed)] = fill(func(int, int) byte { return byte(r.IntN(256)) })
		// Sparse noise on black, like a denoiser's input.
		cases[fmt.Sprintf("sparse noise %d", seed)] = fill(func(int, int) byte {
			if r.IntN(10) == 0 {
				return byte(r.IntN(256))
			}
			return 0
		})
	}
	return cases
}

// idatData returns the concatenated IDAT data of a PNG file, inflated.
func idatData(t testing.TB, data []byte) []byte {
	t.Helper()
	var z []byte
	for pos := 8; pos+12 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[pos:]))
		if string(data[pos+4:pos+8]) == "IDAT" {
			z = append(z, data[pos+8:pos+8+n]...)
		}
		pos += 12 + n
	}
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr) // checks the Adler-32
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestEncodePNGAgainstImagePNG: every image comes back from image/png with
// exactly its pixels, from unfiltered scanlines in the chunks image/png
// writes, and the files are no larger than image/png's at BestSpeed, in all
// and for MNIST digits, the images the server writes.
func TestEncodePNGAgainstImagePNG(t *testing.T) {
	var ours, theirs, oursMNIST, theirsMNIST int
	for name, pix := range greyCases(t) {
		data, err := EncodePNG(toFloat(pix))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: image/png cannot read it: %v", name, err)
		}
		g, ok := img.(*image.Gray)
		if !ok || g.Bounds() != image.Rect(0, 0, side, side) || !bytes.Equal(g.Pix, pix) {
			t.Fatalf("%s: image/png reads %T %v, not the pixels written", name, img, img.Bounds())
		}
		if got, want := idatData(t, data), scanlines(pix, func(int) byte { return ftNone }); !bytes.Equal(got, want) {
			t.Errorf("%s: scanlines are not the unfiltered rows (filters %v)", name, filters(got))
		}
		var types []string
		for pos := 8; pos < len(data); pos += 12 + int(binary.BigEndian.Uint32(data[pos:])) {
			types = append(types, string(data[pos+4:pos+8]))
		}
		if !slices.Equal(types, []string{"IHDR", "IDAT", "IEND"}) {
			t.Errorf("%s: chunks %v", name, types)
		}
		ref := encodeWith(t, png.BestSpeed, pix)
		ours += len(data)
		theirs += len(ref)
		if strings.HasPrefix(name, "mnist") {
			oursMNIST += len(data)
			theirsMNIST += len(ref)
		}
	}
	if ours > theirs || oursMNIST > theirsMNIST {
		t.Errorf("%d bytes in all, %d for MNIST digits; image/png's BestSpeed %d and %d", ours, oursMNIST, theirs, theirsMNIST)
	}
	t.Logf("%d bytes in all, %d for MNIST digits; image/png's BestSpeed %d and %d", ours, oursMNIST, theirs, theirsMNIST)
}

func filters(raw []byte) []byte {
	var f []byte
	for i := 0; i < len(raw); i += rowLen {
		f = append(f, raw[i])
	}
	return f
}

// pngOf frames IDAT data (split into the given chunk sizes, the rest in a
// last chunk) between a 28×28 IHDR of the given depth and type and IEND,
// with before and after spliced in as extra chunks.
func pngOf(hdr []byte, z []byte, splits []int, before, after []byte) []byte {
	b := append([]byte(pngSignature), chunk("IHDR", hdr)...)
	b = append(b, before...)
	for _, n := range splits {
		n = min(n, len(z))
		b = append(b, chunk("IDAT", z[:n])...)
		z = z[n:]
	}
	b = append(b, chunk("IDAT", z)...)
	b = append(b, after...)
	return append(b, chunk("IEND", nil)...)
}

// zlibOf compresses raw scanlines at a level.
func zlibOf(t testing.TB, raw []byte, level int) []byte {
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(raw)
	zw.Close()
	return buf.Bytes()
}

// scanlines filters pix with filter f(y) for row y.
func scanlines(pix []byte, f func(y int) byte) []byte {
	raw := make([]byte, 0, rawLen)
	prev := make([]byte, side)
	for y := range side {
		cur := pix[y*side : (y+1)*side]
		ft := f(y)
		raw = append(raw, ft)
		for x := range side {
			var a, c byte
			if x > 0 {
				a, c = cur[x-1], prev[x-1]
			}
			b := prev[x]
			var p byte
			switch ft {
			case ftSub:
				p = a
			case ftUp:
				p = b
			case ftAverage:
				p = byte((int(a) + int(b)) / 2)
			case ftPaeth:
				p = paeth(a, b, c)
			}
			raw = append(raw, cur[x]-p)
		}
		prev = cur
	}
	return raw
}

// adam7 writes pix as the seven passes of an interlaced image, unfiltered.
func adam7(pix []byte) []byte {
	var raw []byte
	for _, p := range [7][4]int{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}} {
		for y := p[1]; y < side; y += p[3] {
			raw = append(raw, ftNone)
			for x := p[0]; x < side; x += p[2] {
				raw = append(raw, pix[y*side+x])
			}
		}
	}
	return raw
}

// TestDecodeGreyAgainstImagePNG: for every kind of PNG, Decode with the fast
// path gives exactly what it gives without it (image/png), pixels or error;
// and the fast path takes exactly the files it is meant to.
func TestDecodeGreyAgainstImagePNG(t *testing.T) {
	digit := mnistDigits(t, 2)[1]
	grey8 := ihdr(side, side, 8, 0)
	cycle := scanlines(digit, func(y int) byte { return byte(y % 5) })
	z := zlibOf(t, cycle, zlib.BestSpeed)
	gAMA := chunk("gAMA", []byte{0, 0, 0xb1, 0x8f})
	tEXt := chunk("tEXt", []byte("Comment\x00hello"))
	withDict := bytes.Clone(z)
	withDict[1] |= 0x20
	withDict[1] += byte(31 - (uint16(withDict[0])<<8|uint16(withDict[1]))%31) // keep the check bits right
	badAdler := bytes.Clone(z)
	badAdler[len(badAdler)-1] ^= 1
	crcBad := pngOf(grey8, z, nil, gAMA, nil)
	crcBad[len(pngSignature)+25+10] ^= 1 // in gAMA's data
	adlerOf := func(raw []byte) []byte {
		return binary.BigEndian.AppendUint32(nil, adler32.Checksum(raw))
	}
	// A deflate stream followed by bytes that are not its checksum.
	extra := append(bytes.Clone(z), 0, 0, 0, 0)

	type tc struct {
		data []byte
		fast bool // the fast path takes it
	}
	cases := map[string]tc{
		"EncodePNG":          {validPNG(t), true},
		"no compression":     {encodeWith(t, png.NoCompression, digit), true},
		"best speed":         {encodeWith(t, png.BestSpeed, digit), true},
		"default":            {encodeWith(t, png.DefaultCompression, digit), true},
		"best compression":   {encodeWith(t, png.BestCompression, digit), true},
		"all five filters":   {pngOf(grey8, z, nil, nil, nil), true},
		"stored block":       {pngOf(grey8, zlibOf(t, cycle, zlib.NoCompression), nil, nil, nil), true},
		"IDAT in 3 chunks":   {pngOf(grey8, z, []int{1, 50}, nil, nil), true},
		"IDAT byte by byte":  {pngOf(grey8, z, slices.Repeat([]int{1}, len(z)-1), nil, nil), true},
		"empty IDATs":        {pngOf(grey8, z, []int{0, 10, 0}, nil, chunk("IDAT", nil)), true},
		"trailing IDAT":      {pngOf(grey8, z, nil, nil, append(bytes.Clone(tEXt), chunk("IDAT", []byte("ignored"))...)), true},
		"ancillary chunks":   {pngOf(grey8, z, nil, gAMA, tEXt), true},
		"ancillary in IDATs": {pngOf(grey8, z[:10], nil, nil, append(bytes.Clone(tEXt), chunk("IDAT", z[10:])...)), false},
		"tRNS":               {pngOf(grey8, z, nil, chunk("tRNS", []byte{0, 0}), nil), false},
		"PLTE":               {pngOf(grey8, z, nil, chunk("PLTE", []byte{0, 0, 0}), nil), false},
		"unknown critical":   {pngOf(grey8, z, nil, chunk("ABCD", nil), nil), false},
		"second IHDR":        {pngOf(grey8, z, nil, chunk("IHDR", grey8), nil), false},
		"ancillary CRC":      {crcBad, false},
		"preset dictionary":  {pngOf(grey8, withDict, nil, nil, nil), false},
		"bad Adler-32":       {pngOf(grey8, badAdler, nil, nil, nil), false},
		"no Adler-32":        {pngOf(grey8, z[:len(z)-4], nil, nil, nil), false},
		"bytes after zlib":   {pngOf(grey8, extra, nil, nil, nil), false},
		"bad zlib header":    {pngOf(grey8, append([]byte{0x78, 0x02}, z[2:]...), nil, nil, nil), false},
		"27 rows":            {pngOf(grey8, zlibOf(t, cycle[:rawLen-rowLen], 1), nil, nil, nil), false},
		"29 rows":            {pngOf(grey8, zlibOf(t, append(bytes.Clone(cycle), cycle[:rowLen]...), 1), nil, nil, nil), false},
		"one byte more":      {pngOf(grey8, zlibOf(t, append(bytes.Clone(cycle), 0), 1), nil, nil, nil), false},
		"filter type 5":      {pngOf(grey8, zlibOf(t, append([]byte{5}, cycle[1:]...), 1), nil, nil, nil), false},
		"interlaced":         {pngOf(append(ihdr(side, side, 8, 0)[:12], 1), zlibOf(t, adam7(digit), 1), nil, nil, nil), false},
		"interlaced as flat": {pngOf(append(ihdr(side, side, 8, 0)[:12], 1), z, nil, nil, nil), false},
		"no IDAT":            {append(append([]byte(pngSignature), chunk("IHDR", grey8)...), chunk("IEND", nil)...), false},
		"IEND with data":     {append(pngOf(grey8, z, nil, nil, nil)[:len(pngOf(grey8, z, nil, nil, nil))-12], chunk("IEND", []byte{0})...), false},
		"Adler of nothing":   {pngOf(grey8, append([]byte{0x78, 0x01, 0x03, 0x00}, adlerOf(nil)...), nil, nil, nil), false},
		"1-bit palette":      {encodeImage(t, thresholded(digit)), false},
		"paletted":           {encodeImage(t, palettedGrey(side, side, digit)), false},
		"RGBA":               {encodeImage(t, rgbaOf(digit, 255)), false},
		"translucent RGBA":   {encodeImage(t, rgbaOf(digit, 200)), false},
		"16-bit grey":        {encodeImage(t, grey16Of(digit)), false},
		"grey+alpha 8":       {pngOf(ihdr(side, side, 8, 4), zlibOf(t, greyAlpha(digit), 1), nil, nil, nil), false},
		"RGB 8":              {pngOf(ihdr(side, side, 8, 2), zlibOf(t, rgb(digit), 1), nil, nil, nil), false},
		"grey 4-bit":         {pngOf(ihdr(side, side, 4, 0), zlibOf(t, packed(digit, 4), 1), nil, nil, nil), false},
		"grey 2-bit":         {pngOf(ihdr(side, side, 2, 0), zlibOf(t, packed(digit, 2), 1), nil, nil, nil), false},
		"grey 1-bit":         {pngOf(ihdr(side, side, 1, 0), zlibOf(t, packed(digit, 1), 1), nil, nil, nil), false},
		"bad depth":          {pngOf(ihdr(side, side, 7, 0), z, nil, nil, nil), false},
		"bad compression":    {pngOf(append(ihdr(side, side, 8, 0)[:10], 1, 0, 0), z, nil, nil, nil), false},
		"bad filter method":  {pngOf(append(ihdr(side, side, 8, 0)[:10], 0, 1, 0), z, nil, nil, nil), false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := !isNil(decodeGrey(nil, c.data)); got != c.fast {
				t.Errorf("fast path taken: %v, want %v", got, c.fast)
			}
			sameAsImagePNG(t, c.data)
		})
	}
	for name, pix := range greyCases(t) {
		data := encodeWith(t, png.BestSpeed, pix)
		if isNil(decodeGrey(nil, data)) {
			t.Errorf("%s: fast path not taken", name)
		}
		sameAsImagePNG(t, data)
	}
}

// sameAsImagePNG: Decode gives the same pixels or the same error with and
// without the fast path.
func sameAsImagePNG(t *testing.T, data []byte) {
	t.Helper()
	for _, lim := range []Limits{{}, {MaxPixels: pixels}} {
		got, gerr := decode(nil, data, lim, Options{}, true)
		want, werr := decode(nil, data, lim, Options{}, false)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) || !slices.Equal(got, want) {
			t.Fatalf("fast path: %d pixels, err %v; image/png: %d pixels, err %v", len(got), gerr, len(want), werr)
		}
	}
}

func encodeWith(t testing.TB, level png.CompressionLevel, pix []byte) []byte {
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: level}).Encode(&buf, grayImage(side, side, pix)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func thresholded(pix []byte) *image.Paletted {
	p := image.NewPaletted(image.Rect(0, 0, side, side), color.Palette{color.Black, color.White})
	for i, v := range pix {
		if v > 127 {
			p.Pix[i] = 1
		}
	}
	return p
}

func rgbaOf(pix []byte, a byte) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, side, side))
	for i, v := range pix {
		copy(m.Pix[4*i:], []byte{v, v / 2, 255 - v, a})
	}
	return m
}

func grey16Of(pix []byte) *image.Gray16 {
	m := image.NewGray16(image.Rect(0, 0, side, side))
	for i, v := range pix {
		m.Pix[2*i], m.Pix[2*i+1] = v, v^0x5a
	}
	return m
}

// greyAlpha, rgb and packed are unfiltered scanlines of other pixel formats.
func greyAlpha(pix []byte) []byte {
	var raw []byte
	for y := range side {
		raw = append(raw, ftNone)
		for _, v := range pix[y*side : (y+1)*side] {
			raw = append(raw, v, 255)
		}
	}
	return raw
}

func rgb(pix []byte) []byte {
	var raw []byte
	for y := range side {
		raw = append(raw, ftNone)
		for _, v := range pix[y*side : (y+1)*side] {
			raw = append(raw, v, v, v)
		}
	}
	return raw
}

func packed(pix []byte, depth int) []byte {
	var raw []byte
	per := 8 / depth
	for y := range side {
		raw = append(raw, ftNone)
		row := pix[y*side : (y+1)*side]
		for x := 0; x < side; x += per {
			var b byte
			for k := range per {
				if x+k < side {
					b |= row[x+k] >> (8 - depth) << (8 - depth*(k+1))
				}
			}
			raw = append(raw, b)
		}
	}
	return raw
}

func isNil(px []float32, ok bool) bool {
	if ok != (px != nil) || ok && len(px) != pixels {
		panic(fmt.Sprintf("decodeGrey: %d pixels, ok %v", len(px), ok))
	}
	return !ok
}

// TestDecodeAppend: the pixels Decode gives, after what dst holds, whichever
// path decodes them; nil and Decode's error for what Decode refuses.
func TestDecodeAppend(t *testing.T) {
	d := mnistDigits(t, 1)[0]
	big := encodeImage(t, grayImage(56, 56, enlarge(d, 28, 28, 2, 2)))
	for _, c := range []struct {
		name string
		data []byte
		opt  Options
	}{
		{"fast path", validPNG(t), Options{}},
		{"image/png", encodeImage(t, rgbaOf(d, 255)), Options{}},
		{"fit", big, Options{Fit: true}},
		{"wrong size", big, Options{}},
		{"malformed", []byte(pngSignature), Options{}},
	} {
		want, werr := Decode(c.data, Limits{}, c.opt)
		for _, dst := range [][]float32{nil, {}, {0.5}, make([]float32, 3, 2000)} {
			got, err := DecodeAppend(slices.Clone(dst), c.data, Limits{}, c.opt)
			if fmt.Sprint(err) != fmt.Sprint(werr) {
				t.Fatalf("%s, dst %d: err %v, Decode's %v", c.name, len(dst), err, werr)
			}
			if werr != nil {
				if got != nil {
					t.Errorf("%s: %d values with an error", c.name, len(got))
				}
				continue
			}
			if !slices.Equal(got[:len(dst)], dst) || !slices.Equal(got[len(dst):], want) {
				t.Errorf("%s, dst %d: got %d values, not dst then Decode's %d pixels", c.name, len(dst), len(got), len(want))
			}
		}
	}
}

// TestQuantise: quantise is uint8(math.Round(clamp(v,0,1)·255)) for every
// float32 near a rounding boundary ((k+½)/255, ±4096 steps), every 997th
// float32 in [0,1], and out of range.
func TestQuantise(t *testing.T) {
	ref := func(v float32) uint8 { return uint8(math.Round(float64(min(max(v, 0), 1)) * 255)) }
	check := func(v float32) {
		if got, want := quantise(v), ref(v); got != want {
			t.Fatalf("quantise(%v) = %d, want %d", v, got, want)
		}
	}
	for k := range 256 {
		mid := math.Float32bits(float32((float64(k) + 0.5) / 255))
		for d := uint32(0); d <= 4096; d++ {
			check(math.Float32frombits(mid + d))
			check(math.Float32frombits(mid - d))
		}
	}
	for b := uint32(0); b <= math.Float32bits(1); b += 997 {
		check(math.Float32frombits(b))
	}
	for _, v := range []float32{-1, -0, 1, 2, float32(math.Inf(1)), float32(math.Inf(-1)), math.SmallestNonzeroFloat32, 0.5 / 255, 1.5 / 255} {
		check(v)
	}
}
