package oip_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/api/oip"
	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/mnistdata"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/server"
	"github.com/aeserve/aeserve/internal/train"
	"github.com/aeserve/aeserve/weights"
)

// The tests and examples talk to one real server on loopback, serving every
// embedded model over HTTP and gRPC, as `go run ./cmd/server --grpc-addr`
// would.
var (
	restURL  string // the HTTP API's base URL
	grpcConn *grpc.ClientConn
)

func TestMain(m *testing.M) {
	stop := startServer()
	code := m.Run()
	stop()
	os.Exit(code)
}

func startServer() (stop func()) {
	s, err := server.New(server.Config{})
	if err != nil {
		log.Fatal(err)
	}
	entries, err := fs.ReadDir(weights.FS, ".")
	if err != nil {
		log.Fatal(err)
	}
	var ms []*model.Model
	for _, e := range entries {
		if e.IsDir() {
			m, err := model.LoadFS(weights.FS, e.Name())
			if err != nil {
				log.Fatal(err)
			}
			ms = append(ms, m)
		}
	}
	if err := s.Load(ms...); err != nil {
		log.Fatal(err)
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.ServeAll(ctx, server.Listeners{API: apiLn, GRPC: grpcLn}) }()
	restURL = "http://" + apiLn.Addr().String()
	grpcConn, err = grpc.NewClient("passthrough:///"+grpcLn.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	return func() {
		grpcConn.Close()
		cancel()
		if err := <-served; err != nil {
			log.Print(err)
		}
	}
}

// transport is one way of talking to the server: both clients have the
// same methods.
type transport interface {
	ServerLive(ctx context.Context) (bool, error)
	ServerReady(ctx context.Context) (bool, error)
	ModelReady(ctx context.Context, name, version string) (bool, error)
	ServerMetadata(ctx context.Context) (*oip.ServerMetadata, error)
	ModelMetadata(ctx context.Context, name, version string) (*oip.ModelMetadata, error)
	Infer(ctx context.Context, name string, req *oip.InferRequest, opts oip.InferOptions) (*oip.InferResponse, error)
	Encode(ctx context.Context, model string, pixels []float32, opts oip.InferOptions) (*api.Latent, error)
	Decode(ctx context.Context, model string, l *api.Latent, opts oip.InferOptions) ([]float32, error)
	Reconstruct(ctx context.Context, model string, pixels []float32, opts oip.InferOptions) ([]float32, error)
	Classify(ctx context.Context, model string, pixels []float32, opts oip.InferOptions) (*api.Classifications, error)
}

var (
	_ transport = (*oip.Client)(nil)
	_ transport = (*oip.GRPCClient)(nil)
)

// transports runs f for REST and for gRPC.
func transports(t *testing.T, f func(t *testing.T, c transport)) {
	t.Run("REST", func(t *testing.T) { f(t, &oip.Client{BaseURL: restURL}) })
	t.Run("gRPC", func(t *testing.T) { f(t, oip.NewGRPCClient(grpcConn)) })
}

// encodings are every combination of InferOptions' two switches.
var encodings = []struct {
	name string
	opts oip.InferOptions
}{
	{"json", oip.InferOptions{}},
	{"binary-in", oip.InferOptions{BinaryInputs: true}},
	{"binary-out", oip.InferOptions{BinaryOutputs: true}},
	{"binary", oip.InferOptions{BinaryInputs: true, BinaryOutputs: true}},
}

var (
	mnistOnce sync.Once
	mnistSet  *train.Set
	mnistErr  error
)

// digits are n MNIST test digits from first on: their pixels, one after
// the other, and their labels from the label file.
func digits(t *testing.T, first, n int) ([]float32, []int) {
	t.Helper()
	mnistOnce.Do(func() {
		dir, _, err := mnistdata.Dir()
		if err != nil {
			mnistErr = err
			return
		}
		mnistSet, mnistErr = train.Load(dir, "t10k")
	})
	if mnistErr != nil {
		t.Fatalf("MNIST test digits are required: %v", mnistErr)
	}
	var px []float32
	var labels []int
	for i := first; i < first+n; i++ {
		px = append(px, mnistSet.Image(i)...)
		labels = append(labels, int(mnistSet.Labels[i]))
	}
	return px, labels
}

// pngs are the digits as PNG files, for /v1.
func pngs(t *testing.T, px []float32) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; i < len(px); i += 784 {
		b, err := digit.EncodePNG(px[i : i+784])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func v1() *api.Client { return &api.Client{BaseURL: restURL} }

func fingerprint(t *testing.T, name string) string {
	t.Helper()
	mi, err := v1().Model(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return mi.Fingerprint
}

func TestHealthAndMetadata(t *testing.T) {
	ctx := t.Context()
	convFP, classifierFP := fingerprint(t, "conv"), fingerprint(t, "classifier")
	var metas []*oip.ModelMetadata
	transports(t, func(t *testing.T, c transport) {
		if ok, err := c.ServerLive(ctx); !ok || err != nil {
			t.Errorf("ServerLive %v %v", ok, err)
		}
		if ok, err := c.ServerReady(ctx); !ok || err != nil {
			t.Errorf("ServerReady %v %v", ok, err)
		}
		for _, tc := range []struct{ name, version string }{
			{"conv", ""}, {"conv.encoder", convFP}, {"conv.decoder", ""}, {"classifier", classifierFP},
		} {
			if ok, err := c.ModelReady(ctx, tc.name, tc.version); !ok || err != nil {
				t.Errorf("ModelReady(%s, %q) %v %v", tc.name, tc.version, ok, err)
			}
		}
		sm, err := c.ServerMetadata(ctx)
		if err != nil || sm.Name != "aeserve" || sm.Version == "" || !slices.Contains(sm.Extensions, "binary_tensor_data") {
			t.Errorf("ServerMetadata %+v %v", sm, err)
		}
		mm, err := c.ModelMetadata(ctx, "conv.encoder", "")
		if err != nil {
			t.Fatal(err)
		}
		want := &oip.ModelMetadata{Name: "conv.encoder", Versions: []string{convFP}, Platform: "aeserve",
			Inputs:  []oip.TensorMetadata{{Name: "images", Datatype: "FP32", Shape: []int64{-1, 1, 28, 28}}},
			Outputs: []oip.TensorMetadata{{Name: "latent", Datatype: "FP32", Shape: []int64{-1, 32, 7, 7}}}}
		if !reflect.DeepEqual(mm, want) {
			t.Errorf("ModelMetadata\n got %+v\nwant %+v", mm, want)
		}
		mm, err = c.ModelMetadata(ctx, "classifier", classifierFP)
		if err != nil || len(mm.Outputs) != 2 ||
			!reflect.DeepEqual(mm.Outputs[1], oip.TensorMetadata{Name: "digit", Datatype: "INT64", Shape: []int64{-1}}) {
			t.Errorf("classifier metadata %+v %v", mm, err)
		}
		metas = append(metas, mm)
	})
	if len(metas) == 2 && !reflect.DeepEqual(metas[0], metas[1]) {
		t.Errorf("REST and gRPC metadata differ:\n%+v\n%+v", metas[0], metas[1])
	}
}

// Infer answers the same, value for value, whatever carries the tensors,
// and the same as /v1.
func TestInfer(t *testing.T) {
	ctx := t.Context()
	px, _ := digits(t, 100, 3)
	l1, err := v1().Encode(ctx, api.EncodeOptions{}, pngs(t, px)...)
	if err != nil {
		t.Fatal(err)
	}
	req := &oip.InferRequest{ID: "enc-1", Inputs: []oip.Tensor{{Name: "images", Datatype: "FP32", Shape: []int64{3, 784}, FP32: px}}}
	want := &oip.InferResponse{ModelName: "conv.encoder", ModelVersion: l1.Fingerprint, ID: "enc-1", Outputs: []oip.Tensor{{
		Name: "latent", Datatype: "FP32", Shape: []int64{3, 32, 7, 7}, Parameters: oip.Parameters{"fingerprint": l1.Fingerprint}, FP32: l1.Data}}}
	transports(t, func(t *testing.T, c transport) {
		for _, enc := range encodings {
			res, err := c.Infer(ctx, "conv.encoder", req, enc.opts)
			if err != nil {
				t.Fatalf("%s: %v", enc.name, err)
			}
			if !reflect.DeepEqual(res, want) {
				t.Errorf("%s: response differs from /v1/encode's latent:\n got %.300v\nwant %.300v", enc.name, res, want)
			}
		}
		if len(req.Inputs[0].Parameters) != 0 || req.Parameters != nil {
			t.Error("Infer modified the request")
		}

		// The classifier's two outputs, asked for in another order, one of
		// them in binary whatever the request says.
		creq := &oip.InferRequest{
			Inputs:  []oip.Tensor{{Name: "images", Datatype: "FP32", Shape: []int64{3, 1, 28, 28}, FP32: px}},
			Outputs: []oip.RequestedOutput{{Name: "digit", Parameters: oip.Parameters{"binary_data": true}}, {Name: "probabilities"}},
		}
		var answers []*oip.InferResponse
		for _, enc := range encodings {
			res, err := c.Infer(ctx, "classifier", creq, enc.opts)
			if err != nil {
				t.Fatalf("classifier %s: %v", enc.name, err)
			}
			if len(res.Outputs) != 2 || res.Outputs[0].Name != "digit" || res.Outputs[0].Datatype != "INT64" ||
				!slices.Equal(res.Outputs[0].Shape, []int64{3}) || len(res.Outputs[1].FP32) != 30 {
				t.Fatalf("classifier %s: %+v", enc.name, res)
			}
			answers = append(answers, res)
		}
		for i, a := range answers[1:] {
			if !reflect.DeepEqual(a, answers[0]) {
				t.Errorf("classifier: %s answer differs from JSON's", encodings[i+1].name)
			}
		}
	})
}

// The helpers give what /v1 gives: the same latent, byte for byte in the
// binary format, the same PNGs, the same classes.
func TestHelpers(t *testing.T) {
	ctx := t.Context()
	px, labels := digits(t, 200, 20)
	in := pngs(t, px)
	l1, err := v1().Encode(ctx, api.EncodeOptions{Model: "dense"}, in...)
	if err != nil {
		t.Fatal(err)
	}
	wire1, _ := l1.MarshalBinary()
	dec1, err := v1().Decode(ctx, l1, api.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec1, err := v1().Reconstruct(ctx, api.ImageOptions{}, in...)
	if err != nil {
		t.Fatal(err)
	}
	den1, err := v1().Denoise(ctx, api.ImageOptions{}, in...)
	if err != nil {
		t.Fatal(err)
	}
	cls1, err := v1().Classify(ctx, api.ClassifyOptions{}, in...)
	if err != nil {
		t.Fatal(err)
	}
	transports(t, func(t *testing.T, c transport) {
		for _, enc := range encodings {
			l, err := c.Encode(ctx, "dense", px, enc.opts)
			if err != nil {
				t.Fatal(err)
			}
			wire, _ := l.MarshalBinary()
			if l.Model != "dense" || !bytes.Equal(wire, wire1) {
				t.Errorf("%s: Encode gave model %q and a latent of %d bytes unlike /v1's %d", enc.name, l.Model, len(wire), len(wire1))
			}
			// A binary latent has no model: Decode is told it.
			var bin api.Latent
			if err := bin.UnmarshalBinary(wire1); err != nil {
				t.Fatal(err)
			}
			dec, err := c.Decode(ctx, "dense", &bin, enc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(pngs(t, dec), dec1, bytes.Equal) {
				t.Errorf("%s: Decode's images differ from /v1/decode's", enc.name)
			}
			if _, err := c.Decode(ctx, "", &bin, enc.opts); err == nil || !strings.Contains(err.Error(), "name the model") {
				t.Errorf("Decode of a latent without a model: %v", err)
			}
			rec, err := c.Reconstruct(ctx, "conv", px, enc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(pngs(t, rec), rec1, bytes.Equal) {
				t.Errorf("%s: Reconstruct differs from /v1/reconstruct", enc.name)
			}
			den, err := c.Reconstruct(ctx, "denoise", px, enc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(pngs(t, den), den1, bytes.Equal) {
				t.Errorf("%s: Reconstruct with denoise differs from /v1/denoise", enc.name)
			}
			cls, err := c.Classify(ctx, "classifier", px, enc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cls, cls1) {
				t.Errorf("%s: Classify differs from /v1/classify:\n got %+v\nwant %+v", enc.name, cls, cls1)
			}
			correct := 0
			for i, r := range cls.Results {
				if r.Digit == labels[i] {
					correct++
				}
			}
			if correct < len(labels)-1 {
				t.Errorf("%s: %d of %d digits classified as labelled", enc.name, correct, len(labels))
			}
		}
	})
}

// wantError checks err is an *Error with this status, code and kind, and
// that gRPC's status package reads it too.
func wantError(t *testing.T, err error, status int, code codes.Code, kind, detail string) *oip.Error {
	t.Helper()
	var e *oip.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want an *oip.Error", err, err)
	}
	if e.Status != status || e.Code != code || e.Kind() != kind || !strings.Contains(e.Message, detail) {
		t.Errorf("error %+v (%q), want %d %v %s containing %q", e, e.Kind(), status, code, kind, detail)
	}
	if grpcstatus.Code(err) != code {
		t.Errorf("status.Code(%v) = %v, want %v", err, grpcstatus.Code(err), code)
	}
	return e
}

func TestErrors(t *testing.T) {
	ctx := t.Context()
	px, _ := digits(t, 0, 1)
	convFP := fingerprint(t, "conv")
	images := func(shape []int64, v []float32) *oip.InferRequest {
		return &oip.InferRequest{Inputs: []oip.Tensor{{Name: "images", Datatype: "FP32", Shape: shape, FP32: v}}}
	}
	bright := slices.Clone(px)
	bright[300] = 2
	transports(t, func(t *testing.T, c transport) {
		_, grpcT := c.(*oip.GRPCClient)
		_, err := c.Infer(ctx, "nope", images([]int64{1, 784}, px), oip.InferOptions{})
		e := wantError(t, err, http.StatusNotFound, codes.NotFound, "unknown-model", `no model named "nope"`)
		if wantMsg := "oip: 404 Not Found: unknown-model: no model named"; grpcT {
			if !strings.HasPrefix(e.Error(), "oip: NotFound: unknown-model: no model named") {
				t.Errorf("error reads %q", e)
			}
		} else if !strings.HasPrefix(e.Error(), wantMsg) {
			t.Errorf("error reads %q", e)
		}
		_, err = c.ModelMetadata(ctx, "conv.middle", "")
		wantError(t, err, http.StatusNotFound, codes.NotFound, "unknown-model", "conv.middle")
		_, err = c.ModelReady(ctx, "conv", "0000000000000000")
		wantError(t, err, http.StatusNotFound, codes.NotFound, "unknown-model", "has no version")
		_, err = c.Infer(ctx, "conv", images([]int64{1, 784}, px), oip.InferOptions{Version: "0000000000000000"})
		wantError(t, err, http.StatusNotFound, codes.NotFound, "unknown-model", convFP)

		for _, enc := range encodings {
			_, err = c.Infer(ctx, "conv", images([]int64{1, 784}, bright), enc.opts)
			wantError(t, err, http.StatusBadRequest, codes.InvalidArgument, "malformed", "image values must be in [0, 1]")
			_, err = c.Infer(ctx, "conv.encoder", images([]int64{1, 28, 28}, px), enc.opts)
			wantError(t, err, http.StatusBadRequest, codes.InvalidArgument, "malformed", "shape [1 28 28]")
			_, err = c.Reconstruct(ctx, "classifier.encoder", px, enc.opts)
			wantError(t, err, http.StatusNotFound, codes.NotFound, "unknown-model", "classifier.encoder")
		}

		// A latent of other weights is refused by its fingerprint.
		l, err := c.Encode(ctx, "conv", px, oip.InferOptions{})
		if err != nil {
			t.Fatal(err)
		}
		l.Fingerprint = fingerprint(t, "sparse")
		_, err = c.Decode(ctx, "conv", l, oip.InferOptions{BinaryInputs: true})
		wantError(t, err, http.StatusBadRequest, codes.InvalidArgument, "malformed", "the latent came from other weights")

		// Mistakes the client catches before sending.
		if _, err := c.Encode(ctx, "conv", px[:700], oip.InferOptions{}); err == nil || !strings.Contains(err.Error(), "whole number") {
			t.Errorf("700 pixels: %v", err)
		}
		if _, err := c.Infer(ctx, "", images([]int64{1, 784}, px), oip.InferOptions{}); err == nil {
			t.Error("empty model name: no error")
		}
		bad := images([]int64{1, 784}, px)
		bad.Inputs[0].Datatype = "FP16"
		if _, err := c.Infer(ctx, "conv", bad, oip.InferOptions{}); err == nil || !strings.Contains(err.Error(), "FP16") {
			t.Errorf("FP16: %v", err)
		}
	})

	// JSON cannot carry NaN; the binary extension can, and the server says.
	nan := slices.Clone(px)
	nan[5] = float32(math.NaN())
	c := &oip.Client{BaseURL: restURL}
	if _, err := c.Infer(ctx, "conv", images([]int64{1, 784}, nan), oip.InferOptions{}); err == nil ||
		!strings.Contains(err.Error(), "JSON cannot carry") {
		t.Errorf("NaN in JSON: %v", err)
	}
	_, err := c.Infer(ctx, "conv", images([]int64{1, 784}, nan), oip.InferOptions{BinaryInputs: true})
	wantError(t, err, http.StatusBadRequest, codes.InvalidArgument, "malformed", "is NaN")
	// A float parameter has no gRPC form.
	req := images([]int64{1, 784}, px)
	req.Parameters = oip.Parameters{"temperature": 0.5}
	if _, err := oip.NewGRPCClient(grpcConn).Infer(ctx, "conv", req, oip.InferOptions{}); err == nil || !strings.Contains(err.Error(), "temperature") {
		t.Errorf("float parameter over gRPC: %v", err)
	}
	if _, err := c.Infer(ctx, "conv", req, oip.InferOptions{}); !strings.Contains(fmt.Sprint(err), `unknown parameter "temperature"`) {
		t.Errorf("unknown parameter over REST: %v", err)
	}
}
