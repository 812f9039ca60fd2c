package server

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func withCORS(origins ...string) envOption {
	return func(c *Config) { c.CORSOrigins = origins }
}

// corsTransport sends requests as the env's client does, but takes a
// preflight's 204, which is the CORS protocol and not an operation of
// openapi.yaml, without holding it to the spec; every other answer is.
type corsTransport struct{ t *testing.T }

func (c corsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if req.Method == http.MethodOptions && resp.StatusCode == http.StatusNoContent {
		if len(body) > 0 || resp.Header.Get(HeaderRequestID) == "" {
			c.t.Errorf("preflight %s: body %q, request ID %q", req.URL.Path, body, resp.Header.Get(HeaderRequestID))
		}
		return resp, nil
	}
	(&validatingTransport{t: c.t}).check(req, resp, body)
	return resp, nil
}

func newCORSEnv(t *testing.T, opts ...envOption) *env {
	e := newEnv(t, opts...)
	e.client = &http.Client{Transport: corsTransport{t}}
	return e
}

func (e *env) preflight(path, origin, method string) *reply {
	e.t.Helper()
	return e.do(e.request(http.MethodOptions, path, "", nil,
		"Origin", origin, "Access-Control-Request-Method", method,
		"Access-Control-Request-Headers", "authorization,content-type"))
}

func varies(r *reply, name string) bool {
	for _, v := range r.Header.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
	}
	return false
}

func noCORS(t *testing.T, r *reply) {
	t.Helper()
	for k := range r.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("%s %s: %s: %q, want no CORS headers", r.Request.Method, r.Request.URL.Path, k, r.Header.Get(k))
		}
	}
}

// Pages of the named origins may call the API: preflights are answered,
// answers carry Access-Control-Allow-Origin; other origins get nothing.
func TestCORS(t *testing.T) {
	const app, dev, evil = "https://app.example", "http://localhost:3000", "https://evil.example"
	e := newCORSEnv(t, withCORS("HTTPS://App.Example:443/", dev))

	for _, tc := range []struct {
		path, method, methods string
	}{
		{"/v1/encode", "POST", "POST"},
		{"/v1/models", "GET", "GET, HEAD"},
		{"/v2/models/conv.encoder/infer", "POST", "POST"},
		{"/v2/models/conv/versions/x/ready", "GET", "GET, HEAD"},
	} {
		r := e.preflight(tc.path, app, tc.method)
		wantStatus(t, r, http.StatusNoContent)
		h := r.Header
		if h.Get("Access-Control-Allow-Origin") != app || h.Get("Access-Control-Allow-Methods") != tc.methods ||
			h.Get("Access-Control-Max-Age") != "600" || h.Get("Access-Control-Allow-Credentials") != "" || !varies(r, "Origin") {
			t.Errorf("preflight %s: %v", tc.path, h)
		}
		allowed := strings.Split(h.Get("Access-Control-Allow-Headers"), ", ")
		for _, want := range []string{"Authorization", "Content-Type", "Inference-Header-Content-Length"} {
			if !slices.Contains(allowed, want) {
				t.Errorf("preflight %s: Access-Control-Allow-Headers %q lacks %s", tc.path, allowed, want)
			}
		}
	}
	if r := e.preflight("/v1/models", dev, "GET"); r.Header.Get("Access-Control-Allow-Origin") != dev {
		t.Errorf("second origin: %v", r.Header)
	}

	// Another origin's preflight, and a preflight to no route, go on to the
	// answers they always had.
	r := e.preflight("/v1/encode", evil, "POST")
	wantStatus(t, r, http.StatusMethodNotAllowed)
	noCORS(t, r)
	r = e.preflight("/nope", app, "GET")
	wantStatus(t, r, http.StatusNotFound)
	if r.Header.Get("Access-Control-Allow-Methods") != "" {
		t.Errorf("preflight to no route: %v", r.Header)
	}
	// OPTIONS that is not a preflight is a method like any other.
	wantStatus(t, e.do(e.request(http.MethodOptions, "/v1/models", "", nil, "Origin", app)), http.StatusMethodNotAllowed)

	// Simple and actual requests.
	r = e.get("/v1/models", "Origin", app)
	wantStatus(t, r, http.StatusOK)
	if r.Header.Get("Access-Control-Allow-Origin") != app || !varies(r, "Origin") || !varies(r, "Accept") ||
		!strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "X-Model-Fingerprint") {
		t.Errorf("GET from %s: %v", app, r.Header)
	}
	r = e.post("/v1/reconstruct", ctPNG, mustPNG(t, 1), "Origin", dev)
	wantStatus(t, r, http.StatusOK)
	if r.Header.Get("Access-Control-Allow-Origin") != dev ||
		!strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "X-Request-ID") {
		t.Errorf("POST from %s: %v", dev, r.Header)
	}
	r = e.get("/v1/models/nope", "Origin", app) // errors too, so the page can read them
	wantStatus(t, r, http.StatusNotFound)
	if r.Header.Get("Access-Control-Allow-Origin") != app {
		t.Errorf("404 from %s: %v", app, r.Header)
	}
	for _, origin := range []string{evil, "null", "https://app.example.evil", "http://app.example", ""} {
		r = e.get("/v1/models", "Origin", origin)
		wantStatus(t, r, http.StatusOK)
		noCORS(t, r)
		if !varies(r, "Origin") {
			t.Errorf("origin %q: no Vary: Origin", origin)
		}
	}

	// The ops listener has no CORS.
	rec := httptestRecorder(e.s.OpsHandler(), http.MethodOptions, "/metrics", "Origin", app, "Access-Control-Request-Method", "GET")
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("ops preflight: %d %v", rec.Code, rec.Header())
	}
}

