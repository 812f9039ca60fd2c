package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/model"
)

// chunk frames one PNG chunk with its CRC.
func chunk(typ string, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// pixelBomb is a well-framed PNG whose header claims w×h 8-bit grey pixels.
func pixelBomb(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 0, 0, 0, 0)
	b := []byte("\x89PNG\r\n\x1a\n")
	b = append(b, chunk("IHDR", ihdr)...)
	b = append(b, chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	return append(b, chunk("IEND", nil)...)
}

func latentJSON(t *testing.T, l api.Latent) []byte {
	t.Helper()
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func latentBinary(t *testing.T, l api.Latent) []byte {
	t.Helper()
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encodeLatent is a real latent of image i from the named model.
func encodeLatent(t *testing.T, e *env, name string, i int) api.Latent {
	t.Helper()
	r := e.post("/v1/encode?model="+name, ctPNG, mustPNG(t, i))
	wantStatus(t, r, http.StatusOK)
	var l api.Latent
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	img := mustPNG(t, 7)
	two, twoType := multipartBody(t, imageField, img, img)
	badSecond, badSecondType := multipartBody(t, imageField, img, img[:len(img)-20], img)
	notImage, notImageType := multipartBody(t, imageField, img, []byte("not an image"), img)
	wrongField, wrongFieldType := multipartBody(t, "image", img)
	noFiles, noFilesType := multipartBody(t, imageField)

	conv := encodeLatent(t, e, "conv", 8)
	denoiseFP := modelFingerprint(t, e, "denoise")
	otherWeights := conv
	otherWeights.Model = ""
	otherWeights.Fingerprint = "0123456789abcdef"
	mislabelled := conv
	mislabelled.Fingerprint = denoiseFP // model says conv, weights say denoise
	withNaN := conv
	withNaN.Data = append([]float32(nil), conv.Data...)
	withNaN.Data[100] = float32(math.NaN())
	withInf := conv
	withInf.Data = append([]float32(nil), conv.Data...)
	withInf.Data[convLatentLen-1] = float32(math.Inf(-1))
	wrongShape := conv
	wrongShape.Shape = []int{1, 32, 49}
	flat := conv
	flat.Shape = []int{convLatentLen}
	inconsistent := conv
	inconsistent.Data = conv.Data[:10]

	for _, tc := range []struct {
		name   string
		method string
		path   string
		ctype  string
		body   []byte
		accept string
		status int
		kind   string
		index  *int
		detail string // substring
	}{
		// 400
		{name: "corrupt png", path: "/v1/reconstruct", ctype: ctPNG, body: append(bytes.Clone(img[:40]), make([]byte, 200)...), status: 400, kind: kindMalformed, index: ptr(0)},
		{name: "trailing bytes after IEND", path: "/v1/reconstruct", ctype: ctPNG, body: append(append([]byte(nil), img...), "tail"...), status: 400, kind: kindMalformed, detail: "trailing"},
		{name: "truncated png", path: "/v1/encode", ctype: ctPNG, body: img[:len(img)-20], status: 400, kind: kindMalformed},
		{name: "bad image in batch", path: "/v1/reconstruct", ctype: badSecondType, body: badSecond, status: 400, kind: kindMalformed, index: ptr(1), detail: "image 1"},
		{name: "bad multipart", path: "/v1/reconstruct", ctype: "multipart/form-data; boundary=xyz", body: []byte("--nope\r\n"), status: 400, kind: kindMalformed},
		{name: "multipart without boundary", path: "/v1/encode", ctype: "multipart/form-data", body: two, status: 400, kind: kindMalformed},
		{name: "wrong form field", path: "/v1/reconstruct", ctype: wrongFieldType, body: wrongField, status: 400, kind: kindMalformed, detail: `"image"`},
		{name: "no images", path: "/v1/reconstruct", ctype: noFilesType, body: noFiles, status: 400, kind: kindMalformed},
		{name: "bad fit", path: "/v1/reconstruct?fit=maybe", ctype: ctPNG, body: img, status: 400, kind: kindMalformed},
		{name: "garbage binary latent", path: "/v1/decode", ctype: ctBinary, body: []byte("\xae\x11short"), status: 400, kind: kindMalformed},
		{name: "binary latent with trailing bytes", path: "/v1/decode", ctype: ctBinary, body: append(latentBinary(t, conv), 0), status: 400, kind: kindMalformed},
		{name: "malformed latent JSON", path: "/v1/decode", ctype: ctJSON, body: []byte(`{"model":`), status: 400, kind: kindMalformed},
		{name: "latent JSON with unknown field", path: "/v1/decode", ctype: ctJSON, body: []byte(`{"modle":"conv"}`), status: 400, kind: kindMalformed},
		{name: "latent JSON with trailing data", path: "/v1/decode", ctype: ctJSON, body: append(latentJSON(t, conv), "{}"...), status: 400, kind: kindMalformed},
		// 404
		{name: "unknown model", path: "/v1/encode?model=nope", ctype: ctPNG, body: img, status: 404, kind: kindUnknownModel, detail: "nope"},
		{name: "unknown model denoise", path: "/v1/denoise?model=nope", ctype: ctPNG, body: img, status: 404, kind: kindUnknownModel},
		{name: "unknown model in decode param", path: "/v1/decode?model=nope", ctype: ctJSON, body: latentJSON(t, conv), status: 404, kind: kindUnknownModel},
		{name: "unknown model in latent", path: "/v1/decode", ctype: ctJSON, body: bytes.Replace(latentJSON(t, conv), []byte(`"conv"`), []byte(`"nope"`), 1), status: 404, kind: kindUnknownModel},
		{name: "unknown model info", method: http.MethodGet, path: "/v1/models/nope", status: 404, kind: kindUnknownModel},
		{name: "unknown path", method: http.MethodGet, path: "/v3/encode", status: 404, kind: kindNotFound},
		// 405
		{name: "GET encode", method: http.MethodGet, path: "/v1/encode", status: 405, kind: kindMethod},
		{name: "POST healthz", method: http.MethodPost, path: "/healthz", ctype: ctJSON, body: []byte("{}"), status: 405, kind: kindMethod},
		{name: "DELETE model", method: http.MethodDelete, path: "/v1/models/conv", status: 405, kind: kindMethod},
		// 406
		{name: "accept gif", path: "/v1/reconstruct", ctype: ctPNG, body: img, accept: "image/gif", status: 406, kind: kindNotAcceptable},
		{name: "accept png for a batch", path: "/v1/reconstruct", ctype: twoType, body: two, accept: "image/png", status: 406, kind: kindNotAcceptable},
		{name: "accept png for a latent", path: "/v1/encode", ctype: ctPNG, body: img, accept: "image/png", status: 406, kind: kindNotAcceptable},
		{name: "accept with q=0", path: "/v1/encode", ctype: ctPNG, body: img, accept: "application/json;q=0, application/octet-stream;q=0", status: 406, kind: kindNotAcceptable},
		{name: "accept html for models", method: http.MethodGet, path: "/v1/models", accept: "text/html", status: 406, kind: kindNotAcceptable},
		{name: "accept json for the spec", method: http.MethodGet, path: "/openapi.yaml", accept: "application/json", status: 406, kind: kindNotAcceptable},
		// 409
		{name: "latent from other weights", path: "/v1/decode", ctype: ctBinary, body: latentBinary(t, otherWeights), status: 409, kind: kindConflict, detail: "0123456789abcdef"},
		{name: "latent model and fingerprint disagree", path: "/v1/decode", ctype: ctJSON, body: latentJSON(t, mislabelled), status: 409, kind: kindConflict},
		{name: "model param disagrees with latent", path: "/v1/decode?model=denoise", ctype: ctJSON, body: latentJSON(t, conv), status: 409, kind: kindConflict},
		{name: "model param disagrees with binary latent", path: "/v1/decode?model=denoise", ctype: ctBinary, body: latentBinary(t, conv), status: 409, kind: kindConflict},
		// 413
		{name: "pixel bomb", path: "/v1/reconstruct?fit=true", ctype: ctPNG, body: pixelBomb(100000, 100000), status: 413, kind: kindTooLarge, index: ptr(0)},
		{name: "pixel bomb in batch", path: "/v1/encode?fit=true", ctype: ctMultipartTest, body: multipartOf(t, img, pixelBomb(8000, 8000)), status: 413, kind: kindTooLarge, index: ptr(1)},
		// 415
		{name: "text body", path: "/v1/reconstruct", ctype: "text/plain", body: []byte("hello"), status: 415, kind: kindMediaType},
		{name: "garbage png", path: "/v1/reconstruct", ctype: ctPNG, body: []byte("garbage"), status: 415, kind: kindMediaType, index: ptr(0), detail: "PNG, JPEG or GIF"},
		{name: "not an image in batch", path: "/v1/reconstruct", ctype: notImageType, body: notImage, status: 415, kind: kindMediaType, index: ptr(1), detail: "image 1"},
		{name: "no content type", path: "/v1/encode", body: img, status: 415, kind: kindMediaType},
		{name: "png to decode", path: "/v1/decode", ctype: ctPNG, body: img, status: 415, kind: kindMediaType},
		{name: "latent to reconstruct", path: "/v1/reconstruct", ctype: ctJSON, body: latentJSON(t, conv), status: 415, kind: kindMediaType},
		// 422
		{name: "56×56 without fit", path: "/v1/encode", ctype: ctPNG, body: scaled(t, mustPixels(t, 9), 2, false), status: 422, kind: kindUnprocessable, index: ptr(0), detail: "56×56"},
		{name: "blank image with fit", path: "/v1/reconstruct?fit=true", ctype: ctPNG, body: scaled(t, make([]float32, model.ImageLen), 2, false), status: 422, kind: kindUnprocessable},
		{name: "NaN latent", path: "/v1/decode", ctype: ctBinary, body: latentBinary(t, withNaN), status: 422, kind: kindUnprocessable, detail: "NaN"},
		{name: "infinite latent", path: "/v1/decode", ctype: ctBinary, body: latentBinary(t, withInf), status: 422, kind: kindUnprocessable},
		{name: "wrong-shape latent", path: "/v1/decode", ctype: ctJSON, body: latentJSON(t, wrongShape), status: 422, kind: kindUnprocessable, detail: "shape"},
		{name: "flat binary latent", path: "/v1/decode", ctype: ctBinary, body: latentBinary(t, flat), status: 422, kind: kindUnprocessable},
		{name: "latent data shorter than shape", path: "/v1/decode", ctype: ctJSON, body: latentJSON(t, inconsistent), status: 422, kind: kindUnprocessable},
		{name: "float16 latent", path: "/v1/decode", ctype: ctJSON, body: bytes.Replace(latentJSON(t, conv), []byte(`"float32"`), []byte(`"float16"`), 1), status: 422, kind: kindUnprocessable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := e.request(method, tc.path, tc.ctype, tc.body)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			r := e.do(req)
			wantStatus(t, r, tc.status)
			p := r.problem(t)
			if p.Type != ProblemTypeBase+tc.kind {
				t.Errorf("type %q, want %q", p.Type, ProblemTypeBase+tc.kind)
			}
			if tc.index != nil && (p.Index == nil || *p.Index != *tc.index) {
				t.Errorf("index %v, want %d", p.Index, *tc.index)
			}
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail %q lacks %q", p.Detail, tc.detail)
			}
			switch tc.status {
			case 405:
				if r.Header.Get("Allow") == "" {
					t.Error("405 without Allow")
				}
			case 415:
				if r.Header.Get("Accept-Post") == "" {
					t.Error("415 without Accept-Post")
				}
			}
		})
	}
}

func ptr(i int) *int { return &i }

func multipartOf(t *testing.T, files ...[]byte) []byte {
	b, _ := multipartBody(t, imageField, files...)
	return b
}

const ctMultipartTest = "multipart/form-data; boundary=" + boundaryFor

func mustPixels(t *testing.T, i int) []float32 {
	px, _ := mnistDigit(t, i)
	return px
}

func TestAllowHeader(t *testing.T) {
	e := newEnv(t)
	r := e.get("/v1/decode")
	wantStatus(t, r, http.StatusMethodNotAllowed)
	if got := r.Header.Get("Allow"); got != "POST" {
		t.Errorf("Allow %q, want POST", got)
	}
	r = e.post("/v1/models/conv", ctJSON, []byte("{}"))
	wantStatus(t, r, http.StatusMethodNotAllowed)
	if got := r.Header.Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow %q, want GET, HEAD", got)
	}
	if !strings.Contains(e.get("/metrics").String(), `route="/v1/models/{name}"`) {
		t.Error("405 not counted under its route pattern")
	}
}

func TestLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxBodyBytes = 4 << 10
		c.MaxImages = 3
		c.MaxPixels = 100 * 100
	})
	img := mustPNG(t, 11)
	big := bytes.Repeat([]byte{0}, 8<<10)
	for _, tc := range []struct {
		name   string
		ctype  string
		body   []byte
		path   string
		detail string
	}{
		{"body over limit", ctPNG, big, "/v1/reconstruct", "4096 bytes"},
		{"body over limit in multipart", "", multipartOf(t, img, big), "/v1/reconstruct", "4096 bytes"},
		{"latent over limit", ctJSON, bytes.Repeat([]byte(" "), 8<<10), "/v1/decode", "4096 bytes"},
		{"too many images", "", multipartOf(t, img, img, img, img), "/v1/encode", "more than 3 images"},
		{"too many pixels", ctPNG, scaled(t, mustPixels(t, 11), 4, false), "/v1/reconstruct?fit=true", "limit is 10000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctype := tc.ctype
			if ctype == "" {
				ctype = ctMultipartTest
			}
			r := e.post(tc.path, ctype, tc.body)
			wantStatus(t, r, http.StatusRequestEntityTooLarge)
			if p := r.problem(t); !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail %q lacks %q", p.Detail, tc.detail)
			}
			// The rest of an over-long body is never read: the connection must close.
			if strings.Contains(tc.detail, "bytes") && !r.Close {
				t.Error("413 for an over-long body kept the connection open")
			}
		})
	}
	// A latent of more images than allowed per request, within the body limit.
	e2 := newEnv(t, func(c *Config) { c.MaxImages = 3 })
	l := encodeLatent(t, e2, "conv", 12)
	l.Shape[0] = 4
	l.Data = bytes32(l.Data, 4)
	r := e2.post("/v1/decode", ctBinary, latentBinary(t, l))
	wantStatus(t, r, http.StatusRequestEntityTooLarge)
	if p := r.problem(t); !strings.Contains(p.Detail, "4 images") {
		t.Errorf("detail %q", p.Detail)
	}
	// Within the limits all is well.
	wantStatus(t, e.postImages("/v1/encode", [][]byte{img, img, img}), http.StatusOK)
}

