package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/aeserve/aeserve/internal/model"
)

// Whatever method a client makes up, the metrics see one of RFC 9110's or
// "other", so that the label cannot grow without bound. The log keeps what
// was sent.
func TestMethodLabels(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"QAM1", "/healthz", 405},
		{"QAM2", "/healthz", 405},
		{"get", "/healthz", 405}, // methods are case-sensitive
		{"PROPFIND", "/v1/models/conv", 405},
		{http.MethodGet, "/healthz", 200},
		{http.MethodHead, "/healthz", 200},
		{http.MethodDelete, "/healthz", 405},
		{http.MethodOptions, "/v1/encode", 405},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			wantStatus(t, e.do(e.request(tc.method, tc.path, "", nil, HeaderRequestID, "method-"+tc.method)), tc.status)
		})
	}
	text := e.get("/metrics").String()
	for _, want := range []string{
		`aeserve_http_requests_total{code="405",method="other",route="/healthz"} 3`,
		`aeserve_http_requests_total{code="405",method="other",route="/v1/models/{name}"} 1`,
		`aeserve_http_requests_total{code="200",method="GET",route="/healthz"} 1`,
		`aeserve_http_requests_total{code="200",method="HEAD",route="/healthz"} 1`,
		`aeserve_http_requests_total{code="405",method="DELETE",route="/healthz"} 1`,
		`aeserve_http_requests_total{code="405",method="OPTIONS",route="/v1/encode"} 1`,
		`aeserve_http_request_duration_seconds_count{method="other",route="/healthz"} 3`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, bad := range []string{`method="QAM1"`, `method="QAM2"`, `method="get"`, `method="PROPFIND"`} {
		if strings.Contains(text, bad) {
			t.Errorf("/metrics has a series with %s", bad)
		}
	}
	logged := false
	for _, l := range e.logs.lines() {
		logged = logged || (l["request_id"] == "method-QAM1" && l["method"] == "QAM1")
	}
	if !logged {
		t.Error("the log line does not keep the method as sent")
	}
}

// Every GET route answers HEAD with GET's status and headers and no body.
// The routes come from the router, so a new GET route is covered at once.
func TestHeadOnGetRoutes(t *testing.T) {
	e := newEnv(t)
	var paths []string
	err := chi.Walk(e.s.router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if method == http.MethodGet {
			paths = append(paths, strings.ReplaceAll(route, "{name}", "conv"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, "/v1/models/nope") // an error answers HEAD the same way
	if len(paths) < 7 {
		t.Fatalf("only %d GET routes: %v", len(paths), paths)
	}
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			g := e.get(path)
			h := e.do(e.request(http.MethodHead, path, "", nil))
			wantStatus(t, h, g.StatusCode)
			if len(h.body) != 0 {
				t.Errorf("HEAD sent %d bytes of body", len(h.body))
			}
			for _, k := range []string{"Content-Type", HeaderModel, HeaderFingerprint, "Cache-Control"} {
				if h.Header.Get(k) != g.Header.Get(k) {
					t.Errorf("%s: HEAD %q, GET %q", k, h.Header.Get(k), g.Header.Get(k))
				}
			}
			if path != "/metrics" { // the only body that changes between two requests
				if h.Header.Get("Content-Length") != strconv.Itoa(len(g.body)) {
					t.Errorf("HEAD Content-Length %q, GET body %d bytes", h.Header.Get("Content-Length"), len(g.body))
				}
			}
		})
	}
	r := e.do(e.request(http.MethodHead, "/v1/encode", "", nil))
	wantStatus(t, r, http.StatusMethodNotAllowed)
	if got := r.Header.Get("Allow"); got != "POST" {
		t.Errorf("HEAD /v1/encode: Allow %q, want POST", got)
	}
}

