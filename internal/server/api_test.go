package server

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aeserve/aeserve"
	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/model"
)

func modelFingerprint(t *testing.T, e *env, name string) string {
	t.Helper()
	r := e.get("/v1/models/" + name)
	wantStatus(t, r, http.StatusOK)
	var info api.ModelInfo
	if err := json.Unmarshal(r.body, &info); err != nil {
		t.Fatal(err)
	}
	return info.Fingerprint
}

func TestEncodeJSONDecodeJSON(t *testing.T) {
	e := newEnv(t)
	_, img := mnistDigit(t, 0)
	fp := modelFingerprint(t, e, "conv")

	r := e.postImages("/v1/encode", [][]byte{img})
	wantStatus(t, r, http.StatusOK)
	if r.mediaType() != ctJSON {
		t.Fatalf("encode answered %q, want JSON by default", r.Header.Get("Content-Type"))
	}
	if r.Header.Get(HeaderModel) != "conv" || r.Header.Get(HeaderFingerprint) != fp {
		t.Errorf("headers name %q %q, want conv %s", r.Header.Get(HeaderModel), r.Header.Get(HeaderFingerprint), fp)
	}
	var l api.Latent
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatal(err)
	}
	if l.Model != "conv" || l.Fingerprint != fp || l.DType != "float32" ||
		len(l.Shape) != 4 || l.Shape[0] != 1 || l.Shape[1] != 32 || l.Shape[2] != 7 || l.Shape[3] != 7 ||
		len(l.Data) != convLatentLen {
		t.Fatalf("latent %s %s %s %v with %d values", l.Model, l.Fingerprint, l.DType, l.Shape, len(l.Data))
	}

	d := e.post("/v1/decode", ctJSON, r.body)
	wantStatus(t, d, http.StatusOK)
	if d.mediaType() != ctPNG || d.Header.Get(HeaderModel) != "conv" {
		t.Fatalf("decode answered %q from %q", d.Header.Get("Content-Type"), d.Header.Get(HeaderModel))
	}
	dec := pngPixels(t, d.body)

	rec := e.post("/v1/reconstruct", ctPNG, img)
	wantStatus(t, rec, http.StatusOK)
	if diff := maxDiff(dec, pngPixels(t, rec.body)); diff > 1 {
		t.Errorf("decode(encode(x)) and reconstruct(x) differ by %d grey levels, want ≤ 1", diff)
	}
}

func TestEncodeBinaryDecodeBinary(t *testing.T) {
	e := newEnv(t)
	_, img := mnistDigit(t, 1)

	r := e.postImages("/v1/encode", [][]byte{img}, "Accept", ctBinary)
	wantStatus(t, r, http.StatusOK)
	if r.mediaType() != ctBinary {
		t.Fatalf("encode answered %q, want %s", r.Header.Get("Content-Type"), ctBinary)
	}
	if want := 15 + 4*convLatentLen; len(r.body) != want {
		t.Errorf("binary latent of one image is %d bytes, want %d", len(r.body), want)
	}
	var l api.Latent
	if err := l.UnmarshalBinary(r.body); err != nil {
		t.Fatal(err)
	}
	if l.Fingerprint != r.Header.Get(HeaderFingerprint) {
		t.Errorf("binary fingerprint %s, header %s", l.Fingerprint, r.Header.Get(HeaderFingerprint))
	}

	// The binary form names no model: the server finds it by fingerprint.
	d := e.post("/v1/decode", ctBinary, r.body)
	wantStatus(t, d, http.StatusOK)
	if d.Header.Get(HeaderModel) != "conv" {
		t.Errorf("decoded by %q, want conv", d.Header.Get(HeaderModel))
	}
	rec := e.post("/v1/reconstruct", ctPNG, img)
	wantStatus(t, rec, http.StatusOK)
	if diff := maxDiff(pngPixels(t, d.body), pngPixels(t, rec.body)); diff > 1 {
		t.Errorf("decode(encode(x)) and reconstruct(x) differ by %d grey levels, want ≤ 1", diff)
	}

	// A ?model= that agrees is fine, and so is the Go client's round trip.
	wantStatus(t, e.post("/v1/decode?model=conv", ctBinary, r.body), http.StatusOK)
	c := &api.Client{BaseURL: e.ts.URL, HTTP: e.client}
	cl, err := c.Encode(t.Context(), api.EncodeOptions{Model: "denoise"}, img)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Decode(t.Context(), cl, api.DecodeOptions{})
	if err != nil || len(out) != 1 {
		t.Fatalf("client decode: %d images, %v", len(out), err)
	}
	pngPixels(t, out[0])
}