func bytes32(v []float32, k int) []float32 {
	out := make([]float32, 0, len(v)*k)
	for range k {
		out = append(out, v...)
	}
	return out
}

func (r *reply) String() string { return string(r.body) }

func TestNotReady(t *testing.T) {
	e := newUnloadedEnv(t)
	e.s.SetWaiting("training model conv")
	wantStatus(t, e.get("/healthz"), http.StatusOK)
	r := e.get("/readyz")
	wantStatus(t, r, http.StatusServiceUnavailable)
	if p := r.problem(t); !strings.Contains(p.Detail, "training") || r.Header.Get("Retry-After") == "" {
		t.Errorf("readyz while training: %+v, Retry-After %q", p, r.Header.Get("Retry-After"))
	}
	for _, r := range []*reply{
		e.post("/v1/reconstruct", ctPNG, mustPNG(t, 0)),
		e.post("/v1/decode", ctJSON, []byte("{}")),
		e.get("/v1/models"),
		e.get("/v1/models/conv"),
	} {
		wantStatus(t, r, http.StatusServiceUnavailable)
		if p := r.problem(t); p.Type != ProblemTypeBase+kindNotReady {
			t.Errorf("%s: type %s", r.Request.URL.Path, p.Type)
		}
	}
	wantStatus(t, e.get("/metrics"), http.StatusOK)
	wantStatus(t, e.get("/openapi.yaml"), http.StatusOK)

	if err := e.s.Load(loadModels(t)...); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.get("/readyz"), http.StatusOK)
	wantStatus(t, e.post("/v1/reconstruct", ctPNG, mustPNG(t, 0)), http.StatusOK)
	if err := e.s.Load(loadModels(t)...); err == nil {
		t.Error("a second Load succeeded")
	}
}