// A path parameter is percent-decoded exactly once, however the client
// escaped it; unreserved characters may be escaped anywhere in the path.
func TestPathEscapes(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		path   string
		status int
		want   string // X-Model on success, a substring of the detail otherwise
	}{
		{"/v1/models/conv", 200, "conv"},
		{"/v1/models/%63onv", 200, "conv"},
		{"/v1/models/%63%6F%6e%76", 200, "conv"},
		{"/v1/models/d%65noise", 200, "denoise"},
		{"/v1/%6dodels/conv", 200, "conv"},
		{"/%68ealthz", 200, ""},
		{"/v1/models/a%20b", 404, `"a b"`},
		{"/v1/models/a%2Fb", 404, `"a/b"`},
		{"/v1/models/%2563onv", 404, `"%63onv"`}, // decoded once, not twice
		{"/v1/models/%C3%A9", 404, `"é"`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := e.get(tc.path)
			wantStatus(t, r, tc.status)
			if tc.status == 200 {
				if got := r.Header.Get(HeaderModel); got != tc.want {
					t.Errorf("X-Model %q, want %q", got, tc.want)
				}
				return
			}
			if p := r.problem(t); p.Type != ProblemTypeBase+kindUnknownModel || !strings.Contains(p.Detail, tc.want) {
				t.Errorf("problem %+v, want unknown-model naming %s", p, tc.want)
			}
		})
	}
	// The metrics still carry the route pattern.
	if !strings.Contains(e.get("/metrics").String(), `aeserve_http_requests_total{code="200",method="GET",route="/v1/models/{name}"} 5`) {
		t.Error("escaped paths are not counted under their route")
	}
}

// Nothing in a query string is silently ignored: malformed, repeated, empty,
// unknown parameters and bad values answer 400 naming the problem. The probe
// and metrics routes are the exception: they take any query.
func TestStrictQuery(t *testing.T) {
	e := newEnv(t)
	img := mustPNG(t, 19)
	latent := latentJSON(t, encodeLatent(t, e, "conv", 19))
	for _, tc := range []struct {
		method, path string
		status       int
		detail       string
	}{
		{"POST", "/v1/reconstruct?fit=true&fit=maybe", 400, `"fit" is given 2 times`},
		{"POST", "/v1/reconstruct?fit=true&fit=true", 400, `"fit" is given 2 times`},
		{"POST", "/v1/encode?model=denoise&model=conv", 400, `"model" is given 2 times`},
		{"POST", "/v1/reconstruct?fit=%zz", 400, "malformed query string"},
		{"POST", "/v1/reconstruct?fit=true;model=conv", 400, "malformed query string"},
		{"POST", "/v1/reconstruct?fit=maybe", 400, `fit="maybe"`},
		{"POST", "/v1/reconstruct?fit=", 400, `"fit" has no value`},
		{"POST", "/v1/reconstruct?fit", 400, `"fit" has no value`},
		{"POST", "/v1/denoise?model=", 400, `"model" has no value`},
		{"POST", "/v1/reconstruct?fitt=true", 400, `unknown query parameter "fitt"`},
		{"POST", "/v1/encode?fit=false&Model=conv", 400, `unknown query parameter "Model"`},
		{"POST", "/v1/decode?fit=true", 400, `unknown query parameter "fit" (this route takes model)`},
		{"GET", "/v1/models?page=2", 400, `unknown query parameter "page" (this route takes none)`},
		{"GET", "/v1/models/conv?verbose", 400, `"verbose"`},
		{"GET", "/openapi.yaml?format=json", 400, `"format"`},
		{"HEAD", "/openapi.yaml?format=json", 400, ""},
		// Probes and scrapers add parameters of their own; refusing them would
		// fail the probe, so these three take any query and ignore it.
		{"GET", "/healthz?probe=1", 200, ""},
		{"GET", "/readyz?x=1&x=2", 200, ""},
		{"GET", "/readyz?%zz", 200, ""},
		{"GET", "/metrics?name[]=up", 200, ""},
		{"HEAD", "/healthz?probe=1", 200, ""},
		// What is allowed still works.
		{"POST", "/v1/reconstruct?fit=true&model=denoise", 200, ""},
		{"POST", "/v1/reconstruct?fit=false", 200, ""},
		{"POST", "/v1/decode?model=conv", 200, ""},
		{"GET", "/v1/models?", 200, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			var body []byte
			ctype := ""
			if tc.method == http.MethodPost {
				body, ctype = img, ctPNG
				if strings.HasPrefix(tc.path, "/v1/decode") {
					body, ctype = latent, ctJSON
				}
			}
			r := e.do(e.request(tc.method, tc.path, ctype, body))
			wantStatus(t, r, tc.status)
			if tc.status == 200 || tc.method == http.MethodHead {
				return
			}
			if p := r.problem(t); p.Type != ProblemTypeBase+kindMalformed || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("problem %+v, want malformed with %s", p, tc.detail)
			}
		})
	}
}

