package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/aeserve/aeserve/api/inference"
	"github.com/aeserve/aeserve/internal/model"
)

// Clients that go away mid-upload and mid-queue, on each protocol, leave no
// goroutine behind once the server has answered what it still holds: not
// the handler, the connection, the batcher's waiter nor the client's own.
// TestMain checks the package as a whole; this checks these paths alone,
// against the goroutines of a server already serving.
func TestDisconnectsLeakNothing(t *testing.T) {
	gate := newGate()
	g := newGRPCEnv(t, gate.option)
	px, img := mnistDigit(t, 31)
	v2Body, err := json.Marshal(map[string]any{"inputs": []any{map[string]any{
		"name": "images", "datatype": "FP32", "shape": []int{1, model.ImageLen}, "data": px}}})
	if err != nil {
		t.Fatal(err)
	}
	grpcReq := &inference.ModelInferRequest{ModelName: "conv", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "images", Datatype: "FP32", Shape: []int64{1, model.ImageLen}, Contents: &inference.InferTensorContents{Fp32Contents: px}}}}
	// The gRPC connection's goroutines are the client's for its life, not
	// any request's: open it before taking stock.
	if _, err := g.client.ServerLive(t.Context(), &inference.ServerLiveRequest{}); err != nil {
		t.Fatal(err)
	}
	// Each request on a connection of its own, so that none is left idle.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	before := goleak.IgnoreCurrent()

	// Mid-upload: half the declared body, then the connection closes.
	for i, u := range []struct {
		path, ctype string
		body        []byte
	}{
		{"/v1/reconstruct", ctPNG, img},
		{"/v2/models/conv/infer", ctJSON, v2Body},
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(g.ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: aeserve\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s: upload-%d\r\n\r\n",
			u.path, u.ctype, len(u.body), HeaderRequestID, i)
		conn.Write(u.body[:len(u.body)/2])
		conn.Close()
	}
	waitFor(t, "both uploads to be logged as 499", func() bool {
		n := 0
		for _, l := range g.logs.lines() {
			if id, _ := l["request_id"].(string); strings.HasPrefix(id, "upload-") && l["status"] == float64(StatusClientClosed) {
				n++
			}
		}
		return n == 2
	})

	// Mid-queue: one request holds the worker; each protocol's request
	// queues behind it, and its client gives up.
	b := g.batcher("conv", model.Full)
	var wg sync.WaitGroup
	wg.Go(func() {
		req := g.request(http.MethodPost, "/v1/reconstruct", ctPNG, img)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	waitFor(t, "the first request to hold the worker", func() bool {
		s := b.Stats()
		return s.BusyWorkers == 1 && s.QueuedRequests == 0
	})
	for _, c := range []struct {
		name string
		send func(ctx context.Context) error
	}{
		{"/v1", func(ctx context.Context) error {
			resp, err := client.Do(g.request(http.MethodPost, "/v1/reconstruct", ctPNG, img).WithContext(ctx))
			if err == nil {
				resp.Body.Close()
			}
			return err
		}},
		{"/v2", func(ctx context.Context) error {
			resp, err := client.Do(g.request(http.MethodPost, "/v2/models/conv/infer", ctJSON, v2Body).WithContext(ctx))
			if err == nil {
				resp.Body.Close()
			}
			return err
		}},
		{"gRPC", func(ctx context.Context) error {
			_, err := g.client.ModelInfer(ctx, grpcReq)
			if grpcstatus.Code(err) == codes.Canceled {
				return context.Canceled
			}
			return err
		}},
	} {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.send(ctx) }()
		waitFor(t, c.name+" request to be queued", func() bool { return b.Stats().QueuedRequests == 1 })
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("%s: cancelled request: %v", c.name, err)
		}
		waitFor(t, c.name+" request to leave the queue", func() bool { return b.Stats().QueuedRequests == 0 })
	}
	gate.release()
	wg.Wait()
	waitFor(t, "the three to be counted as shed", func() bool {
		resp, err := client.Get(g.ts.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return err == nil && strings.Contains(string(b), `aeserve_batch_shed_total{half="full",model="conv",reason="canceled"} 3`)
	})
	// goleak retries for a while, as connections take a moment to wind down.
	goleak.VerifyNone(t, append(kernelPool, before)...)
}
