package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/model"
)

// metricValue reads one sample from /metrics text.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", series)
	return 0
}

// Concurrent requests for one model half share forward passes. The first
// pass is held until every other request is queued, so the test does not
// depend on how fast this machine is: what it checks is that queued requests
// are then gathered into batches, as the metrics report them.
func TestBatching(t *testing.T) {
	g := newGate()
	e := newEnv(t, g.option)
	const n = 64
	img := mustPNG(t, 13)
	want := pngPixels(t, mustReconstructAlone(t, img))

	var wg sync.WaitGroup
	replies := make([]*reply, n)
	for i := range n {
		wg.Go(func() { replies[i] = e.post("/v1/reconstruct", ctPNG, img) })
	}
	b := e.batcher("conv", model.Full)
	waitFor(t, "every request to be admitted", func() bool { return b.Stats().Pending == n })
	g.release()
	wg.Wait()
	for i, r := range replies {
		wantStatus(t, r, http.StatusOK)
		if d := maxDiff(pngPixels(t, r.body), want); d > 1 {
			t.Errorf("request %d: differs from the image's own answer by %d grey levels", i, d)
		}
	}

	text := e.get("/metrics").String()
	const labels = `{half="full",model="conv"`
	execs := metricValue(t, text, `aeserve_batch_executions_total`+labels+`}`)
	reqs := metricValue(t, text, `aeserve_batch_requests_total`+labels+`}`)
	count := metricValue(t, text, `aeserve_batch_size_count`+labels+`}`)
	ones := metricValue(t, text, `aeserve_batch_size_bucket`+labels+`,le="1"}`)
	if reqs != n || count != execs {
		t.Errorf("requests %v, executions %v, histogram count %v", reqs, execs, count)
	}
	if count-ones < 1 || execs >= reqs {
		t.Errorf("no forward pass had more than one image: %v passes for %v requests, %v of size 1", execs, reqs, ones)
	}
	t.Logf("%d requests in %v forward passes", n, execs)
	if got := metricValue(t, text, `aeserve_http_images_total{model="conv",route="/v1/reconstruct"}`); got != n {
		t.Errorf("images_total %v, want %d", got, n)
	}
}

func mustReconstructAlone(t *testing.T, img []byte) []byte {
	t.Helper()
	e := newEnv(t)
	r := e.post("/v1/reconstruct", ctPNG, img)
	wantStatus(t, r, http.StatusOK)
	return r.body
}

