package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/rs/zerolog"

	"github.com/aeserve/aeserve"
	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/batch"
	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/mnistdata"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/train"
	"github.com/aeserve/aeserve/weights"
)

// mnistTest is the real MNIST test set the suite draws its digits from
// (internal/mnistdata finds it). The tests fail rather than skip without
// it: they are the API's contract.
const mnistTest = "t10k-images-idx3-ubyte.gz"

// guard bounds every wait for a condition. It only expires when something is
// broken, so it is generous for a loaded 2-core machine running -race.
const guard = 30 * time.Second

var (
	digitsOnce sync.Once
	digitsPx   []float32
	digitsErr  error

	modelsOnce sync.Once
	models     []*model.Model
	modelsErr  error

	specOnce   sync.Once
	spec       *openapi3.T
	specRouter routers.Router
	specErr    error
)

// mnistDigit returns test digit i as pixels and as a 28×28 grey PNG.
func mnistDigit(t testing.TB, i int) ([]float32, []byte) {
	t.Helper()
	digitsOnce.Do(func() {
		dir, _, err := mnistdata.Dir()
		if err != nil {
			digitsErr = err
			return
		}
		digitsPx, _, digitsErr = train.ReadImages(filepath.Join(dir, mnistTest))
	})
	if digitsErr != nil {
		t.Fatalf("MNIST test digits are required: %v", digitsErr)
	}
	px := digitsPx[i*model.ImageLen : (i+1)*model.ImageLen]
	b, err := digit.EncodePNG(px)
	if err != nil {
		t.Fatal(err)
	}
	// EncodePNG quantises; hand back exactly what the server will see.
	q, err := digit.Decode(b, digit.Limits{}, digit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return q, b
}

func loadModels(t testing.TB) []*model.Model {
	t.Helper()
	modelsOnce.Do(func() {
		for _, name := range embeddedNames(t) {
			m, err := model.LoadFS(weights.FS, name)
			if err != nil {
				modelsErr = err
				return
			}
			models = append(models, m)
		}
	})
	if modelsErr != nil {
		t.Fatalf("embedded weights: %v", modelsErr)
	}
	return models
}

func loadSpec(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		spec, specErr = loader.LoadFromData(aeserve.OpenAPI)
		if specErr != nil {
			return
		}
		if specErr = spec.Validate(loader.Context); specErr != nil {
			return
		}
		specRouter, specErr = gorillamux.NewRouter(spec)
	})
	if specErr != nil {
		t.Fatalf("openapi.yaml: %v", specErr)
	}
	return spec, specRouter
}

// env is one server on loopback with real weights and batchers, and a client
// whose every response is checked against openapi.yaml.
type env struct {
	t      *testing.T
	s      *Server
	ts     *httptest.Server
	client *http.Client
	logs   *syncBuffer
}

type envOption func(*Config)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	e := newUnloadedEnv(t, opts...)
	if err := e.s.Load(loadModels(t)...); err != nil {
		t.Fatal(err)
	}
	return e
}

// embeddedNames lists the models shipped in weights/, sorted.
func embeddedNames(t testing.TB) []string {
	t.Helper()
	entries, err := fs.ReadDir(weights.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

// newRoleEnv is a server of the given role, loaded as cmd/server loads it:
// only the role's halves of the named models (all embedded ones if none),
// leaving out models with no stage for the role (a classifier, for the
// encoder and decoder roles).
func newRoleEnv(t *testing.T, role Role, names ...string) *env {
	t.Helper()
	e := newUnloadedEnv(t, func(c *Config) { c.Role = role })
	if len(names) == 0 {
		names = embeddedNames(t)
	}
	var ms []*model.Model
	for _, name := range names {
		m, err := model.LoadFS(weights.FS, name, role.Halves()...)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Loaded()) > 0 {
			ms = append(ms, m)
		}
	}
	if err := e.s.Load(ms...); err != nil {
		t.Fatal(err)
	}
	return e
}

// newUnloadedEnv serves without models, as while training on startup.
func newUnloadedEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	logs := &syncBuffer{}
	cfg := Config{
		Log:     zerolog.New(logs).Level(zerolog.InfoLevel),
		OpenAPI: aeserve.OpenAPI,
		// One worker per half keeps the tests that reason about queues exact.
		Batch: BatchConfig{Workers: 1},
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, s: s, logs: logs}
	// The server's own http.Server, so that its timeouts apply as in
	// production.
	e.ts = httptest.NewUnstartedServer(nil)
	e.ts.Config = s.HTTPServer()
	e.ts.Start()
	e.client = &http.Client{Transport: &validatingTransport{t: t, next: http.DefaultTransport}}
	t.Cleanup(func() {
		e.ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e
}

// reply is a response with its body read.
type reply struct {
	*http.Response
	body []byte
}

func (r *reply) mediaType() string {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt
}

func (r *reply) problem(t testing.TB) api.Problem {
	t.Helper()
	if r.mediaType() != ctProblem {
		t.Fatalf("status %d, Content-Type %q, want %s; body %.200s", r.StatusCode, r.Header.Get("Content-Type"), ctProblem, r.body)
	}
	var p api.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, r.body)
	}
	if p.Type == "" || p.Title == "" || p.Status != r.StatusCode || p.Detail == "" || p.RequestID == "" {
		t.Errorf("incomplete problem for status %d: %+v", r.StatusCode, p)
	}
	return p
}