// The identity for a whole batch, through the JSON forms of both answers.
func TestIdentityBatch(t *testing.T) {
	e := newEnv(t)
	var imgs [][]byte
	for i := range 5 {
		_, b := mnistDigit(t, 10+i)
		imgs = append(imgs, b)
	}
	enc := e.postImages("/v1/encode?model=denoise", imgs)
	wantStatus(t, enc, http.StatusOK)
	dec := e.post("/v1/decode", ctJSON, enc.body)
	wantStatus(t, dec, http.StatusOK)
	rec := e.postImages("/v1/reconstruct?model=denoise", imgs)
	wantStatus(t, rec, http.StatusOK)
	di, ri := imagesOf(t, dec), imagesOf(t, rec)
	if len(di.Images) != len(imgs) || len(ri.Images) != len(imgs) || di.Model != "denoise" || ri.Model != "denoise" {
		t.Fatalf("decode gave %d images of %s, reconstruct %d of %s", len(di.Images), di.Model, len(ri.Images), ri.Model)
	}
	for i := range imgs {
		if diff := maxDiff(pngPixels(t, b64(t, di.Images[i])), pngPixels(t, b64(t, ri.Images[i]))); diff > 1 {
			t.Errorf("image %d: decode(encode(x)) and reconstruct(x) differ by %d grey levels", i, diff)
		}
	}
}

// A batch answers in request order: each image equals the answer to that
// image sent alone.
func TestReconstructBatchOrder(t *testing.T) {
	e := newEnv(t)
	var imgs [][]byte
	for i := range 4 {
		_, b := mnistDigit(t, 20+i)
		imgs = append(imgs, b)
	}
	r := e.postImages("/v1/reconstruct", imgs)
	wantStatus(t, r, http.StatusOK)
	im := imagesOf(t, r)
	if len(im.Images) != len(imgs) || im.Model != "conv" || im.Fingerprint != r.Header.Get(HeaderFingerprint) {
		t.Fatalf("%d images from %s %s", len(im.Images), im.Model, im.Fingerprint)
	}
	for i, img := range imgs {
		// One image as multipart, asking for JSON, exercises that path too.
		one := e.postImages("/v1/reconstruct", [][]byte{img}, "Accept", ctJSON)
		wantStatus(t, one, http.StatusOK)
		oi := imagesOf(t, one)
		if len(oi.Images) != 1 {
			t.Fatalf("one image came back as %d", len(oi.Images))
		}
		if diff := maxDiff(pngPixels(t, b64(t, im.Images[i])), pngPixels(t, b64(t, oi.Images[0]))); diff > 1 {
			t.Errorf("batch position %d differs from the same image alone by %d grey levels", i, diff)
		}
	}
}

func TestRawPNGAndDenoise(t *testing.T) {
	e := newEnv(t)
	_, img := mnistDigit(t, 3)
	for _, tc := range []struct{ path, model string }{
		{"/v1/reconstruct", "conv"},
		{"/v1/denoise", "denoise"},
		{"/v1/denoise?model=conv", "conv"},
		{"/v1/reconstruct?model=denoise", "denoise"},
	} {
		r := e.post(tc.path, ctPNG, img, "Accept", "image/*")
		wantStatus(t, r, http.StatusOK)
		if r.mediaType() != ctPNG || r.Header.Get(HeaderModel) != tc.model {
			t.Errorf("%s: %q from %q, want image/png from %s", tc.path, r.Header.Get("Content-Type"), r.Header.Get(HeaderModel), tc.model)
		}
		pngPixels(t, r.body)
	}
	// Same input, different weights: the default of /v1/denoise is its own model.
	a := pngPixels(t, e.post("/v1/reconstruct", ctPNG, img).body)
	b := pngPixels(t, e.post("/v1/denoise", ctPNG, img).body)
	if bytes.Equal(a, b) {
		t.Error("conv and denoise gave identical outputs")
	}
}

