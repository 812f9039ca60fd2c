package oip_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/api/inference"
	"github.com/aeserve/aeserve/api/oip"
)

// flaky answers 503 (with the given Retry-After, none if "") to the first
// fails requests, then a V2 response; it records every request.
type flaky struct {
	fails      int // -1: always 503
	retryAfter string
	plain      bool // a proxy's text/plain 503, not the protocol's error

	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
	times   []time.Time
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.bodies = append(f.bodies, b)
	f.headers = append(f.headers, r.Header.Clone())
	f.times = append(f.times, time.Now())
	n := len(f.bodies)
	f.mu.Unlock()
	if f.fails < 0 || n <= f.fails {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		if f.plain {
			http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":"queue-full: the model's queue is full; retry later"}`+"\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"model_name":"m","model_version":"1","outputs":[{"name":"y","datatype":"FP32","shape":[1,2],"data":[0.5,1]}]}`)
}

func (f *flaky) attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.bodies)
}

func flakyClient(t *testing.T, f *flaky) *oip.Client {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return &oip.Client{BaseURL: srv.URL, HTTP: srv.Client()}
}

var oneInput = &oip.InferRequest{Inputs: []oip.Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, 2}, FP32: []float32{1, 2}}}}

func want503(t *testing.T, err error) *oip.Error {
	t.Helper()
	var e *oip.Error
	if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || e.Code != codes.Unavailable {
		t.Fatalf("error %v, want a 503 *oip.Error", err)
	}
	return e
}

// Two 503s asking for a second each, then success: the client waits as told
// and resends the same body and headers.
func TestRetryHonoursRetryAfter(t *testing.T) {
	f := &flaky{fails: 2, retryAfter: "1"}
	c := flakyClient(t, f)
	res, err := c.Infer(t.Context(), "m", oneInput, oip.InferOptions{BinaryInputs: true})
	if err != nil {
		t.Fatal(err)
	}
	if y := res.Output("y"); y == nil || len(y.FP32) != 2 || f.attempts() != 3 {
		t.Fatalf("%+v after %d attempts, want an answer after 3", res, f.attempts())
	}
	for i := 1; i < len(f.bodies); i++ {
		if !bytes.Equal(f.bodies[i], f.bodies[0]) || f.headers[i].Get(oip.HeaderInferenceHeaderLength) == "" ||
			f.headers[i].Get(oip.HeaderInferenceHeaderLength) != f.headers[0].Get(oip.HeaderInferenceHeaderLength) {
			t.Errorf("attempt %d sent another request", i+1)
		}
		if gap := f.times[i].Sub(f.times[i-1]); gap < 900*time.Millisecond {
			t.Errorf("attempt %d came %v after the previous one, before Retry-After: 1", i+1, gap)
		}
	}
}

func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	for _, tc := range []struct{ max, want int }{{0, api.DefaultMaxAttempts}, {1, 1}, {2, 2}} {
		f := &flaky{fails: -1} // no Retry-After: a short backoff
		c := flakyClient(t, f)
		c.MaxAttempts = tc.max
		_, err := c.Infer(t.Context(), "m", oneInput, oip.InferOptions{})
		e := want503(t, err)
		if f.attempts() != tc.want {
			t.Errorf("MaxAttempts %d: %d attempts, want %d", tc.max, f.attempts(), tc.want)
		}
		if e.Kind() != "queue-full" || e.RetryAfter != 0 ||
			err.Error() != "oip: 503 Service Unavailable: queue-full: the model's queue is full; retry later" {
			t.Errorf("error %q, %+v", err, e)
		}
	}
}

// A load balancer's plain-text 503 is retried like the server's own, and
// its text is the message.
func TestRetryPlainText503(t *testing.T) {
	f := &flaky{fails: -1, plain: true}
	c := flakyClient(t, f)
	c.MaxAttempts = 2
	_, err := c.ServerReady(t.Context())
	if e := want503(t, err); e.Message != "no healthy upstream" || e.Kind() != "" || f.attempts() != 2 {
		t.Errorf("%+v after %d attempts", e, f.attempts())
	}
}

// Cancelling the context while the client waits to retry ends the call at
// once, with an error that is both the context's and the server's.
func TestRetryStopsWhenContextEnds(t *testing.T) {
	f := &flaky{fails: -1, retryAfter: "4"}
	c := flakyClient(t, f)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Infer(ctx, "m", oneInput, oip.InferOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	if e := want503(t, err); e.RetryAfter != 4*time.Second {
		t.Errorf("RetryAfter %v, want 4s", e.RetryAfter)
	}
	if took := time.Since(start); took > 3*time.Second || f.attempts() != 1 {
		t.Errorf("%d attempts in %v", f.attempts(), took)
	}
}

// The client does not start a wait that cannot end in time.
func TestRetryDoesNotWaitInVain(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter string
		maxWait    time.Duration
		deadline   time.Duration
	}{
		{"longer than the default MaxRetryWait", "60", 0, 0},
		{"longer than MaxRetryWait", "2", time.Second, 0},
		{"past the deadline", "3", 10 * time.Second, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &flaky{fails: 1, retryAfter: tc.retryAfter}
			c := flakyClient(t, f)
			c.MaxRetryWait = tc.maxWait
			ctx := t.Context()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			start := time.Now()
			_, err := c.ModelMetadata(ctx, "m", "")
			want503(t, err)
			if took := time.Since(start); took > 800*time.Millisecond || f.attempts() != 1 {
				t.Errorf("%d attempts in %v, want 1 and no wait", f.attempts(), took)
			}
		})
	}
}