// A JSON latent that is not an object is malformed (400), like any other
// JSON that is not a latent; a number beyond float32 is a non-finite value
// (422), like NaN and infinities in the binary form, and is named.
func TestLatentJSONStatus(t *testing.T) {
	e := newEnv(t)
	l := encodeLatent(t, e, "conv", 20)
	// withData is l's JSON with data[i] written as the literal v.
	withData := func(n int, edits map[int]string) []byte {
		vals := make([]string, 0, n*len(l.Data))
		for range n {
			for _, v := range l.Data {
				vals = append(vals, strconv.FormatFloat(float64(v), 'g', -1, 32))
			}
		}
		for i, v := range edits {
			vals[i] = v
		}
		return fmt.Appendf(nil, `{"model":"conv","fingerprint":%q,"shape":[%d,32,7,7],"dtype":"float32","data":[%s]}`,
			l.Fingerprint, n, strings.Join(vals, ", "))
	}
	obj := latentJSON(t, l)
	largest := map[int]string{}
	for i := range convLatentLen {
		largest[i] = "3.4028235e38"
	}
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		detail string
	}{
		{"null", []byte("null"), 400, "null"},
		{"null with spaces", []byte(" \n null \n"), 400, "null"},
		{"array", append(append([]byte("["), obj...), ']'), 400, "an array"},
		{"string", []byte(`"x"`), 400, "a string"},
		{"number", []byte(`1`), 400, "a number"},
		{"empty", nil, 400, "empty"},
		{"data not an array", fmt.Appendf(nil, `{"model":"conv","fingerprint":%q,"shape":[1,32,7,7],"dtype":"float32","data":{"a":1}}`, l.Fingerprint), 400, "data is an object"},
		{"string in data", withData(1, map[int]string{3: `"NaN"`}), 400, "data[3] is a string"},
		{"null in data", withData(1, map[int]string{7: `null`}), 400, "data[7] is null"},
		{"1e39", withData(1, map[int]string{5: "1e39"}), 422, "value 5 (image 0)"},
		{"-1e39 in the second image", withData(2, map[int]string{convLatentLen + 3: "-1e39"}), 422, fmt.Sprintf("value %d (image 1)", convLatentLen+3)},
		{"1e400", withData(1, map[int]string{0: "1e400"}), 422, "value 0"},
		{"just above float32", withData(1, map[int]string{9: "3.4028236e38"}), 422, "value 9"},
		{"large but finite", withData(1, map[int]string{9: "1e10"}), 200, ""},
		{"underflow to zero", withData(1, map[int]string{9: "1e-50"}), 200, ""},
		{"exponent forms", withData(1, map[int]string{1: "1E-3", 2: "-0", 3: "2.5e+1"}), 200, ""},
		// Finite, but too large for the decoder's sums: refused, not a 500.
		{"largest float32 everywhere", withData(2, largest), 422, "image 0: the latent's values are too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post("/v1/decode", ctJSON, tc.body)
			wantStatus(t, r, tc.status)
			if tc.status == 200 {
				return
			}
			kind := kindMalformed
			if tc.status == 422 {
				kind = kindUnprocessable
			}
			if p := r.problem(t); p.Type != ProblemTypeBase+kind || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("problem %+v, want %s with %q", p, kind, tc.detail)
			}
		})
	}
}