func TestPanicRecovered(t *testing.T) {
	e := newEnv(t)
	e.s.hook = func(r *http.Request) {
		if r.Header.Get("X-Test-Panic") != "" {
			panic("test: handler panic")
		}
	}
	r := e.get("/v1/models", "X-Test-Panic", "1")
	wantStatus(t, r, http.StatusInternalServerError)
	if p := r.problem(t); p.Type != ProblemTypeBase+kindInternal || strings.Contains(p.Detail, "test: handler panic") {
		t.Errorf("panic answered %+v", p)
	}
	wantStatus(t, e.get("/v1/models"), http.StatusOK)
	wantStatus(t, e.post("/v1/reconstruct", ctPNG, mustPNG(t, 1)), http.StatusOK)
	logged := false
	for _, l := range e.logs.lines() {
		if l["message"] == "handler panicked" && l["stack"] != nil {
			logged = true
		}
	}
	if !logged {
		t.Error("the panic was not logged with its stack")
	}
}

// A panic inside a forward pass is the batcher's to catch; it must still
// answer 500 and leave the model serving.
func TestProcessorPanic(t *testing.T) {
	g := newGate()
	g.release()
	g.panics = map[string]bool{"encoder": true}
	e := newEnv(t, g.option)
	r := e.post("/v1/encode", ctPNG, mustPNG(t, 2))
	wantStatus(t, r, http.StatusInternalServerError)
	r.problem(t)
	g.mu.Lock()
	g.panics = nil
	g.mu.Unlock()
	wantStatus(t, e.post("/v1/encode", ctPNG, mustPNG(t, 2)), http.StatusOK)
}
