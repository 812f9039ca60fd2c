package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/digit"
)

// greyOf is MNIST test digit i as an 8-bit grey image, scaled k× by pixel
// replication and inverted (dark on light) if asked.
func greyOf(t testing.TB, i, k int, inverted bool) *image.Gray {
	t.Helper()
	px, _ := mnistDigit(t, i)
	img := image.NewGray(image.Rect(0, 0, 28*k, 28*k))
	for y := range 28 * k {
		for x := range 28 * k {
			v := uint8(px[(y/k)*28+x/k]*255 + 0.5)
			if inverted {
				v = 255 - v
			}
			img.Pix[y*img.Stride+x] = v
		}
	}
	return img
}

func jpegOf(t testing.TB, img image.Image, quality int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pngOf(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gifOf encodes frames of grey images as an (animated, if several) GIF
// with a 256-grey palette, so that each frame survives exactly.
func gifOf(t testing.TB, frames ...*image.Gray) []byte {
	t.Helper()
	pal := make(color.Palette, 256)
	for i := range pal {
		pal[i] = color.Gray{uint8(i)}
	}
	g := &gif.GIF{}
	for _, f := range frames {
		p := image.NewPaletted(f.Bounds(), pal)
		copy(p.Pix, f.Pix)
		g.Image = append(g.Image, p)
		g.Delay = append(g.Delay, 10)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, g); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withOrientation puts an EXIF APP1 segment with orientation o right after a
// JPEG's SOI.
func withOrientation(jpg []byte, o uint16) []byte {
	tiff := []byte("MM\x00*\x00\x00\x00\x08\x00\x01")
	tiff = binary.BigEndian.AppendUint16(tiff, 0x0112)
	tiff = binary.BigEndian.AppendUint16(tiff, 3)
	tiff = binary.BigEndian.AppendUint32(tiff, 1)
	tiff = binary.BigEndian.AppendUint16(tiff, o)
	tiff = append(tiff, 0, 0, 0, 0, 0, 0)
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := binary.BigEndian.AppendUint16([]byte{0xff, 0xe1}, uint16(len(payload)+2))
	out := append(append(append([]byte{}, jpg[:2]...), seg...), payload...)
	return append(out, jpg[2:]...)
}

// rotateCCW turns a grey image 90° counter-clockwise: stored so, with EXIF
// orientation 6 a viewer shows it upright.
func rotateCCW(img *image.Gray) *image.Gray {
	b := img.Bounds()
	out := image.NewGray(image.Rect(0, 0, b.Dy(), b.Dx()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			out.SetGray(y, b.Dx()-1-x, img.GrayAt(x, y))
		}
	}
	return out
}

// part is one file of a multipart body, with its own Content-Type ("" for none).
type part struct {
	ctype string
	data  []byte
}

func multipartParts(t testing.TB, parts ...part) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename="%d"`, imageField, i))
		if p.ctype != "" {
			h.Set("Content-Type", p.ctype)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.data)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

func digitOf(t testing.TB, r *reply) int {
	t.Helper()
	var c api.Classification
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatalf("classification: %v: %s", err, r.body)
	}
	return c.Digit
}

// JPEG and GIF are taken as PNG is, raw and in multipart, and give the
// same answers for the same pixels.
func TestImageFormats(t *testing.T) {
	e := newEnv(t)
	const n = 12
	ref := e.post("/v1/reconstruct", ctPNG, mustPNG(t, n))
	wantStatus(t, ref, http.StatusOK)
	want := pngPixels(t, ref.body)
	img := greyOf(t, n, 1, false)
	other := greyOf(t, n+1, 1, false)
	for _, tc := range []struct {
		name   string
		ctype  string
		body   []byte
		maxDif int // grey levels from the PNG's reconstruction
	}{
		{"raw JPEG", ctJPEG, jpegOf(t, img, 100), 12},
		{"raw GIF", ctGIF, gifOf(t, img), 0},
		{"animated GIF: its first frame", ctGIF, gifOf(t, img, other, other), 0},
		{"colour JPEG", ctJPEG, jpegOf(t, func() image.Image {
			c := image.NewRGBA(img.Bounds())
			for i, v := range img.Pix {
				c.SetRGBA(i%28, i/28, color.RGBA{v, v, v, 255})
			}
			return c
		}(), 100), 12},
		{"JPEG stored sideways, EXIF orientation 6", ctJPEG, withOrientation(jpegOf(t, rotateCCW(img), 100), 6), 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post("/v1/reconstruct", tc.ctype, tc.body)
			wantStatus(t, r, http.StatusOK)
			if d := maxDiff(pngPixels(t, r.body), want); d > tc.maxDif {
				t.Errorf("reconstruction differs from the PNG's by %d grey levels, want ≤ %d", d, tc.maxDif)
			}
		})
	}
	// A batch mixing the three, parts typed, untyped and octet-stream: the
	// bytes decide.
	body, ctype := multipartParts(t,
		part{ctPNG, mustPNG(t, n)},
		part{ctJPEG, jpegOf(t, img, 100)},
		part{"", gifOf(t, img)},
		part{"application/octet-stream", jpegOf(t, img, 100)},
		part{"image/jpg", jpegOf(t, img, 100)},
	)
	r := e.post("/v1/classify", ctype, body)
	wantStatus(t, r, http.StatusOK)
	var batch api.Classifications
	if err := json.Unmarshal(r.body, &batch); err != nil {
		t.Fatal(err)
	}
	for i, res := range batch.Results {
		if res.Digit != mnistLabel(t, n) {
			t.Errorf("image %d: digit %d, want %d", i, res.Digit, mnistLabel(t, n))
		}
	}
	if len(batch.Results) != 5 {
		t.Errorf("%d results, want 5", len(batch.Results))
	}
}

// What is wrong with an image is said from its header, before anything is
// decoded, for every format: 415 for bytes of no known format or of another
// format than declared, 400 for corrupt ones and empty ones, 413 and 422
// for sizes.
func TestImageFormatErrors(t *testing.T) {
	e := newEnv(t)
	var decoded atomic.Int32
	e.s.decodeHook = func(*http.Request, int) { decoded.Add(1) }
	good := mustPNG(t, 3)
	jpg := jpegOf(t, greyOf(t, 3, 1, false), 95)
	gf := gifOf(t, greyOf(t, 3, 1, false))
	wide := jpegOf(t, image.NewGray(image.Rect(0, 0, 40, 30)), 90)
	// Headers declaring 60000×60000 with no pixel data to match.
	hugeJPEG := bytes.Clone(wide)
	sof := bytes.Index(hugeJPEG, []byte{0xff, 0xc0})
	binary.BigEndian.PutUint16(hugeJPEG[sof+5:], 60000)
	binary.BigEndian.PutUint16(hugeJPEG[sof+7:], 60000)
	hugeGIF := bytes.Clone(gf)
	binary.LittleEndian.PutUint16(hugeGIF[6:], 60000)
	binary.LittleEndian.PutUint16(hugeGIF[8:], 60000)
	mixed, mixedType := multipartParts(t, part{ctPNG, good}, part{ctPNG, jpg})
	emptyPart, emptyPartType := multipartParts(t, part{ctPNG, good}, part{ctPNG, good}, part{ctPNG, nil})
	unknownPart, unknownPartType := multipartParts(t, part{"", good}, part{"application/octet-stream", []byte("BM\x36\x00\x00\x00")})
	for _, tc := range []struct {
		name, path, ctype string
		body              []byte
		status            int
		kind              string
		index             int // -1: none
		detail            string
		decodes           bool
	}{
		{"text as PNG", "/v1/encode", ctPNG, []byte("hello, world"), 415, kindMediaType, 0, "not a PNG, JPEG or GIF image", false},
		{"WebP as JPEG", "/v1/encode", ctJPEG, []byte("RIFF\x24\x00\x00\x00WEBPVP8 "), 415, kindMediaType, 0, "PNG, JPEG or GIF", false},
		{"untyped part of no format", "/v1/classify", unknownPartType, unknownPart, 415, kindMediaType, 1, "image 1: not a PNG, JPEG or GIF", false},
		{"JPEG sent as PNG", "/v1/reconstruct", ctPNG, jpg, 415, kindMediaType, 0, "Content-Type image/png says PNG, but the bytes are a JPEG image: declare it as image/jpeg", false},
		{"PNG sent as GIF", "/v1/classify", ctGIF, good, 415, kindMediaType, 0, "bytes are a PNG image", false},
		{"JPEG part typed PNG", "/v1/encode", mixedType, mixed, 415, kindMediaType, 1, "part's Content-Type image/png says PNG, but the bytes are a JPEG", false},
		{"empty body", "/v1/encode", ctJPEG, nil, 400, kindMalformed, -1, "the request body is empty", false},
		{"empty part", "/v1/encode", emptyPartType, emptyPart, 400, kindMalformed, 2, "image 2: the form part is empty", false},
		{"truncated JPEG", "/v1/reconstruct", ctJPEG, jpg[:len(jpg)/2], 400, kindMalformed, 0, "malformed JPEG", true},
		{"JPEG cut in its header", "/v1/reconstruct", ctJPEG, jpg[:30], 400, kindMalformed, 0, "malformed JPEG", false},
		{"truncated GIF", "/v1/reconstruct", ctGIF, gf[:len(gf)-40], 400, kindMalformed, 0, "malformed GIF", true},
		{"40×30 JPEG without fit", "/v1/encode", ctJPEG, wide, 422, kindUnprocessable, 0, "40×30", false},
		{"JPEG declaring 3.6 Gpx", "/v1/encode?fit=true", ctJPEG, hugeJPEG, 413, kindTooLarge, 0, "60000×60000", false},
		{"GIF declaring 3.6 Gpx", "/v1/encode?fit=true", ctGIF, hugeGIF, 413, kindTooLarge, 0, "60000×60000", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			decoded.Store(0)
			r := e.post(tc.path, tc.ctype, tc.body)
			wantStatus(t, r, tc.status)
			p := r.problem(t)
			if p.Type != ProblemTypeBase+tc.kind || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("problem %s %q, want %s with %q", p.Type, p.Detail, tc.kind, tc.detail)
			}
			if tc.index >= 0 && (p.Index == nil || *p.Index != tc.index) {
				t.Errorf("index %v, want %d", p.Index, tc.index)
			}
			if tc.status == 415 {
				if got := r.Header.Get("Accept-Post"); got != "multipart/form-data, image/png, image/jpeg, image/gif" {
					t.Errorf("Accept-Post %q", got)
				}
			}
			if n := decoded.Load(); (n > 0) != tc.decodes {
				t.Errorf("%d images decoded; want decoding %v", n, tc.decodes)
			}
		})
	}
	// Within the limits, the same kinds of files are fine.
	for ctype, body := range map[string][]byte{ctJPEG: jpg, ctGIF: gf} {
		wantStatus(t, e.post("/v1/encode", ctype, body), http.StatusOK)
	}
	wantStatus(t, e.post("/v1/encode?fit=true", ctJPEG, wide), http.StatusUnprocessableEntity) // blank: no ink
}

// The new defaults take a 48 Mpx phone photo (8000×6000, over 8 MiB).
func TestPhoneSizedDefaults(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if c.MaxBodyBytes != 32<<20 || c.MaxPixels != 50_000_000 || c.MaxRequestPixels != 100_000_000 ||
		c.DecodeBudget != 100_000_000 || c.DecodeWait != 5*time.Second {
		t.Errorf("defaults: body %d, pixels %d, request pixels %d, decode budget %d, wait %v",
			c.MaxBodyBytes, c.MaxPixels, c.MaxRequestPixels, c.DecodeBudget, c.DecodeWait)
	}
	for _, bad := range []Config{
		{MaxPixels: 1000, DecodeBudget: 999},
		{DecodeBudget: -1},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
	if s, err := New(Config{MaxPixels: 200_000_000, MaxRequestPixels: 200_000_000}); err != nil || s.cfg.DecodeBudget != 200_000_000 {
		t.Errorf("the default budget does not follow a larger MaxPixels: %v", err)
	}
	// An 8000×6000 header passes every check and is decoded (the bomb has no
	// pixel data: 400, not 413), and a 9 MiB body is read.
	e := newEnv(t)
	r := e.post("/v1/encode?fit=true", ctPNG, pixelBomb(8000, 6000))
	wantStatus(t, r, http.StatusBadRequest)
	big := append(bytes.Clone(mustPNG(t, 1)), make([]byte, 9<<20)...)
	r = e.post("/v1/encode", ctPNG, big)
	wantStatus(t, r, http.StatusBadRequest) // trailing bytes after IEND, not 413
	if p := r.problem(t); !strings.Contains(p.Detail, "trailing") {
		t.Errorf("9 MiB body: %q", p.Detail)
	}
}

// Dark strokes on a transparent canvas are read by their opacity: the
// digit, not an all-black image.
func TestTransparentImages(t *testing.T) {
	e := newEnv(t)
	const n = 30
	px, plain := mnistDigit(t, n)
	canvas := image.NewNRGBA(image.Rect(0, 0, 28, 28))
	for i, v := range px {
		canvas.SetNRGBA(i%28, i/28, color.NRGBA{0, 0, 0, uint8(v*255 + 0.5)})
	}
	drawn := pngOf(t, canvas)
	ref := e.post("/v1/reconstruct", ctPNG, plain)
	wantStatus(t, ref, http.StatusOK)
	r := e.post("/v1/reconstruct", ctPNG, drawn)
	wantStatus(t, r, http.StatusOK)
	if d := maxDiff(pngPixels(t, r.body), pngPixels(t, ref.body)); d != 0 {
		t.Errorf("black on transparent: reconstruction differs by %d grey levels from the white-on-black digit's", d)
	}
	// Larger, as a drawing app exports it, through fit.
	big := image.NewNRGBA(image.Rect(0, 0, 280, 280))
	for y := range 280 {
		for x := range 280 {
			big.SetNRGBA(x, y, color.NRGBA{30, 30, 30, uint8(px[(y/10)*28+x/10]*255 + 0.5)})
		}
	}
	r = e.post("/v1/classify?fit=true", ctPNG, pngOf(t, big))
	wantStatus(t, r, http.StatusOK)
	if got, want := digitOf(t, r), mnistLabel(t, n); got != want {
		t.Errorf("drawing on a transparent canvas classified %d, want %d", got, want)
	}
}

// photoOf renders MNIST test digit i as a phone photographs it written on
// paper: dark ink on a bright page lit unevenly, with sensor noise; w×h,
// the digit size pixels square at (ox, oy).
func photoOf(t testing.TB, i, w, h, size, ox, oy int) *image.Gray {
	px, _ := mnistDigit(t, i)
	at := func(x, y int) float64 { return float64(px[min(max(y, 0), 27)*28+min(max(x, 0), 27)]) }
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			light := 0.45 + 0.4*float64(x)/float64(w) + 0.12*float64(y)/float64(h)
			ink := 0.0
			if bx, by := x-ox, y-oy; bx >= 0 && by >= 0 && bx < size && by < size {
				sx, sy := (float64(bx)+0.5)*28/float64(size)-0.5, (float64(by)+0.5)*28/float64(size)-0.5
				x0, y0 := int(math.Floor(sx)), int(math.Floor(sy))
				fx, fy := sx-float64(x0), sy-float64(y0)
				ink = (1-fy)*((1-fx)*at(x0, y0)+fx*at(x0+1, y0)) + fy*((1-fx)*at(x0, y0+1)+fx*at(x0+1, y0+1))
			}
			v := light*(1-0.8*ink) + 0.07*rng.NormFloat64()
			img.Pix[y*w+x] = uint8(min(max(math.Round(v*255), 0), 255))
		}
	}
	return img
}

// A photo of a digit on paper, sent as a phone sends it (a JPEG), fitted
// and classified: the digit the clean image is, and the input the model saw
// (include=input) is the clean digit's fitted input.
func TestPhotoOfDigit(t *testing.T) {
	e := newEnv(t)
	for _, n := range []int{0, 1, 2, 3, 4} {
		photo := jpegOf(t, photoOf(t, n, 2400, 1800, 900, 700, 400), 88)
		r := e.post("/v1/classify?fit=true&include=input", ctJPEG, photo)
		wantStatus(t, r, http.StatusOK)
		var c classificationAnswer
		if err := json.Unmarshal(r.body, &c); err != nil {
			t.Fatal(err)
		}
		if want := mnistLabel(t, n); c.Digit != want {
			t.Errorf("photo of test digit %d (a %d): classified %d", n, want, c.Digit)
		}
		clean, err := digit.Fit(greyOf(t, n, 1, false))
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Inputs) != 1 {
			t.Fatalf("%d inputs, want 1", len(c.Inputs))
		}
		seen := pngPixels(t, b64(t, c.Inputs[0]))
		if corr := correlation(seen, clean); corr < 0.85 {
			t.Errorf("photo of test digit %d: the fitted input correlates %.3f with the clean digit's", n, corr)
		}
	}
}

// correlation of an 8-bit image with a [0,1] one, allowing the half-pixel
// rounding of the centre of mass either way.
func correlation(a []uint8, b []float32) float64 {
	best := -1.0
	for dy := -1; dy <= 1; dy++ {
		for dx := -1; dx <= 1; dx++ {
			var ma, mb float64
			for i := range a {
				ma += float64(a[i]) / 255
				mb += float64(shifted(b, i, dx, dy))
			}
			ma /= float64(len(a))
			mb /= float64(len(a))
			var ab, aa, bb float64
			for i := range a {
				da, db := float64(a[i])/255-ma, float64(shifted(b, i, dx, dy))-mb
				ab += da * db
				aa += da * da
				bb += db * db
			}
			best = max(best, ab/math.Sqrt(aa*bb))
		}
	}
	return best
}

func shifted(b []float32, i, dx, dy int) float32 {
	x, y := i%28+dx, i/28+dy
	if x < 0 || y < 0 || x >= 28 || y >= 28 {
		return 0
	}
	return b[y*28+x]
}

// A 28×28 image without fit that is mostly bright is answered, but the
// answer and the log say it is plainly not a white digit on black.
func TestInputWarning(t *testing.T) {
	e := newEnv(t)
	dark := mustPNG(t, 40)
	inverted := pngOf(t, greyOf(t, 41, 1, true))
	inverted2 := pngOf(t, greyOf(t, 42, 1, true))
	for _, tc := range []struct {
		name, path string
		imgs       [][]byte
		want       string // "" for no warning
	}{
		{"white on black", "/v1/reconstruct", [][]byte{dark}, ""},
		{"black on white", "/v1/reconstruct", [][]byte{inverted},
			"image 0: mean brightness 0.92"},
		{"black on white, encode", "/v1/encode", [][]byte{inverted}, "image 0: mean brightness"},
		{"a batch", "/v1/classify", [][]byte{dark, inverted, inverted2}, "images 1 (0.92), 2 (0.88)"},
		{"with fit", "/v1/classify?fit=true", [][]byte{inverted}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "warn-" + strings.ReplaceAll(tc.name, " ", "-")
			var r *reply
			if len(tc.imgs) == 1 {
				r = e.post(tc.path, ctPNG, tc.imgs[0], HeaderRequestID, id)
			} else {
				body, ctype := multipartBody(t, imageField, tc.imgs...)
				r = e.post(tc.path, ctype, body, HeaderRequestID, id)
			}
			wantStatus(t, r, http.StatusOK)
			got := r.Header.Get(HeaderInputWarning)
			var logged map[string]any
			for _, l := range e.logs.lines() {
				if l["request_id"] == id && l["bright_images"] != nil {
					logged = l
				}
			}
			if tc.want == "" {
				if got != "" || logged != nil {
					t.Errorf("warning %q, log %v; want none", got, logged)
				}
				return
			}
			if !strings.Contains(got, tc.want) || !strings.Contains(got, "> 0.5") || !strings.Contains(got, "send fit=true") {
				t.Errorf("%s %q, want it to say %q, > 0.5 and send fit=true", HeaderInputWarning, got, tc.want)
			}
			if logged == nil || logged["level"] != "warn" || !strings.Contains(fmt.Sprint(logged["message"]), tc.want) {
				t.Errorf("log line %v", logged)
			}
		})
	}
	if got := brightWarning([]int{1, 2}, []float64{0.81, 0.9}); got !=
		"images 1 (0.81), 2 (0.90): mean brightness > 0.5; the model expects white digits on black (send fit=true to prepare them)" {
		t.Errorf("warning for two images: %q", got)
	}
	many := make([]int, 25)
	means := make([]float64, 25)
	for i := range many {
		many[i], means[i] = i, 0.9
	}
	if got := brightWarning(many, means); !strings.Contains(got, "9 (0.90) and 15 more:") {
		t.Errorf("warning for 25 images: %q", got)
	}
}

// include=input adds the 28×28 images the model was given to a JSON answer.
func TestIncludeInput(t *testing.T) {
	e := newEnv(t)
	px, plain := mnistDigit(t, 50)
	big := pngOf(t, greyOf(t, 51, 3, true)) // 84×84, dark on light
	fitted, err := digit.Decode(big, digit.Limits{}, digit.Options{Fit: true})
	if err != nil {
		t.Fatal(err)
	}
	fittedPNG, err := digit.EncodePNG(fitted)
	if err != nil {
		t.Fatal(err)
	}
	two, twoType := multipartBody(t, imageField, plain, big)
	type answer struct {
		Inputs []string `json:"inputs"`
		Images []string `json:"images"`
		Data   []float32
	}
	for _, tc := range []struct {
		name, path, ctype, accept string
		body                      []byte
		want                      [][]byte
	}{
		{"encode", "/v1/encode?include=input", ctPNG, "", plain, [][]byte{plain}},
		{"reconstruct: JSON by default", "/v1/reconstruct?include=input", ctPNG, "", plain, [][]byte{plain}},
		{"denoise with Accept */*", "/v1/denoise?include=input", ctPNG, "*/*", plain, [][]byte{plain}},
		{"fit", "/v1/reconstruct?include=input&fit=true", ctPNG, "", big, [][]byte{fittedPNG}},
		{"classify a batch", "/v1/classify?include=input&fit=true", twoType, "", two, nil},
		{"classify with denoise: the input before the denoiser", "/v1/classify?include=input&denoise=true", ctPNG, "", plain, [][]byte{plain}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(tc.path, tc.ctype, tc.body, "Accept", tc.accept)
			wantStatus(t, r, http.StatusOK)
			if r.mediaType() != ctJSON {
				t.Fatalf("answer is %s", r.mediaType())
			}
			var a answer
			if err := json.Unmarshal(r.body, &a); err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if len(a.Inputs) != 2 {
					t.Fatalf("%d inputs, want 2", len(a.Inputs))
				}
				return
			}
			if len(a.Inputs) != len(tc.want) {
				t.Fatalf("%d inputs, want %d", len(a.Inputs), len(tc.want))
			}
			for i, w := range tc.want {
				if got := b64(t, a.Inputs[i]); !bytes.Equal(got, w) {
					t.Errorf("input %d is not the image the model was given", i)
				}
			}
		})
	}
	// The input of a plain 28×28 digit is exactly its pixels.
	r := e.post("/v1/encode?include=input", ctPNG, plain)
	var l latentAnswer
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatal(err)
	}
	got, err := digit.Decode(b64(t, l.Inputs[0]), digit.Limits{}, digit.Options{})
	if err != nil || meanAbs(got, px) != 0 {
		t.Errorf("input differs from the digit sent: %v", err)
	}
	// Without include the answers are as they were: no inputs field.
	r = e.post("/v1/reconstruct", ctPNG, plain, "Accept", ctJSON)
	wantStatus(t, r, http.StatusOK)
	if bytes.Contains(r.body, []byte(`"inputs"`)) {
		t.Errorf("inputs without include=input: %s", r.body)
	}
	// Anything else is 400, before the body is read.
	for _, tc := range []struct{ name, path, accept, detail string }{
		{"PNG answer", "/v1/reconstruct?include=input", ctPNG, "include=input comes only in a JSON answer"},
		{"binary latent", "/v1/encode?include=input", ctBinary, "send Accept: application/json"},
		{"other value", "/v1/encode?include=inputs", "", `include="inputs" is not known`},
		{"two values", "/v1/encode?include=input,latent", "", "is not known"},
		{"decode takes no include", "/v1/decode?include=input", "", `unknown query parameter "include"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctype, body := ctPNG, plain
			if strings.HasPrefix(tc.path, "/v1/decode") {
				ctype, body = ctJSON, latentJSON(t, encodeLatent(t, e, "conv", 50))
			}
			r := e.post(tc.path, ctype, body, "Accept", tc.accept)
			wantStatus(t, r, http.StatusBadRequest)
			if p := r.problem(t); !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail %q, want %q", p.Detail, tc.detail)
			}
		})
	}
}