// Without fit=true an image must be 28×28, which its header says: it is
// refused before its pixel data is inflated. pixelBomb's pixel data is
// empty, so decoding it would fail (400): the 422 shows it was not decoded.
func TestSizeCheckedFromHeader(t *testing.T) {
	e := newEnv(t)
	var decoded atomic.Int32
	e.s.decodeHook = func(*http.Request, int) { decoded.Add(1) }
	for _, tc := range []struct {
		name, path string
		body       []byte
		status     int
		index      int
		detail     string
	}{
		{"100×100", "/v1/reconstruct", pixelBomb(100, 100), 422, 0, "100×100"},
		{"2000×2000", "/v1/encode", pixelBomb(2000, 2000), 422, 0, "2000×2000"},
		{"28×29 second in a batch", "/v1/encode", multipartOf(t, mustPNG(t, 21), pixelBomb(28, 29)), 422, 1, "28×29"},
		{"too many pixels for one image", "/v1/encode?fit=true", pixelBomb(8000, 8000), 413, 0, "limit is 50000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			decoded.Store(0)
			ctype := ctPNG
			if bytes.HasPrefix(tc.body, []byte("--")) {
				ctype = ctMultipartTest
			}
			r := e.post(tc.path, ctype, tc.body)
			wantStatus(t, r, tc.status)
			p := r.problem(t)
			if p.Index == nil || *p.Index != tc.index || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("problem %+v, want index %d and %q", p, tc.index, tc.detail)
			}
			if n := decoded.Load(); n != 0 {
				t.Errorf("%d images were decoded before the refusal", n)
			}
		})
	}
	// With fit=true the same header is fine, and the missing pixels are found.
	r := e.post("/v1/reconstruct?fit=true", ctPNG, pixelBomb(100, 100))
	wantStatus(t, r, http.StatusBadRequest)
}

// All images of a request together may declare at most MaxRequestPixels,
// which is checked from their headers before any is decoded.
func TestRequestPixelBudget(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxPixels = 100 * 100
		c.MaxRequestPixels = 3 * 100 * 100
	})
	var decoded atomic.Int32
	e.s.decodeHook = func(*http.Request, int) { decoded.Add(1) }
	bomb := pixelBomb(100, 100) // decoding it would fail: 400
	big := scaled(t, mustPixels(t, 22), 3, false)
	for _, tc := range []struct {
		name   string
		imgs   [][]byte
		status int
		index  int
	}{
		{"four at the limit each", [][]byte{bomb, bomb, bomb, bomb}, 413, 3},
		{"ten", [][]byte{bomb, bomb, bomb, bomb, bomb, bomb, bomb, bomb, bomb, bomb}, 413, 3},
		{"within the budget", [][]byte{big, big, big, big}, 200, 0}, // 4 × 84×84 = 28224
	} {
		t.Run(tc.name, func(t *testing.T) {
			decoded.Store(0)
			r := e.postImages("/v1/encode?fit=true", tc.imgs)
			wantStatus(t, r, tc.status)
			if tc.status == 200 {
				return
			}
			p := r.problem(t)
			if p.Type != ProblemTypeBase+kindTooLarge || p.Index == nil || *p.Index != tc.index ||
				!strings.Contains(p.Detail, "more than the 30000 one request may") {
				t.Errorf("problem %+v", p)
			}
			if n := decoded.Load(); n != 0 {
				t.Errorf("%d images were decoded before the refusal", n)
			}
		})
	}
	if _, err := New(Config{MaxPixels: 100, MaxRequestPixels: 99}); err == nil {
		t.Error("a request budget below one image's limit was accepted")
	}
}