func (e *env) do(req *http.Request) *reply {
	e.t.Helper()
	// Errorf, not Fatalf: tests call this from many goroutines. The zero
	// status then fails the caller's status check.
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Errorf("%s %s: %v", req.Method, req.URL, err)
		return &reply{Response: &http.Response{Request: req, Header: http.Header{}}}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Errorf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return &reply{Response: resp, body: b}
}

func (e *env) request(method, path, ctype string, body []byte, header ...string) *http.Request {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

func (e *env) get(path string, header ...string) *reply {
	e.t.Helper()
	return e.do(e.request(http.MethodGet, path, "", nil, header...))
}

func (e *env) post(path, ctype string, body []byte, header ...string) *reply {
	e.t.Helper()
	return e.do(e.request(http.MethodPost, path, ctype, body, header...))
}

// postImages sends pngs in the batch form.
func (e *env) postImages(path string, pngs [][]byte, header ...string) *reply {
	e.t.Helper()
	body, ctype := multipartBody(e.t, imageField, pngs...)
	return e.post(path, ctype, body, header...)
}

// boundaryFor is fixed so that tests can build a body and its Content-Type
// apart.
const boundaryFor = "aeserve-test-boundary"

func multipartBody(t testing.TB, field string, files ...[]byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.SetBoundary(boundaryFor); err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename="%d.png"`, field, i))
		h.Set("Content-Type", ctPNG)
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

func wantStatus(t testing.TB, r *reply, status int) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %.300s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.body)
	}
}

// pngPixels decodes a 28×28 grey PNG answer.
func pngPixels(t testing.TB, b []byte) []uint8 {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("answer is not a PNG: %v", err)
	}
	g, ok := img.(*image.Gray)
	if !ok || g.Bounds() != image.Rect(0, 0, 28, 28) {
		t.Fatalf("answer is %T %v, want 28×28 *image.Gray", img, img.Bounds())
	}
	return g.Pix
}

func imagesOf(t testing.TB, r *reply) api.Images {
	t.Helper()
	if r.mediaType() != ctJSON {
		t.Fatalf("Content-Type %q, want %s", r.Header.Get("Content-Type"), ctJSON)
	}
	var im api.Images
	if err := json.Unmarshal(r.body, &im); err != nil {
		t.Fatal(err)
	}
	return im
}

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// maxDiff is the largest per-pixel difference in grey levels.
func maxDiff(a, b []uint8) int {
	d := 0
	for i := range a {
		d = max(d, abs(int(a[i])-int(b[i])))
	}
	return d
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// syncBuffer collects log lines written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(s.b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// gate stands between every batcher and its runner: while closed, forward
// passes block, so tests can fill queues and hold requests in flight without
// depending on timing.
type gate struct {
	mu     sync.Mutex
	open   chan struct{}
	closed bool
	panics map[string]bool // half → panic instead of computing
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		close(g.open)
		g.closed = true
	}
}

func (g *gate) option(c *Config) {
	c.wrapProcessor = func(l batch.Labels, p batch.Processor) batch.Processor {
		return gatedProc{g: g, half: l.Half, next: p}
	}
}

type gatedProc struct {
	g    *gate
	half string
	next batch.Processor
}

func (p gatedProc) Process(in []float32, n int) ([]float32, error) {
	<-p.g.open
	p.g.mu.Lock()
	boom := p.g.panics[p.half]
	p.g.mu.Unlock()
	if boom {
		panic("test: processor panic")
	}
	return p.next.Process(in, n)
}

func (p gatedProc) Close() error {
	if c, ok := p.next.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// waitFor polls cond until it holds; it fails the test only if the guard
// expires, which means the server is stuck, not slow.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (e *env) batcher(name string, h model.Half) *batch.Batcher {
	return e.s.models.Load().byName[name].batchers[h]
}

// validatingTransport checks every response the suite receives against
// openapi.yaml: status documented for the operation, headers, media type and
// body schema. Responses to paths or methods the spec does not have (404,
// 405) must still be problem documents.
type validatingTransport struct {
	t    testing.TB
	next http.RoundTripper
}

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	v.check(req, resp, body)
	return resp, nil
}

func (v *validatingTransport) check(req *http.Request, resp *http.Response, body []byte) {
	t := v.t
	doc, router := loadSpec(t)
	where := fmt.Sprintf("%s %s → %d", req.Method, req.URL.Path, resp.StatusCode)
	if resp.Header.Get(HeaderRequestID) == "" {
		t.Errorf("%s: no %s header", where, HeaderRequestID)
	}
	head := req.Method == http.MethodHead
	if head && len(body) > 0 {
		t.Errorf("%s: HEAD answered with a %d-byte body", where, len(body))
	}
	// The router of kin-openapi matches the escaped path, escapes and all;
	// the server's decodes escaped unreserved characters first
	// (normalizeEscapes), so /%68ealthz is /healthz to both.
	routed := req.Clone(req.Context())
	routed.URL.RawPath = normalizeEscapes(req.URL.EscapedPath())
	route, params, err := router.FindRoute(routed)
	if err != nil {
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		schema := "Problem"
		if isV2(req) {
			// Under /v2 every error takes the protocol's own form.
			schema = "V2Error"
			if mt != ctJSON {
				t.Errorf("%s: route not in the spec (%v) and the answer is %q, not a V2 error", where, err, mt)
				return
			}
		} else if mt != ctProblem {
			t.Errorf("%s: route not in the spec (%v) and the answer is %q, not a problem", where, err, mt)
			return
		}
		if resp.StatusCode == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "" {
			t.Errorf("%s: no Allow header", where)
		}
		if head {
			return // no body to check
		}
		var val any
		if err := json.Unmarshal(body, &val); err != nil {
			t.Errorf("%s: problem body: %v", where, err)
			return
		}
		if err := doc.Components.Schemas[schema].Value.VisitJSON(val); err != nil {
			t.Errorf("%s: error body does not match the %s schema: %v", where, schema, err)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		// Undocumented statuses are errors: the spec must list every answer.
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if head {
		// kin-openapi skips HEAD altogether. Check the HEAD operation's
		// status and headers as if it were a GET without a body, and the
		// media type by hand.
		get := req.Clone(req.Context())
		get.Method = http.MethodGet
		in.RequestValidationInput.Request = get
		in.Options.ExcludeResponseBody = true
		if rr := route.Operation.Responses.Status(resp.StatusCode); rr != nil && len(rr.Value.Content) > 0 {
			if rr.Value.Content.Get(resp.Header.Get("Content-Type")) == nil {
				t.Errorf("%s: Content-Type %q is not documented", where, resp.Header.Get("Content-Type"))
			}
		}
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		t.Errorf("%s: response does not match openapi.yaml: %v", where, err)
	}
}

// sendAsync sends req without validating the answer (a cancelled request
// gets none) and reports the client's error.
func sendAsync(req *http.Request) <-chan error {
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	return done
}

// waitServed waits for a Serve goroutine's result, which must be nil.
func waitServed(t *testing.T, served <-chan error) {
	t.Helper()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(guard):
		t.Fatal("Serve did not return")
	}
}

// convLatentLen is the numbers in one conv latent, [32, 7, 7].
var convLatentLen = func() int {
	n := 1
	for _, d := range model.ArchConv.LatentShape() {
		n *= d
	}
	return n
}()