// A full queue sheds at once with 503 and Retry-After; the requests already
// queued are still answered. Image routes shed before decoding anything
// (Server.reserve); /v1/decode, whose body is the latent itself, when the
// batcher refuses it (batch.ErrQueueFull), which stays the final word.
func TestQueueFull(t *testing.T) {
	img := mustPNG(t, 14)
	latent := latentBinary(t, encodeLatentOK(t))
	for _, tc := range []struct {
		name   string
		half   model.Half
		send   func(e *env) *reply
		metric string
	}{
		{"encode", model.Encoder, func(e *env) *reply { return e.post("/v1/encode", ctPNG, img) },
			`aeserve_admission_shed_total{half="encoder",model="conv"} 1`},
		{"decode", model.Decoder, func(e *env) *reply { return e.post("/v1/decode", ctBinary, latent) },
			`aeserve_batch_shed_total{half="decoder",model="conv",reason="queue_full"} 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			e := newEnv(t, g.option, func(c *Config) {
				c.Batch.MaxBatch = 1
				c.Batch.QueueSize = 2
				c.MaxImages = 2
			})
			b := e.batcher("conv", tc.half)
			var wg sync.WaitGroup
			held := make([]*reply, 3)
			for i := range held {
				wg.Go(func() { held[i] = tc.send(e) })
				// One in the worker, then two queued: admitted one at a time so the
				// count is exact.
				waitFor(t, "request to be admitted", func() bool { return b.Stats().Pending == i+1 })
			}
			r := tc.send(e)
			wantStatus(t, r, http.StatusServiceUnavailable)
			if p := r.problem(t); p.Type != ProblemTypeBase+kindOverloaded {
				t.Errorf("type %s", p.Type)
			}
			if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
			}
			g.release()
			wg.Wait()
			for _, r := range held {
				wantStatus(t, r, http.StatusOK)
			}
			if !strings.Contains(e.get("/metrics").String(), tc.metric) {
				t.Errorf("the shed request is not in the metrics as %s", tc.metric)
			}
		})
	}
}

// The request deadline covers queueing: past it the answer is 503, and the
// request context is what the batcher watches.
func TestRequestTimeout(t *testing.T) {
	g := newGate()
	defer g.release()
	e := newEnv(t, g.option, func(c *Config) { c.RequestTimeout = 300 * time.Millisecond })
	r := e.post("/v1/decode", ctJSON, latentJSON(t, encodeLatentOK(t)))
	wantStatus(t, r, http.StatusServiceUnavailable)
	if p := r.problem(t); p.Type != ProblemTypeBase+kindTimeout || r.Header.Get("Retry-After") == "" {
		t.Errorf("timeout answered %+v, Retry-After %q", p, r.Header.Get("Retry-After"))
	}
}

func encodeLatentOK(t *testing.T) api.Latent {
	t.Helper()
	return encodeLatent(t, newEnv(t), "conv", 15)
}

// A client that goes away is dropped from the queue: its context reaches
// the batcher.
func TestClientGone(t *testing.T) {
	g := newGate()
	e := newEnv(t, g.option)
	img := mustPNG(t, 16)
	b := e.batcher("conv", model.Full)
	var wg sync.WaitGroup
	wg.Go(func() { e.post("/v1/reconstruct", ctPNG, img) }) // holds the worker
	// Busy, not merely queued: otherwise the queued request seen next could
	// be this one, and the cancel could beat the second to the server.
	waitFor(t, "the first request to hold the worker", func() bool {
		s := b.Stats()
		return s.BusyWorkers == 1 && s.QueuedRequests == 0
	})

	ctx, cancel := context.WithCancel(t.Context())
	req := e.request(http.MethodPost, "/v1/reconstruct", ctPNG, img).WithContext(ctx)
	done := sendAsync(req)
	waitFor(t, "the second request to be queued", func() bool { return b.Stats().QueuedRequests == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: %v", err)
	}
	waitFor(t, "the abandoned request to leave the queue", func() bool { return b.Stats().QueuedRequests == 0 })
	g.release()
	wg.Wait()
	var metrics string
	defer func() {
		if t.Failed() {
			t.Logf("last /metrics:\n%s", metrics)
		}
	}()
	waitFor(t, "the shed to be counted", func() bool {
		metrics = e.get("/metrics").String()
		return strings.Contains(metrics, `aeserve_batch_shed_total{half="full",model="conv",reason="canceled"} 1`)
	})
}

// On shutdown /readyz turns 503 at once, requests in flight and queued are
// all answered, and Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	g := newGate()
	e := newEnv(t, g.option, func(c *Config) {
		// The window in which the drained server still accepts connections,
		// so that /readyz can be seen answering 503; nothing waits it out.
		c.DrainDelay = 2 * time.Second
	})
	e.ts.Close() // Serve runs its own listener below

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	e.ts.URL = base
	ctx, stop := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- e.s.Serve(ctx, ln) }()
	wantStatus(t, e.get("/readyz"), http.StatusOK)

	const n = 8
	img := mustPNG(t, 17)
	var wg sync.WaitGroup
	replies := make([]*reply, n)
	for i := range n {
		wg.Go(func() {
			body, ctype := multipartBody(t, imageField, img)
			replies[i] = e.post("/v1/reconstruct", ctype, body)
		})
	}
	b := e.batcher("conv", model.Full)
	waitFor(t, "the requests to be in flight", func() bool { return b.Stats().Pending == n })

	stop()
	waitFor(t, "/readyz to turn 503", func() bool {
		r, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatalf("the listener closed before /readyz answered 503: %v", err)
		}
		r.Body.Close()
		return r.StatusCode == http.StatusServiceUnavailable
	})
	r := e.get("/readyz")
	wantStatus(t, r, http.StatusServiceUnavailable)
	if p := r.problem(t); p.Type != ProblemTypeBase+kindShuttingDown {
		t.Errorf("draining readyz: %+v", p)
	}
	// Only once the listener is closed, i.e. http.Server.Shutdown is waiting
	// for them, may the held requests finish.
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	g.release()
	wg.Wait()
	for i, r := range replies {
		if r == nil || r.StatusCode != http.StatusOK {
			t.Fatalf("in-flight request %d was not answered 200: %+v", i, r)
		}
	}
	waitServed(t, served)
	if !b.Stats().Closed {
		t.Error("batchers still open after Serve returned")
	}
	var sawShutdown bool
	for _, l := range e.logs.lines() {
		sawShutdown = sawShutdown || l["message"] == "shut down"
	}
	if !sawShutdown {
		t.Error("no shutdown log line")
	}
}

// Keep-alive clients sending continuously through a drain lose nothing.
// Every answer from the start of the drain carries Connection: close, so
// each client opens a new connection for its next request instead of
// reusing one the server is about to close; only when the drain delay ends
// does the listener close. So a request fails only if it was never sent on
// an established connection: its connection was refused or reset before
// the server accepted it, which the server's log confirms.
//
// The delay is ended by the test (drainWait) once every client has been
// answered with Connection: close, which is what a delay of a few seconds
// achieves in production (see the README): clients that keep a connection
// idle for the whole delay can still race its closing, as with any
// keep-alive connection a server closes.
func TestDrainKeepAliveClients(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DrainDelay = time.Hour }) // ended by drainWait
	e.ts.Close()                                                 // Serve runs its own listener below
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.ts.URL = "http://" + ln.Addr().String()

	const clients = 8
	var (
		drainSeen atomic.Bool // set once the server drains: later requests must be told to close
		delayOver atomic.Bool
		told      [clients]atomic.Bool  // client answered with Connection: close to a request sent while draining
		answered  [clients]atomic.Int32 // answers per client
	)
	allTold := func() bool {
		for i := range told {
			if !told[i].Load() {
				return false
			}
		}
		return true
	}
	e.s.drainWait = func(time.Duration) {
		deadline := time.Now().Add(guard)
		for !allTold() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if !allTold() {
			t.Error("not every keep-alive client was told to close its connection during the drain delay")
		}
		delayOver.Store(true)
	}
	ctx, stop := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- e.s.Serve(ctx, ln) }()
	wantStatus(t, e.get("/readyz"), http.StatusOK)

	type outcome struct {
		id                   string
		reused, sentDraining bool
		status               int
		closeConn            bool
		err                  error
		afterDelay           bool
	}
	results := make([][]outcome, clients)
	img := mustPNG(t, 26)
	var wg sync.WaitGroup
	for c := range clients {
		tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: &validatingTransport{t: t, next: tr}}
		wg.Go(func() {
			for i := 0; ; i++ {
				o := outcome{id: fmt.Sprintf("keepalive-%d-%d", c, i), sentDraining: drainSeen.Load()}
				req := e.request(http.MethodPost, "/v1/reconstruct", ctPNG, img, HeaderRequestID, o.id)
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
					GotConn: func(info httptrace.GotConnInfo) { o.reused = info.Reused },
				}))
				resp, err := client.Do(req)
				o.err = err
				if err == nil {
					resp.Body.Close()
					o.status, o.closeConn = resp.StatusCode, resp.Close
					answered[c].Add(1)
					if o.sentDraining && o.closeConn {
						told[c].Store(true)
					}
				} else {
					o.afterDelay = delayOver.Load()
				}
				results[c] = append(results[c], o)
				if err != nil || i > 100_000 {
					return // the listener has closed (or something is badly wrong)
				}
			}
		})
	}
	// Every client is on a warm keep-alive connection before the drain.
	waitFor(t, "every client to be answered twice", func() bool {
		for i := range answered {
			if answered[i].Load() < 2 {
				return false
			}
		}
		return true
	})
	stop()
	waitFor(t, "the drain to start", e.s.closing.Load)
	drainSeen.Store(true)
	wg.Wait()
	waitServed(t, served)

	accepted := map[string]bool{}
	for _, l := range e.logs.lines() {
		if id, ok := l["request_id"].(string); ok && l["message"] == "request" {
			accepted[id] = true
		}
	}
	var total, reused, failed int
	for c := range results {
		for _, o := range results[c] {
			total++
			if o.reused {
				reused++
			}
			switch {
			case o.err != nil:
				failed++
				if o.reused {
					t.Errorf("%s: failed on a reused keep-alive connection: %v", o.id, o.err)
				}
				if accepted[o.id] {
					t.Errorf("%s: accepted by the server, but the client got %v", o.id, o.err)
				}
				if !o.afterDelay {
					t.Errorf("%s: failed before the listener closed: %v", o.id, o.err)
				}
			case o.status != http.StatusOK:
				t.Errorf("%s: status %d", o.id, o.status)
			case o.sentDraining && !o.closeConn:
				t.Errorf("%s: answered during the drain without Connection: close", o.id)
			}
		}
	}
	if reused == 0 {
		t.Error("no request reused a connection: keep-alive was not exercised")
	}
	if failed != clients {
		t.Errorf("%d requests failed, want one per client (its first after the listener closed)", failed)
	}
	t.Logf("%d requests, %d on reused connections, %d refused after the listener closed", total, reused, failed)
}