// A client that goes away stops the decoding of its images: the request
// context is checked between images, and net/http cancels it as soon as
// the connection drops, since the whole body has been read.
func TestClientGoneStopsDecoding(t *testing.T) {
	e := newEnv(t)
	const n = 8
	reached := make(chan struct{})
	var calls atomic.Int32
	e.s.decodeHook = func(r *http.Request, i int) {
		calls.Add(1)
		if i != 1 {
			return
		}
		close(reached)
		select {
		case <-r.Context().Done():
		case <-time.After(guard):
			t.Error("the request context was not cancelled when the client left")
		}
	}
	imgs := make([][]byte, n)
	for i := range imgs {
		imgs[i] = mustPNG(t, 23)
	}
	body, ctype := multipartBody(t, imageField, imgs...)
	ctx, cancel := context.WithCancel(t.Context())
	req := e.request(http.MethodPost, "/v1/reconstruct", ctype, body, HeaderRequestID, "gone-1").WithContext(ctx)
	done := sendAsync(req)
	select {
	case <-reached:
	case <-time.After(guard):
		t.Fatal("the request never reached its second image")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: %v", err)
	}
	var line map[string]any
	waitFor(t, "the request's log line", func() bool {
		for _, l := range e.logs.lines() {
			if l["request_id"] == "gone-1" {
				line = l
			}
		}
		return line != nil
	})
	if line["status"] != float64(StatusClientClosed) || line["problem"] != kindClientClosed {
		t.Errorf("log line %v, want status 499", line)
	}
	if c := calls.Load(); c != 2 {
		t.Errorf("%d of %d images were started after the client left at image 1, want none", c-2, n-2)
	}
	if !strings.Contains(e.get("/metrics").String(), `aeserve_http_requests_total{code="499",method="POST",route="/v1/reconstruct"} 1`) {
		t.Error("the abandoned request is not counted as 499")
	}
}

// A body that arrives too slowly for ReadTimeout answers 408 with a detail
// free of socket addresses, and closes the connection; a client that hangs
// up mid-body is logged as 499. Neither is "malformed".
func TestBodyReadFailures(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ReadTimeout = 300 * time.Millisecond })
	img := mustPNG(t, 24)
	mp, mpType := multipartBody(t, imageField, img, img)
	latent := latentJSON(t, encodeLatentOK(t))
	for _, tc := range []struct {
		name, path, ctype string
		body              []byte
		hangUp            bool // send part of the body, then close
	}{
		{"slow png", "/v1/reconstruct", ctPNG, img, false},
		{"slow multipart", "/v1/encode", mpType, mp, false},
		{"slow latent", "/v1/decode", ctJSON, latent, false},
		{"hang up in png", "/v1/denoise", ctPNG, img, true},
		{"hang up in multipart", "/v1/reconstruct", mpType, mp, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "body-" + strings.ReplaceAll(tc.name, " ", "-")
			conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: aeserve\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s: %s\r\n\r\n",
				tc.path, tc.ctype, len(tc.body), HeaderRequestID, id)
			conn.Write(tc.body[:len(tc.body)/2])
			if tc.hangUp {
				conn.Close()
			} else {
				// One byte every 50ms, as a slow client would, until answered.
				stop := make(chan struct{})
				defer close(stop)
				go func() {
					for i := len(tc.body) / 2; i < len(tc.body); i++ {
						select {
						case <-stop:
							return
						case <-time.After(50 * time.Millisecond):
						}
						if _, err := conn.Write(tc.body[i : i+1]); err != nil {
							return
						}
					}
				}()
				conn.SetReadDeadline(time.Now().Add(guard))
				req, _ := http.NewRequest(http.MethodPost, e.ts.URL+tc.path, nil)
				resp, err := http.ReadResponse(bufio.NewReader(conn), req)
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				(&validatingTransport{t: t}).check(req, resp, body)
				r := &reply{Response: resp, body: body}
				wantStatus(t, r, http.StatusRequestTimeout)
				p := r.problem(t)
				if p.Type != ProblemTypeBase+kindRequestTimeout {
					t.Errorf("type %s", p.Type)
				}
				for _, leak := range []string{"127.0.0.1", "tcp", "i/o timeout", "->"} {
					if strings.Contains(p.Detail, leak) {
						t.Errorf("detail %q shows %q", p.Detail, leak)
					}
				}
				if !resp.Close {
					t.Error("the connection is not closed after a 408")
				}
			}
			want := map[bool]float64{false: http.StatusRequestTimeout, true: StatusClientClosed}[tc.hangUp]
			var line map[string]any
			waitFor(t, "the request's log line", func() bool {
				for _, l := range e.logs.lines() {
					if l["request_id"] == id {
						line = l
					}
				}
				return line != nil
			})
			if line["status"] != want || line["error"] == nil {
				t.Errorf("log line %v, want status %v with the cause", line, want)
			}
		})
	}
}

