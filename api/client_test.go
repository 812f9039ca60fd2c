package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer mimics the HTTP contract just enough to test the client: the
// "encoder" maps an image to a latent whose values are all the image's mean
// grey, and the "decoder" paints each row's first value back as a flat image.
type fakeServer struct {
	t    *testing.T
	mu   sync.Mutex
	reqs []*http.Request // as received, bodies consumed
}

const fakeFP = "00112233aabbccdd"

func greyPNG(t testing.TB, v uint8) []byte {
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pngGrey(b []byte) (uint8, error) {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	return color.GrayModel.Convert(img.At(0, 0)).(color.Gray).Y, nil
}

func problem(w http.ResponseWriter, status int, detail string, index *int) {
	w.Header().Set("Content-Type", MediaProblem)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Index: index, RequestID: "req-1"})
}

func (s *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
	model := r.URL.Query().Get("model")
	switch model {
	case "", "ae":
	case "crash":
		http.Error(w, "upstream exploded", http.StatusBadGateway)
		return
	default:
		problem(w, http.StatusNotFound, fmt.Sprintf("model %q not found", model), nil)
		return
	}
	if r.URL.Path == "/v1/models" {
		if r.Method != http.MethodGet {
			problem(w, http.StatusMethodNotAllowed, "", nil)
			return
		}
		w.Header().Set("Content-Type", MediaJSON)
		json.NewEncoder(w).Encode(ModelList{Default: "ae", Models: []ModelInfo{{
			Name: "ae", Architecture: "conv", Fingerprint: fakeFP, Halves: []string{"encoder", "decoder", "full"},
			InputShape: []int{1, 28, 28}, LatentShape: []int{32, 7, 7},
			Training: &Training{Epochs: 10, BatchSize: 128, LearningRate: 1e-3, Seed: 1, Data: "MNIST train"},
			Metrics:  &Metrics{BCE: 0.07, PSNRdB: 21.5},
		}}})
		return
	}
	if r.Method != http.MethodPost {
		problem(w, http.StatusMethodNotAllowed, "", nil)
		return
	}
	switch r.URL.Path {
	case "/v1/encode", "/v1/reconstruct", "/v1/denoise":
		greys, err := readImages(r)
		if err != nil {
			var ie *imageError
			if errors.As(err, &ie) {
				problem(w, http.StatusUnprocessableEntity, ie.msg, &ie.index)
				return
			}
			problem(w, http.StatusBadRequest, err.Error(), nil)
			return
		}
		if r.URL.Path != "/v1/encode" {
			if r.URL.Path == "/v1/denoise" {
				for i := range greys {
					greys[i] = 255 - greys[i]
				}
			}
			writeImages(s.t, w, greys)
			return
		}
		l := Latent{Fingerprint: fakeFP, Shape: []int{len(greys), 32, 7, 7}, DType: DTypeFloat32, Data: make([]float32, len(greys)*1568)}
		for i, g := range greys {
			for j := range 1568 {
				l.Data[i*1568+j] = float32(g) / 255
			}
		}
		b, err := l.MarshalBinary()
		if err != nil {
			s.t.Error(err)
		}
		w.Header().Set("Content-Type", MediaLatent)
		w.Write(b)
	case "/v1/decode":
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != MediaLatent {
			problem(w, http.StatusUnsupportedMediaType, "want "+MediaLatent, nil)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var l Latent
		if err := l.UnmarshalBinary(body); err != nil {
			problem(w, http.StatusBadRequest, err.Error(), nil)
			return
		}
		if l.Fingerprint != fakeFP {
			problem(w, http.StatusConflict, "latent was made by weights "+l.Fingerprint+", model ae is "+fakeFP, nil)
			return
		}
		greys := make([]uint8, l.Shape[0])
		for i := range greys {
			greys[i] = uint8(l.Data[i*1568]*255 + 0.5)
		}
		writeImages(s.t, w, greys)
	default:
		problem(w, http.StatusNotFound, "no such endpoint", nil)
	}
}

type imageError struct {
	index int
	msg   string
}

func (e *imageError) Error() string { return e.msg }

func readImages(r *http.Request) ([]uint8, error) {
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		return nil, err
	}
	var greys []uint8
	for i, fh := range r.MultipartForm.File["img"] {
		if ct := fh.Header.Get("Content-Type"); ct != MediaPNG {
			return nil, fmt.Errorf("part %d has type %q", i, ct)
		}
		f, err := fh.Open()
		if err != nil {
			return nil, err
		}
		b, _ := io.ReadAll(f)
		f.Close()
		g, err := pngGrey(b)
		if err != nil {
			return nil, &imageError{i, "not a PNG"}
		}
		greys = append(greys, g)
	}
	if len(greys) == 0 {
		return nil, errors.New("no images in field img")
	}
	return greys, nil
}