// * lets every page in, without Vary: Origin.
func TestCORSAnyOrigin(t *testing.T) {
	e := newCORSEnv(t, withCORS("*"))
	r := e.preflight("/v1/decode", "https://anyone.example", "POST")
	wantStatus(t, r, http.StatusNoContent)
	if r.Header.Get("Access-Control-Allow-Origin") != "*" || r.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight: %v", r.Header)
	}
	r = e.get("/v1/models", "Origin", "https://anyone.example")
	if r.Header.Get("Access-Control-Allow-Origin") != "*" || varies(r, "Origin") {
		t.Errorf("GET: %v", r.Header)
	}
	noCORS(t, e.get("/v1/models")) // not a cross-origin request
}

// Without --cors-origins nothing changes: OPTIONS is 405, no CORS headers.
func TestCORSOffByDefault(t *testing.T) {
	e := newCORSEnv(t)
	r := e.preflight("/v1/encode", "https://app.example", "POST")
	wantStatus(t, r, http.StatusMethodNotAllowed)
	noCORS(t, r)
	r = e.get("/v1/models", "Origin", "https://app.example")
	noCORS(t, r)
	if varies(r, "Origin") {
		t.Error("Vary: Origin without CORS")
	}
}

// With tokens, preflights (which browsers send without credentials) are
// answered, and a 401 carries the CORS headers that let the page read it.
func TestCORSWithAuth(t *testing.T) {
	const app = "https://app.example"
	e := newCORSEnv(t, withCORS(app), withTokens(tokenFile(t, tokenOne)))
	wantStatus(t, e.preflight("/v1/classify", app, "POST"), http.StatusNoContent)
	r := e.post("/v1/classify", ctPNG, mustPNG(t, 2), "Origin", app)
	wantUnauthorized(t, r, false)
	if r.Header.Get("Access-Control-Allow-Origin") != app || !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
		t.Errorf("401 from %s: %v", app, r.Header)
	}
	wantStatus(t, e.post("/v1/classify", ctPNG, mustPNG(t, 2), "Origin", app, "Authorization", "Bearer "+tokenOne), http.StatusOK)
	// Another origin's preflight gets the 401 any request without a token does.
	wantUnauthorized(t, e.preflight("/v1/classify", "https://evil.example", "POST"), false)
}

func TestParseCORSOrigins(t *testing.T) {
	got, err := ParseCORSOrigins(" https://A.example , http://[::1]:8080,http://localhost:80/ ,https://b.example:8443")
	want := []string{"https://a.example", "http://[::1]:8080", "http://localhost", "https://b.example:8443"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	if got, err := ParseCORSOrigins(""); err != nil || got != nil {
		t.Errorf("empty: %q, %v", got, err)
	}
	if got, err := ParseCORSOrigins("*"); err != nil || !slices.Equal(got, []string{"*"}) {
		t.Errorf("*: %q, %v", got, err)
	}
	for _, bad := range []string{
		"null", "app.example", "ftp://app.example", "https://app.example/path", "https://app.example?x=1",
		"https://user@app.example", "https://app.example:99999", "https://app.example,,https://b.example",
		"*,https://app.example", "https://", "https://app.example#top",
	} {
		if got, err := ParseCORSOrigins(bad); err == nil {
			t.Errorf("%q: accepted as %q", bad, got)
		}
	}
	if _, err := New(Config{CORSOrigins: []string{"null"}}); err == nil {
		t.Error(`New accepted the origin "null"`)
	}
}

// httptestRecorder serves one request (header: name, value, …) with h.
func httptestRecorder(h http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
