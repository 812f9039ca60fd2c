package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/aeserve/aeserve/api/inference"
	"github.com/aeserve/aeserve/internal/model"
)

// TestOverload drives the server on loopback well past what it can do, on
// /v1, /v2 and gRPC at once, for a bounded time and count. It must shed
// (503 with Retry-After on /v1 and /v2, the latter in the protocol's
// {"error"} form; UNAVAILABLE on gRPC) rather than queue without bound,
// answer everything it accepted, keep its heap bounded, and serve normally
// once the load stops, with its queue empty. The counts, the accepted
// requests' p99 and the queue-wait bound are logged, not asserted: timings
// on a shared 2-core machine prove nothing.
func TestOverload(t *testing.T) {
	if testing.Short() {
		t.Skip("overload test skipped in -short mode")
	}
	const (
		queueSize = 8
		maxBatch  = 4
		clients   = 12 // per protocol
		maxSent   = 6000
		duration  = 2 * time.Second
	)
	g := newGRPCEnv(t, func(c *Config) {
		c.Batch.QueueSize = queueSize
		c.Batch.MaxBatch = maxBatch
		c.MaxImages = maxBatch
	})
	px, img := mnistDigit(t, 41)
	v2Body, err := json.Marshal(map[string]any{"inputs": []any{map[string]any{
		"name": "images", "datatype": "FP32", "shape": []int{1, model.ImageLen}, "data": px}}})
	if err != nil {
		t.Fatal(err)
	}
	grpcReq := &inference.ModelInferRequest{ModelName: "conv", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "images", Datatype: "FP32", Shape: []int64{1, model.ImageLen}, Contents: &inference.InferTensorContents{Fp32Contents: px}}}}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 3 * clients}}
	defer client.CloseIdleConnections()

	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	// Warm up every path once, so that the baseline holds the graphs.
	wantStatus(t, g.post("/v1/reconstruct", ctPNG, img), http.StatusOK)
	wantStatus(t, g.post("/v2/models/conv/infer", ctJSON, v2Body), http.StatusOK)
	if _, err := g.client.ModelInfer(t.Context(), grpcReq); err != nil {
		t.Fatal(err)
	}
	base := heap()

	type result struct {
		proto   string
		ok      bool
		latency time.Duration
	}
	var (
		mu      sync.Mutex
		results []result
		sent    atomic.Int64
		peak    atomic.Uint64
	)
	record := func(r result) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	}
	post := func(path, ctype string, body []byte) (bool, string) {
		resp, err := client.Post(g.ts.URL+path, ctype, bytes.NewReader(body))
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		switch resp.StatusCode {
		case http.StatusOK:
			return true, ""
		case http.StatusServiceUnavailable:
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
				return false, "503 without Retry-After"
			}
			if strings.HasPrefix(path, "/v2/") && !strings.HasPrefix(b.String(), `{"error":"overloaded: `) {
				return false, "V2 503 body " + b.String()
			}
			if !strings.HasPrefix(path, "/v2/") && !strings.Contains(b.String(), kindOverloaded) {
				return false, "503 body " + b.String()
			}
			return false, "shed"
		}
		return false, "status " + resp.Status + ": " + b.String()
	}
	ctx, stop := context.WithTimeout(t.Context(), duration)
	defer stop()
	var wg sync.WaitGroup
	var bad sync.Map // first unexpected answer of each kind
	for range clients {
		for _, proto := range []string{"/v1", "/v2", "gRPC"} {
			wg.Go(func() {
				for ctx.Err() == nil && sent.Add(1) <= maxSent {
					start := time.Now()
					var ok bool
					var why string
					switch proto {
					case "/v1":
						ok, why = post("/v1/reconstruct", ctPNG, img)
					case "/v2":
						ok, why = post("/v2/models/conv/infer", ctJSON, v2Body)
					case "gRPC":
						_, err := g.client.ModelInfer(context.Background(), grpcReq)
						switch c := grpcstatus.Code(err); {
						case err == nil:
							ok = true
						case c == codes.Unavailable && strings.HasPrefix(grpcstatus.Convert(err).Message(), "overloaded: "):
							why = "shed"
						default:
							why = err.Error()
						}
					}
					if !ok && why != "shed" {
						bad.LoadOrStore(proto+": "+why, true)
						continue
					}
					record(result{proto, ok, time.Since(start)})
				}
			})
		}
	}
	// Sample the heap while the load runs (without forcing a collection).
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for ctx.Err() == nil {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	start := time.Now()
	wg.Wait()
	elapsed := time.Since(start)
	<-sampled
	bad.Range(func(k, _ any) bool {
		t.Errorf("unexpected answer under overload: %s", k)
		return true
	})

	byProto := map[string][2]int{} // accepted, shed
	var accepted []time.Duration
	for _, r := range results {
		c := byProto[r.proto]
		if r.ok {
			c[0]++
			accepted = append(accepted, r.latency)
		} else {
			c[1]++
		}
		byProto[r.proto] = c
	}
	shed := 0
	for proto, c := range byProto {
		shed += c[1]
		if c[0] == 0 {
			t.Errorf("%s: nothing accepted under overload", proto)
		}
	}
	if shed == 0 {
		t.Errorf("nothing shed with %d clients against a queue of %d: not overloaded", 3*clients, queueSize)
	}
	// Bounded: a few MiB per queued request at most would be far beyond
	// what queueSize images and the clients' buffers take.
	const slack = 256 << 20
	if p := peak.Load(); p > base+slack {
		t.Errorf("heap peaked at %d MiB under load, from %d MiB idle", p>>20, base>>20)
	}

	// Recovery, with no restart: the queue empties and every protocol is
	// served.
	b := g.batcher("conv", model.Full)
	waitFor(t, "the queue to empty", func() bool { return b.Stats().QueuedItems == 0 })
	wantStatus(t, g.post("/v1/reconstruct", ctPNG, img), http.StatusOK)
	wantStatus(t, g.post("/v2/models/conv/infer", ctJSON, v2Body), http.StatusOK)
	if _, err := g.client.ModelInfer(t.Context(), grpcReq); err != nil {
		t.Errorf("gRPC after the load: %v", err)
	}
	after := heap()

	slices.Sort(accepted)
	p99 := time.Duration(0)
	if len(accepted) > 0 {
		p99 = accepted[(len(accepted)*99)/100]
	}
	throughput := float64(len(accepted)) / elapsed.Seconds()
	maxWait := DefaultMaxWait
	bound := maxWait + time.Duration(float64(queueSize)/throughput*float64(time.Second))
	t.Logf("overload: %d clients (%d per protocol) for %v, queue %d, max batch %d", 3*clients, clients, elapsed.Round(time.Millisecond), queueSize, maxBatch)
	for _, proto := range []string{"/v1", "/v2", "gRPC"} {
		t.Logf("  %-5s accepted %5d  shed %5d", proto, byProto[proto][0], byProto[proto][1])
	}
	t.Logf("  accepted p99 %v; throughput %.0f/s; queue-wait bound max wait + queue/throughput = %v",
		p99.Round(time.Microsecond), throughput, bound.Round(time.Microsecond))
	t.Logf("  accepted requests' queue wait p99 ≤ %v (the histogram's bucket bound)", queueWaitP99(t, g.s))
	t.Logf("  heap: idle %d MiB, peak %d MiB, after %d MiB", base>>20, peak.Load()>>20, after>>20)
}

// queueWaitP99 is the upper bound of the bucket of conv's full-model queue
// wait histogram holding its 99th percentile.
func queueWaitP99(t *testing.T, s *Server) time.Duration {
	t.Helper()
	mfs, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "aeserve_batch_queue_wait_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["model"] != "conv" || labels["half"] != string(model.Full) {
				continue
			}
			h := m.GetHistogram()
			for _, b := range h.GetBucket() {
				if float64(b.GetCumulativeCount()) >= 0.99*float64(h.GetSampleCount()) {
					return time.Duration(b.GetUpperBound() * float64(time.Second))
				}
			}
			return -1 // beyond the last finite bucket
		}
	}
	t.Error("no queue wait histogram for conv")
	return 0
}