func writeImages(t *testing.T, w http.ResponseWriter, greys []uint8) {
	im := Images{Model: "ae", Fingerprint: fakeFP}
	for _, g := range greys {
		im.Images = append(im.Images, base64.StdEncoding.EncodeToString(greyPNG(t, g)))
	}
	w.Header().Set("Content-Type", MediaJSON)
	json.NewEncoder(w).Encode(im)
}

func newTestClient(t *testing.T) (*Client, *fakeServer) {
	fs := &fakeServer{t: t}
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	return &Client{BaseURL: srv.URL + "/", HTTP: srv.Client()}, fs
}

func (s *fakeServer) last() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[len(s.reqs)-1]
}

func TestClientEncodeDecode(t *testing.T) {
	c, fs := newTestClient(t)
	ctx := context.Background()
	l, err := c.Encode(ctx, EncodeOptions{Model: "ae"}, greyPNG(t, 10), greyPNG(t, 200), greyPNG(t, 77))
	if err != nil {
		t.Fatal(err)
	}
	r := fs.last()
	if r.URL.Path != "/v1/encode" || r.URL.RawQuery != "model=ae" || r.Header.Get("Accept") != MediaLatent {
		t.Errorf("request %s %s?%s Accept %q", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Accept"))
	}
	if l.Model != "ae" || l.Fingerprint != fakeFP || fmt.Sprint(l.Shape) != "[3 32 7 7]" || len(l.Data) != 3*1568 {
		t.Fatalf("latent %s %s %v with %d values", l.Model, l.Fingerprint, l.Shape, len(l.Data))
	}
	if l.Data[0] != 10.0/255 || l.Data[1568] != 200.0/255 || l.Data[2*1568+5] != 77.0/255 {
		t.Errorf("latent values %v %v %v", l.Data[0], l.Data[1568], l.Data[2*1568+5])
	}

	imgs, err := c.Decode(ctx, l, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := fs.last(); r.URL.RawQuery != "model=ae" || r.Header.Get("Content-Type") != MediaLatent {
		t.Errorf("decode request ?%s Content-Type %q", r.URL.RawQuery, r.Header.Get("Content-Type"))
	}
	for i, want := range []uint8{10, 200, 77} {
		if g, err := pngGrey(imgs[i]); err != nil || g != want {
			t.Errorf("decoded image %d: grey %d (%v), want %d", i, g, err, want)
		}
	}

	// Default model: no query at all.
	l, err = c.Encode(ctx, EncodeOptions{}, greyPNG(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	if r := fs.last(); r.URL.RawQuery != "" || l.Model != "" {
		t.Errorf("default model: query %q, latent model %q", r.URL.RawQuery, l.Model)
	}

	// Every option becomes its query parameter, and only when set.
	if _, err := c.Encode(ctx, EncodeOptions{Model: "ae", Fit: true}, greyPNG(t, 1)); err != nil {
		t.Fatal(err)
	}
	if q := fs.last().URL.RawQuery; q != "fit=true&model=ae" {
		t.Errorf("encode with Fit: query %q", q)
	}
	if _, err := c.Reconstruct(ctx, ImageOptions{Fit: true}, greyPNG(t, 1)); err != nil {
		t.Fatal(err)
	}
	if q := fs.last().URL.RawQuery; q != "fit=true" {
		t.Errorf("reconstruct with Fit: query %q", q)
	}
	if _, err := c.Decode(ctx, l, DecodeOptions{Model: "ae"}); err != nil {
		t.Fatal(err)
	}
	if q := fs.last().URL.RawQuery; q != "model=ae" {
		t.Errorf("decode with Model: query %q", q)
	}
	if _, err := c.Encode(ctx, EncodeOptions{Encoding: 7}, greyPNG(t, 1)); err == nil {
		t.Error("unknown latent encoding: no error")
	}
}

func TestClientReconstructDenoise(t *testing.T) {
	c, fs := newTestClient(t)
	ctx := context.Background()
	out, err := c.Reconstruct(ctx, ImageOptions{}, greyPNG(t, 5), greyPNG(t, 250))
	if err != nil {
		t.Fatal(err)
	}
	if r := fs.last(); r.URL.Path != "/v1/reconstruct" || r.Header.Get("Accept") != MediaJSON {
		t.Errorf("request %s Accept %q", r.URL.Path, r.Header.Get("Accept"))
	}
	for i, want := range []uint8{5, 250} {
		if g, _ := pngGrey(out[i]); g != want {
			t.Errorf("reconstructed %d: grey %d, want %d", i, g, want)
		}
	}
	out, err = c.Denoise(ctx, ImageOptions{Model: "ae"}, greyPNG(t, 5))
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := pngGrey(out[0]); g != 250 || fs.last().URL.Path != "/v1/denoise" {
		t.Errorf("denoised: grey %d via %s", g, fs.last().URL.Path)
	}
}

func TestClientModels(t *testing.T) {
	c, _ := newTestClient(t)
	ml, err := c.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ml.Default != "ae" || len(ml.Models) != 1 || ml.Models[0].Fingerprint != fakeFP || ml.Models[0].Training.BatchSize != 128 || ml.Models[0].Metrics.NoisyPSNRdB != nil {
		t.Errorf("models: %+v", ml)
	}
}

func TestClientErrors(t *testing.T) {
	c, _ := newTestClient(t)
	ctx := context.Background()
	status := func(err error) int {
		var p *Problem
		if !errors.As(err, &p) {
			return 0
		}
		return p.Status
	}

	_, err := c.Encode(ctx, EncodeOptions{Model: "nope"}, greyPNG(t, 1))
	if status(err) != 404 || err.Error() != `404 Not Found: model "nope" not found` {
		t.Errorf("unknown model: %v", err)
	}
	var p *Problem
	if errors.As(err, &p) && p.RequestID != "req-1" {
		t.Errorf("request id %q", p.RequestID)
	}

	_, err = c.Reconstruct(ctx, ImageOptions{}, greyPNG(t, 1), []byte("not a png"))
	if status(err) != 422 || !errors.As(err, &p) || p.Index == nil || *p.Index != 1 || !strings.HasSuffix(err.Error(), "(image 1)") {
		t.Errorf("bad second image: %v", err)
	}

	l := &Latent{Fingerprint: "ffffffffffffffff", Shape: []int{1, 32, 7, 7}, DType: DTypeFloat32, Data: make([]float32, 1568)}
	_, err = c.Decode(ctx, l, DecodeOptions{})
	if status(err) != 409 || !strings.HasPrefix(err.Error(), "409 Conflict: latent was made by weights ffffffffffffffff") {
		t.Errorf("fingerprint mismatch: %v", err)
	}

	// A plain-text error from a proxy still becomes a *Problem.
	_, err = c.Denoise(ctx, ImageOptions{Model: "crash"}, greyPNG(t, 1))
	if status(err) != 502 || err.Error() != "502 Bad Gateway: upstream exploded" {
		t.Errorf("plain-text 502: %v", err)
	}

	// Mistakes caught before any request.
	if _, err := c.Encode(ctx, EncodeOptions{Model: "ae"}); err == nil || status(err) != 0 {
		t.Errorf("no images: %v", err)
	}
	l.DType = "int4"
	var fe *FormatError
	if _, err := c.Decode(ctx, l, DecodeOptions{}); !errors.As(err, &fe) {
		t.Errorf("int4 latent: %v, want *FormatError", err)
	}
	l.DType = DTypeInt8 // without a scale
	var ve *ValueError
	if _, err := c.Decode(ctx, l, DecodeOptions{}); !errors.As(err, &ve) {
		t.Errorf("int8 latent without a scale: %v, want *ValueError", err)
	}
	if _, err := c.Decode(ctx, nil, DecodeOptions{}); err == nil {
		t.Error("nil latent: no error")
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Models(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	bad := &Client{BaseURL: "http://127.0.0.1:1", HTTP: &http.Client{Timeout: 2 * time.Second}}
	if _, err := bad.Models(ctx); err == nil || status(err) != 0 {
		t.Errorf("unreachable server: %v", err)
	}
}

// A server that ignores Accept and sends the JSON latent is understood too,
// and a response with the wrong number of images is an error, not a panic.
func TestClientOddAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", MediaJSON+"; charset=utf-8")
		switch r.URL.Path {
		case "/v1/encode":
			json.NewEncoder(w).Encode(Latent{Model: "m2", Fingerprint: fakeFP, Shape: []int{1, 32, 7, 7}, DType: DTypeFloat32, Data: make([]float32, 1568)})
		case "/v1/reconstruct":
			json.NewEncoder(w).Encode(Images{Images: []string{}})
		case "/v1/denoise":
			json.NewEncoder(w).Encode(Images{Images: []string{"!!"}})
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL}
	ctx := context.Background()
	l, err := c.Encode(ctx, EncodeOptions{}, greyPNG(t, 1))
	if err != nil || l.Model != "m2" {
		t.Errorf("JSON latent: %+v, %v", l, err)
	}
	if _, err := c.Encode(ctx, EncodeOptions{}, greyPNG(t, 1), greyPNG(t, 2)); err == nil {
		t.Error("1 latent row for 2 images: no error")
	}
	if _, err := c.Reconstruct(ctx, ImageOptions{}, greyPNG(t, 1)); err == nil {
		t.Error("0 images for 1: no error")
	}
	if _, err := c.Denoise(ctx, ImageOptions{}, greyPNG(t, 1)); err == nil {
		t.Error("bad base64: no error")
	}
}
