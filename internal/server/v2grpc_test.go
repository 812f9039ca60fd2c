package server

import (
	"context"
	"encoding/binary"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/aeserve/aeserve/api/inference"
	"github.com/aeserve/aeserve/internal/model"
)

// grpcEnv serves env e's server on a gRPC listener of its own (with the API
// on another) and dials it with a real gRPC client.
type grpcEnv struct {
	*env
	conn   *grpc.ClientConn
	client inference.GRPCInferenceServiceClient
	health healthpb.HealthClient
	stop   context.CancelFunc
	served chan error
}

func newGRPCEnv(t *testing.T, opts ...envOption) *grpcEnv {
	t.Helper()
	e := newEnv(t, opts...)
	e.ts.Close()
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.ts.URL = "http://" + apiLn.Addr().String()
	ctx, stop := context.WithCancel(t.Context())
	g := &grpcEnv{env: e, stop: stop, served: make(chan error, 1)}
	go func() { g.served <- e.s.ServeAll(ctx, Listeners{API: apiLn, GRPC: grpcLn}) }()
	conn, err := grpc.NewClient("passthrough:///"+grpcLn.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		stop()
		<-g.served
	})
	g.conn, g.client, g.health = conn, inference.NewGRPCInferenceServiceClient(conn), healthpb.NewHealthClient(conn)
	return g
}

func wantCode(t *testing.T, err error, code codes.Code, detail string) {
	t.Helper()
	st, _ := grpcstatus.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), detail) {
		t.Errorf("status %v %q, want %v with %q", st.Code(), st.Message(), code, detail)
	}
}

func fp32Bytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// The gRPC service answers as REST does, through the same batchers.
func TestGRPCInference(t *testing.T) {
	g := newGRPCEnv(t)
	ctx := t.Context()
	if r, err := g.client.ServerLive(ctx, &inference.ServerLiveRequest{}); err != nil || !r.Live {
		t.Fatalf("ServerLive %v %v", r, err)
	}
	if r, err := g.client.ServerReady(ctx, &inference.ServerReadyRequest{}); err != nil || !r.Ready {
		t.Fatalf("ServerReady %v %v", r, err)
	}
	if r, err := g.health.Check(ctx, &healthpb.HealthCheckRequest{Service: "inference.GRPCInferenceService"}); err != nil ||
		r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health %v %v", r, err)
	}
	sm, err := g.client.ServerMetadata(ctx, &inference.ServerMetadataRequest{})
	if err != nil || sm.Name != "aeserve" || len(sm.Extensions) == 0 {
		t.Fatalf("ServerMetadata %v %v", sm, err)
	}
	mm, err := g.client.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: "conv.encoder"})
	if err != nil || mm.Versions[0] != "82231c4ca0887f78" || mm.Inputs[0].Name != "images" || mm.Outputs[0].Name != "latent" {
		t.Fatalf("ModelMetadata %v %v", mm, err)
	}
	if r, err := g.client.ModelReady(ctx, &inference.ModelReadyRequest{Name: "classifier"}); err != nil || !r.Ready {
		t.Fatalf("ModelReady %v %v", r, err)
	}

	// Typed contents in, typed out: the latent /v1/encode makes.
	px, _ := mnistDigit(t, 61)
	var md metadata.MD
	res, err := g.client.ModelInfer(ctx, &inference.ModelInferRequest{ModelName: "conv.encoder", Id: "g1",
		Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "images", Datatype: "FP32", Shape: []int64{1, 1, 28, 28},
			Contents: &inference.InferTensorContents{Fp32Contents: px}}}}, grpc.Header(&md))
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Get("x-request-id")) != 1 {
		t.Errorf("no x-request-id header: %v", md)
	}
	latent := encodeLatent(t, g.env, "conv", 61).Data
	out := res.Outputs[0]
	if res.Id != "g1" || res.ModelVersion != "82231c4ca0887f78" || out.Name != "latent" ||
		out.Parameters["fingerprint"].GetStringParam() != "82231c4ca0887f78" || len(out.Contents.GetFp32Contents()) != len(latent) {
		t.Fatalf("ModelInfer %v", res)
	}
	for i, v := range latent {
		if out.Contents.Fp32Contents[i] != v {
			t.Fatalf("latent value %d: %v over gRPC, %v over /v1", i, out.Contents.Fp32Contents[i], v)
		}
	}

	// Raw in, raw out, for the decoder, with the fingerprint pinned.
	res, err = g.client.ModelInfer(ctx, &inference.ModelInferRequest{ModelName: "conv.decoder", ModelVersion: "82231c4ca0887f78",
		Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "latent", Datatype: "FP32", Shape: []int64{1, 32, 7, 7},
			Parameters: map[string]*inference.InferParameter{"fingerprint": {ParameterChoice: &inference.InferParameter_StringParam{StringParam: "82231c4ca0887f78"}}}}},
		RawInputContents: [][]byte{fp32Bytes(latent)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.RawOutputContents) != 1 || len(res.RawOutputContents[0]) != 4*model.ImageLen || res.Outputs[0].Contents != nil {
		t.Fatalf("raw decode: %d raw outputs", len(res.RawOutputContents))
	}

	// The classifier's two outputs, typed: FP32 probabilities and INT64 digit.
	res, err = g.client.ModelInfer(ctx, &inference.ModelInferRequest{ModelName: "classifier",
		Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "images", Datatype: "FP32", Shape: []int64{1, 784},
			Contents: &inference.InferTensorContents{Fp32Contents: px}}}})
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Outputs[1].Contents.GetInt64Contents(); len(d) != 1 || int(d[0]) != mnistLabel(t, 61) {
		t.Errorf("classifier digit %v, label %d", d, mnistLabel(t, 61))
	}

	metrics := string(g.get("/metrics").body)
	if !strings.Contains(metrics, `aeserve_grpc_requests_total{code="OK",method="/inference.GRPCInferenceService/ModelInfer"} 3`) {
		t.Error("/metrics does not count the gRPC infers")
	}
	found := false
	for _, l := range g.logs.lines() {
		found = found || l["route"] == "/inference.GRPCInferenceService/ModelInfer" && l["model"] == "classifier"
	}
	if !found {
		t.Error("no request log line for the gRPC infer")
	}
}