func meanAbs(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += math.Abs(float64(a[i] - b[i]))
	}
	return s / float64(len(a))
}

// The decode budget: an image waits for room, up to DecodeWait, then 503
// with Retry-After; room given back lets it through.
func TestDecodeBudget(t *testing.T) {
	const budget = 10_000
	e := newEnv(t, func(c *Config) {
		c.MaxPixels = 100 * 100
		c.DecodeBudget = budget
		c.DecodeWait = 100 * time.Millisecond
	})
	img := mustPNG(t, 60)
	// Another request's photo holds the whole budget.
	release, err := e.s.budget.acquire(context.Background(), budget)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := e.post("/v1/reconstruct", ctPNG, img)
	wantStatus(t, r, http.StatusServiceUnavailable)
	p := r.problem(t)
	if p.Type != ProblemTypeBase+kindOverloaded || !strings.Contains(p.Detail, "decoding as many image pixels as it may") ||
		r.Header.Get("Retry-After") != "1" || p.Index == nil || *p.Index != 0 {
		t.Errorf("problem %+v, Retry-After %q", p, r.Header.Get("Retry-After"))
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("refused after %v, before DecodeWait", waited)
	}
	if !strings.Contains(e.get("/metrics").String(), "aeserve_decode_budget_shed_total 1") {
		t.Error("the refusal is not counted")
	}
	// Room given back while a request waits lets it through.
	e2 := newEnv(t, func(c *Config) {
		c.MaxPixels = 100 * 100
		c.DecodeBudget = budget
		c.DecodeWait = guard
	})
	release2, err := e2.s.budget.acquire(context.Background(), budget)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *reply, 1)
	go func() { done <- e2.post("/v1/reconstruct", ctPNG, img) }()
	waitFor(t, "the request to wait for the budget", func() bool {
		e2.s.budget.mu.Lock()
		defer e2.s.budget.mu.Unlock()
		return e2.s.budget.waiters.Len() == 1
	})
	release2()
	wantStatus(t, <-done, http.StatusOK)
	release()
	for _, b := range []*decodeBudget{e.s.budget, e2.s.budget} {
		if b.used != 0 || b.waiters.Len() != 0 {
			t.Errorf("budget left with %d pixels used and %d waiters", b.used, b.waiters.Len())
		}
	}
}