// An image request that cannot fit in the model's queue is shed with 503
// before any of its images is decoded: when the body has been read, the
// images queued, and those of requests admitted and still being decoded,
// leave no room for it. pixelBomb images would fail to decode (400), so a
// 503 for them shows that nothing was decoded.
func TestShedBeforeDecoding(t *testing.T) {
	opts := func(c *Config) {
		c.Batch.MaxBatch = 2
		c.Batch.QueueSize = 4
		c.MaxImages = 4
	}
	img := mustPNG(t, 25)
	undecodable := pixelBomb(28, 28)

	t.Run("queued images", func(t *testing.T) {
		g := newGate()
		defer g.release()
		e := newEnv(t, g.option, opts)
		b := e.batcher("conv", model.Full)
		var wg sync.WaitGroup
		var first, third *reply
		wg.Go(func() { first = e.postImages("/v1/reconstruct", [][]byte{img, img, img, img}) })
		// The worker holds two of them, two are queued.
		waitFor(t, "the first request to be queued", func() bool { return b.Stats().QueuedItems == 2 })

		r := e.postImages("/v1/reconstruct", [][]byte{undecodable, undecodable, undecodable})
		wantStatus(t, r, http.StatusServiceUnavailable)
		if p := r.problem(t); p.Type != ProblemTypeBase+kindOverloaded || r.Header.Get("Retry-After") == "" {
			t.Errorf("shed as %+v, Retry-After %q", p, r.Header.Get("Retry-After"))
		}
		// What fits is taken.
		wg.Go(func() { third = e.postImages("/v1/reconstruct", [][]byte{img, img}) })
		waitFor(t, "the fitting request to be queued", func() bool { return b.Stats().QueuedItems == 4 })
		g.release()
		wg.Wait()
		wantStatus(t, first, http.StatusOK)
		wantStatus(t, third, http.StatusOK)
		if !strings.Contains(e.get("/metrics").String(), `aeserve_admission_shed_total{half="full",model="conv"} 1`) {
			t.Error("the early shed is not counted")
		}
	})

	t.Run("images being decoded", func(t *testing.T) {
		e := newEnv(t, opts)
		holding := make(chan struct{})
		resume := make(chan struct{})
		var once sync.Once
		release := func() { once.Do(func() { close(resume) }) }
		defer release() // a failing check must not leave the request held
		e.s.decodeHook = func(r *http.Request, i int) {
			if r.Header.Get(HeaderRequestID) == "big" && i == 0 {
				close(holding)
				<-resume
			}
		}
		var wg sync.WaitGroup
		var big *reply
		wg.Go(func() { big = e.postImages("/v1/encode", [][]byte{img, img, img, img}, HeaderRequestID, "big") })
		<-holding
		// The queue is empty, but its room is promised to the four images
		// being decoded.
		r := e.postImages("/v1/encode", [][]byte{undecodable})
		wantStatus(t, r, http.StatusServiceUnavailable)
		release()
		wg.Wait()
		wantStatus(t, big, http.StatusOK)
		wantStatus(t, e.postImages("/v1/encode", [][]byte{img}), http.StatusOK)
	})
}

// The float32 boundaries of parseLatentData, which encoding/json would
// refuse outright beyond the range.
func TestParseLatentData(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []float32
	}{
		{"[]", []float32{}},
		{" [ 1 , -2.5e1 ] ", []float32{1, -25}},
		{"[3.4028235e38, -3.4028235e38]", []float32{math.MaxFloat32, -math.MaxFloat32}},
		{"[3.4028236e38, -1e39, 1e400]", []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Inf(1))}},
		{"[1e-50, 1.4e-45]", []float32{0, math.SmallestNonzeroFloat32}},
	} {
		got, err := parseLatentData([]byte(tc.in))
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if got, err := parseLatentData([]byte("null")); got != nil || err != nil {
		t.Errorf("null: %v, %v", got, err)
	}
}