// Only 503 is retried.
func TestRetryOnly503(t *testing.T) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":"slow down"}`)
	}))
	defer srv.Close()
	c := &oip.Client{BaseURL: srv.URL}
	_, err := c.Infer(t.Context(), "m", oneInput, oip.InferOptions{})
	var e *oip.Error
	if !errors.As(err, &e) || e.Status != http.StatusTooManyRequests || e.Code != codes.ResourceExhausted ||
		e.RetryAfter != time.Second || e.Message != "slow down" {
		t.Errorf("429: %v (%+v)", err, e)
	}
	if n != 1 {
		t.Errorf("429 sent %d times, want 1", n)
	}
}

// flakyGRPC answers Unavailable to the first fails calls, then a response.
type flakyGRPC struct {
	inference.UnimplementedGRPCInferenceServiceServer
	fails int // -1: always
	code  codes.Code
	block bool // answer only when the call's context ends

	mu   sync.Mutex
	reqs []*inference.ModelInferRequest
}

func (f *flakyGRPC) ModelInfer(ctx context.Context, req *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	n := len(f.reqs)
	f.mu.Unlock()
	if f.block {
		<-ctx.Done()
	}
	if f.fails < 0 || n <= f.fails {
		return nil, grpcstatus.Error(f.code, "queue-full: the model's queue is full; retry later")
	}
	return &inference.ModelInferResponse{ModelName: req.ModelName, ModelVersion: "1", Id: req.Id,
		Outputs: []*inference.ModelInferResponse_InferOutputTensor{{Name: "y", Datatype: "INT64", Shape: []int64{2},
			Contents: &inference.InferTensorContents{Int64Contents: []int64{7, 3}}}}}, nil
}

func (f *flakyGRPC) attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func flakyGRPCClient(t *testing.T, f *flakyGRPC) *oip.GRPCClient {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	inference.RegisterGRPCInferenceServiceServer(gs, f)
	go gs.Serve(ln)
	conn, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
	})
	return oip.NewGRPCClient(conn)
}

func TestGRPCRetry(t *testing.T) {
	f := &flakyGRPC{fails: 2, code: codes.Unavailable}
	g := flakyGRPCClient(t, f)
	res, err := g.Infer(t.Context(), "m", oneInput, oip.InferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if y := res.Output("y"); y == nil || len(y.INT64) != 2 || y.INT64[0] != 7 || f.attempts() != 3 {
		t.Fatalf("%+v after %d attempts", res, f.attempts())
	}

	f = &flakyGRPC{fails: -1, code: codes.Unavailable}
	g = flakyGRPCClient(t, f)
	g.MaxAttempts = 2
	_, err = g.Infer(t.Context(), "m", oneInput, oip.InferOptions{})
	if e := want503(t, err); f.attempts() != 2 || e.Kind() != "queue-full" ||
		err.Error() != "oip: Unavailable: queue-full: the model's queue is full; retry later" {
		t.Errorf("%q after %d attempts", err, f.attempts())
	}

	// Other codes are final.
	f = &flakyGRPC{fails: -1, code: codes.ResourceExhausted}
	g = flakyGRPCClient(t, f)
	_, err = g.Infer(t.Context(), "m", oneInput, oip.InferOptions{})
	var e *oip.Error
	if !errors.As(err, &e) || e.Code != codes.ResourceExhausted || e.Status != http.StatusTooManyRequests || f.attempts() != 1 {
		t.Errorf("ResourceExhausted: %v after %d attempts", err, f.attempts())
	}
}

// A context that ends during a gRPC call, or while the client waits to
// retry, is in the error, for errors.Is.
func TestGRPCContextEnds(t *testing.T) {
	f := &flakyGRPC{fails: -1, code: codes.Unavailable, block: true}
	g := flakyGRPCClient(t, f)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := g.Infer(ctx, "m", oneInput, oip.InferOptions{})
	if !errors.Is(err, context.DeadlineExceeded) || f.attempts() != 1 {
		t.Errorf("error %v after %d attempts, want context.DeadlineExceeded", err, f.attempts())
	}

	f = &flakyGRPC{fails: -1, code: codes.Unavailable}
	g = flakyGRPCClient(t, f)
	g.MaxAttempts, g.MaxRetryWait = 100, 10*time.Second
	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(300*time.Millisecond, cancel)
	_, err = g.Infer(ctx, "m", oneInput, oip.InferOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	want503(t, err)
}