// Bad requests get the protocol's status codes, never a panic.
func TestGRPCErrors(t *testing.T) {
	g := newGRPCEnv(t)
	ctx := t.Context()
	px, _ := mnistDigit(t, 2)
	typed := func(v []float32) *inference.InferTensorContents {
		return &inference.InferTensorContents{Fp32Contents: v}
	}
	images := func(c *inference.InferTensorContents) []*inference.ModelInferRequest_InferInputTensor {
		return []*inference.ModelInferRequest_InferInputTensor{{Name: "images", Datatype: "FP32", Shape: []int64{1, 784}, Contents: c}}
	}
	for _, tc := range []struct {
		name   string
		req    *inference.ModelInferRequest
		code   codes.Code
		detail string
	}{
		{"unknown model", &inference.ModelInferRequest{ModelName: "nope", Inputs: images(typed(px))}, codes.NotFound, `no model named "nope"`},
		{"other version", &inference.ModelInferRequest{ModelName: "conv", ModelVersion: "1", Inputs: images(typed(px))}, codes.NotFound, "no version"},
		{"raw and typed", &inference.ModelInferRequest{ModelName: "conv", Inputs: images(typed(px)), RawInputContents: [][]byte{fp32Bytes(px)}},
			codes.InvalidArgument, "raw_input_contents"},
		{"raw count", &inference.ModelInferRequest{ModelName: "conv", Inputs: images(nil), RawInputContents: [][]byte{fp32Bytes(px), fp32Bytes(px)}},
			codes.InvalidArgument, "2 raw_input_contents for 1 inputs"},
		{"raw length", &inference.ModelInferRequest{ModelName: "conv", Inputs: images(nil), RawInputContents: [][]byte{fp32Bytes(px[:700])}},
			codes.InvalidArgument, "2800 bytes of raw data"},
		{"wrong contents type", &inference.ModelInferRequest{ModelName: "conv", Inputs: images(&inference.InferTensorContents{IntContents: []int32{1}})},
			codes.InvalidArgument, "not fp32_contents"},
		{"no contents", &inference.ModelInferRequest{ModelName: "conv", Inputs: images(nil)}, codes.InvalidArgument, "no contents"},
		{"count", &inference.ModelInferRequest{ModelName: "conv", Inputs: images(typed(px[:10]))}, codes.InvalidArgument, "10 values, the shape gives 784"},
		{"NaN", &inference.ModelInferRequest{ModelName: "conv", Inputs: images(typed(append([]float32{float32(math.NaN())}, px[1:]...)))},
			codes.InvalidArgument, "is NaN"},
		{"unknown parameter", &inference.ModelInferRequest{ModelName: "conv", Inputs: images(typed(px)),
			Parameters: map[string]*inference.InferParameter{"priority": {ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: 1}}}},
			codes.InvalidArgument, `unknown parameter "priority"`},
		{"foreign latent", &inference.ModelInferRequest{ModelName: "conv.decoder",
			Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "latent", Datatype: "FP32", Shape: []int64{1, 32, 7, 7},
				Parameters: map[string]*inference.InferParameter{"fingerprint": {ParameterChoice: &inference.InferParameter_StringParam{StringParam: "24fc73baec52813b"}}},
				Contents:   typed(make([]float32, 1568))}}}, codes.InvalidArgument, "24fc73baec52813b is not the fingerprint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := g.client.ModelInfer(ctx, tc.req)
			wantCode(t, err, tc.code, tc.detail)
		})
	}
	// A message above --max-body-bytes is refused by gRPC itself.
	big := &inference.ModelInferRequest{ModelName: "conv", Inputs: images(nil), RawInputContents: [][]byte{make([]byte, DefaultMaxBodyBytes+1)}}
	_, err := g.client.ModelInfer(ctx, big)
	wantCode(t, err, codes.ResourceExhausted, "")
}

// SIGTERM drains gRPC too: health turns NOT_SERVING, an RPC in flight is
// answered, and ServeAll returns nil.
func TestGRPCDrain(t *testing.T) {
	gate := newGate()
	drained := make(chan struct{})
	g := newGRPCEnv(t, gate.option, func(c *Config) { c.DrainDelay = time.Hour })
	g.s.drainWait = func(time.Duration) { <-drained }
	px, _ := mnistDigit(t, 8)
	done := make(chan error, 1)
	go func() {
		_, err := g.client.ModelInfer(context.Background(), &inference.ModelInferRequest{ModelName: "conv",
			Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "images", Datatype: "FP32", Shape: []int64{1, 784},
				Contents: &inference.InferTensorContents{Fp32Contents: px}}}})
		done <- err
	}()
	b := g.batcher("conv", model.Full)
	waitFor(t, "the RPC to be queued", func() bool { return b.Stats().Pending == 1 })
	g.stop()
	waitFor(t, "gRPC health to turn NOT_SERVING", func() bool {
		r, err := g.health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && r.Status == healthpb.HealthCheckResponse_NOT_SERVING
	})
	close(drained)
	gate.release()
	if err := <-done; err != nil {
		t.Fatalf("the RPC in flight during the drain: %v", err)
	}
	waitServed(t, g.served)
	g.served <- nil // for the cleanup
}