// scaled draws px (28×28) at k times the size; inverted makes it dark on light.
func scaled(t *testing.T, px []float32, k int, inverted bool) []byte {
	t.Helper()
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
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFit(t *testing.T) {
	e := newEnv(t)
	px, _ := mnistDigit(t, 4)
	big := scaled(t, px, 2, false)
	inv := scaled(t, px, 1, true)

	wantStatus(t, e.post("/v1/reconstruct", ctPNG, big), http.StatusUnprocessableEntity)

	ref := e.post("/v1/reconstruct?fit=true", ctPNG, scaled(t, px, 1, false))
	wantStatus(t, ref, http.StatusOK)
	want := pngPixels(t, ref.body)
	for name, img := range map[string][]byte{"56×56": big, "inverted": inv} {
		r := e.post("/v1/reconstruct?fit=true", ctPNG, img)
		wantStatus(t, r, http.StatusOK)
		got := pngPixels(t, r.body)
		// The same digit, prepared the same way, should give about the same
		// output; an uninverted or misplaced digit would not.
		sum := 0
		for i := range got {
			sum += abs(int(got[i]) - int(want[i]))
		}
		if mean := float64(sum) / float64(len(got)) / 255; mean > 0.05 {
			t.Errorf("%s with fit=true: mean difference %.3f from the plain digit's output", name, mean)
		}
	}
	// The batch form takes fit too.
	r := e.postImages("/v1/encode?fit=true", [][]byte{big, inv})
	wantStatus(t, r, http.StatusOK)
}

func TestModels(t *testing.T) {
	e := newEnv(t)
	r := e.get("/v1/models")
	wantStatus(t, r, http.StatusOK)
	var list api.ModelList
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range list.Models {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, embeddedNames(t)) || list.Default != "conv" || list.SchemaVersion != api.SchemaVersion {
		t.Fatalf("models %v (default %q, schema %d), want %v", names, list.Default, list.SchemaVersion, embeddedNames(t))
	}
	for _, m := range loadModels(t) {
		var got api.ModelInfo
		for _, mi := range list.Models {
			if mi.Name == m.Name {
				got = mi
			}
		}
		if got.Fingerprint != m.Fingerprint.String() || got.Architecture != m.Manifest.Architecture ||
			!slices.Equal(got.LatentShape, m.Arch.LatentShape()) || len(got.Halves) != len(m.Arch.Runnable()) ||
			got.Task != string(m.Arch.Task) || got.Precision != model.PrecisionFloat32 {
			t.Errorf("%s: %+v", m.Name, got)
		}
		one := e.get("/v1/models/" + m.Name)
		wantStatus(t, one, http.StatusOK)
		if one.Header.Get(HeaderModel) != m.Name {
			t.Errorf("X-Model %q", one.Header.Get(HeaderModel))
		}
	}
}

func TestOperationalRoutes(t *testing.T) {
	e := newEnv(t)
	wantStatus(t, e.get("/healthz"), http.StatusOK)
	r := e.get("/readyz")
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"ready"`) {
		t.Errorf("readyz body %s", r.body)
	}
	spec := e.get("/openapi.yaml")
	wantStatus(t, spec, http.StatusOK)
	if !bytes.Equal(spec.body, aeserve.OpenAPI) || spec.mediaType() != ctYAML {
		t.Errorf("/openapi.yaml served %d bytes of %q, not the repository's document", len(spec.body), spec.Header.Get("Content-Type"))
	}

	// Request IDs: ours is echoed, a missing or unusable one is replaced.
	r = e.get("/healthz", HeaderRequestID, "client-id-42")
	if got := r.Header.Get(HeaderRequestID); got != "client-id-42" {
		t.Errorf("X-Request-ID %q, want the client's", got)
	}
	r = e.get("/healthz", HeaderRequestID, strings.Repeat("x", 500))
	if got := r.Header.Get(HeaderRequestID); got == "" || len(got) > maxRequestIDLen {
		t.Errorf("an overlong request ID came back as %q", got)
	}
	p := e.post("/v1/reconstruct", "text/plain", []byte("hi"), HeaderRequestID, "abc").problem(t)
	if p.RequestID != "abc" {
		t.Errorf("problem request_id %q, want abc", p.RequestID)
	}

	// Metrics carry chi's route patterns, not raw paths.
	e.get("/v1/models/conv")
	e.get("/v1/models/nope")
	e.get("/no/such/path")
	e.post("/v1/reconstruct", ctPNG, mustPNG(t, 5))
	m := e.get("/metrics")
	wantStatus(t, m, http.StatusOK)
	text := string(m.body)
	for _, want := range []string{
		`aeserve_http_requests_total{code="200",method="GET",route="/v1/models/{name}"} 1`,
		`aeserve_http_requests_total{code="404",method="GET",route="/v1/models/{name}"} 1`,
		`aeserve_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`aeserve_http_request_duration_seconds_count{method="POST",route="/v1/reconstruct"}`,
		`aeserve_http_images_total{model="conv",route="/v1/reconstruct"} 1`,
		`aeserve_model_info{architecture="conv-ae/v1",fingerprint="82231c4ca0887f78",model="conv"} 1`,
		`aeserve_batch_executions_total{half="full",model="conv"}`,
		`go_goroutines`,
		`process_cpu_seconds_total`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, `route="/v1/models/conv"`) {
		t.Error("a raw path leaked into the route label")
	}
}

func mustPNG(t *testing.T, i int) []byte {
	_, b := mnistDigit(t, i)
	return b
}

func TestLogLines(t *testing.T) {
	e := newEnv(t)
	e.post("/v1/reconstruct", ctPNG, mustPNG(t, 6), HeaderRequestID, "log-ok")
	e.post("/v1/reconstruct?model=nope", ctPNG, mustPNG(t, 6), HeaderRequestID, "log-404")
	var ok, warn map[string]any
	for _, l := range e.logs.lines() {
		switch l["request_id"] {
		case "log-ok":
			ok = l
		case "log-404":
			warn = l
		}
	}
	if ok == nil || warn == nil {
		t.Fatalf("missing request lines: %v %v", ok, warn)
	}
	if ok["level"] != "info" || ok["route"] != "/v1/reconstruct" || ok["method"] != "POST" || ok["status"] != 200.0 ||
		ok["images"] != 1.0 || ok["model"] != "conv" || ok["latency"] == nil || ok["bytes"] == nil {
		t.Errorf("success line %v", ok)
	}
	if warn["level"] != "warn" || warn["status"] != 404.0 || !strings.Contains(warn["detail"].(string), "nope") {
		t.Errorf("4xx line %v", warn)
	}
}
