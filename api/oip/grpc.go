package oip

import (
	"context"
	"fmt"
	"math"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/aeserve/aeserve/api/inference"
)

// GRPCClient speaks the protocol over gRPC (inference.GRPCInferenceService)
// with the same methods, types and errors as Client. It is safe for
// concurrent use. The caller owns the connection: dial it with the
// credentials and options it needs, and close it when done.
//
//	conn, err := grpc.NewClient("localhost:8081", grpc.WithTransportCredentials(insecure.NewCredentials()))
//	…
//	defer conn.Close()
//	g := oip.NewGRPCClient(conn)
//
// For a server with TLS, dial with credentials.NewTLS instead; for one with
// --auth-tokens, set Token.
//
// A failed call is returned as an *Error holding the status code and
// message. Unavailable is retried as Client retries a 503 (MaxAttempts,
// MaxRetryWait; gRPC has no Retry-After, so the wait is always the
// backoff): gRPC also says Unavailable when it cannot reach the server, and
// those calls are retried too.
type GRPCClient struct {
	Service inference.GRPCInferenceServiceClient

	// MaxAttempts and MaxRetryWait are as Client's.
	MaxAttempts  int
	MaxRetryWait time.Duration
	// Token, if not empty, is sent with every call as the metadata
	// "authorization: Bearer <Token>" (the server answers Unauthenticated
	// without it when it runs with --auth-tokens).
	Token string
}

// outgoing is ctx carrying the token, if any.
func (g *GRPCClient) outgoing(ctx context.Context) context.Context {
	if g.Token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+g.Token)
}

// NewGRPCClient is a GRPCClient on conn, with the default retry policy.
func NewGRPCClient(conn grpc.ClientConnInterface) *GRPCClient {
	return &GRPCClient{Service: inference.NewGRPCInferenceServiceClient(conn)}
}

// deadlineSlack is how close to the context's deadline a failure is taken
// to be that deadline's, seen first by the server.
const deadlineSlack = 50 * time.Millisecond

// call runs one RPC, again while it fails with Unavailable, and turns a
// failure into an *Error. When the context ends during the call, the error
// is the context's (as a net/http client's would be).
func (g *GRPCClient) call(ctx context.Context, what string, rpc func() error) error {
	return retry(ctx, g.MaxAttempts, g.MaxRetryWait, what, func() error {
		err := rpc()
		if err == nil {
			return nil
		}
		if dl, ok := ctx.Deadline(); ok && ctx.Err() == nil && time.Until(dl) < deadlineSlack {
			// The deadline travels with the call, and the server may see it
			// pass a moment before this process does: the failure is still
			// the deadline's.
			<-ctx.Done()
		}
		if ctx.Err() != nil {
			if c := grpcstatus.Code(err); c == codes.Canceled || c == codes.DeadlineExceeded {
				// gRPC's words for the context's end, not the server's.
				return fmt.Errorf("oip: %s: %w", what, context.Cause(ctx))
			}
			return fmt.Errorf("%w (%w)", grpcError(err), context.Cause(ctx))
		}
		return grpcError(err)
	})
}

// ServerLive reports whether the server is live.
func (g *GRPCClient) ServerLive(ctx context.Context) (bool, error) {
	ctx = g.outgoing(ctx)
	var r *inference.ServerLiveResponse
	err := g.call(ctx, "ServerLive", func() (err error) {
		r, err = g.Service.ServerLive(ctx, &inference.ServerLiveRequest{})
		return err
	})
	return r.GetLive(), err
}

// ServerReady reports whether the server is ready for inference.
func (g *GRPCClient) ServerReady(ctx context.Context) (bool, error) {
	ctx = g.outgoing(ctx)
	var r *inference.ServerReadyResponse
	err := g.call(ctx, "ServerReady", func() (err error) {
		r, err = g.Service.ServerReady(ctx, &inference.ServerReadyRequest{})
		return err
	})
	return r.GetReady(), err
}

// ModelReady reports whether a model (at version, if not "") is ready. An
// unknown model or version is a NotFound *Error.
func (g *GRPCClient) ModelReady(ctx context.Context, name, version string) (bool, error) {
	ctx = g.outgoing(ctx)
	if name == "" {
		return false, errNoModel
	}
	var r *inference.ModelReadyResponse
	err := g.call(ctx, "ModelReady", func() (err error) {
		r, err = g.Service.ModelReady(ctx, &inference.ModelReadyRequest{Name: name, Version: version})
		return err
	})
	return r.GetReady(), err
}

// ServerMetadata is the server's name, version and extensions.
func (g *GRPCClient) ServerMetadata(ctx context.Context) (*ServerMetadata, error) {
	ctx = g.outgoing(ctx)
	var r *inference.ServerMetadataResponse
	err := g.call(ctx, "ServerMetadata", func() (err error) {
		r, err = g.Service.ServerMetadata(ctx, &inference.ServerMetadataRequest{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &ServerMetadata{Name: r.GetName(), Version: r.GetVersion(), Extensions: r.GetExtensions()}, nil
}

// ModelMetadata describes a model (at version, if not ""). An unknown model
// or version is a NotFound *Error.
func (g *GRPCClient) ModelMetadata(ctx context.Context, name, version string) (*ModelMetadata, error) {
	ctx = g.outgoing(ctx)
	if name == "" {
		return nil, errNoModel
	}
	var r *inference.ModelMetadataResponse
	err := g.call(ctx, "ModelMetadata", func() (err error) {
		r, err = g.Service.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: name, Version: version})
		return err
	})
	if err != nil {
		return nil, err
	}
	mm := &ModelMetadata{Name: r.GetName(), Versions: r.GetVersions(), Platform: r.GetPlatform()}
	for _, t := range r.GetInputs() {
		mm.Inputs = append(mm.Inputs, TensorMetadata{Name: t.GetName(), Datatype: t.GetDatatype(), Shape: t.GetShape()})
	}
	for _, t := range r.GetOutputs() {
		mm.Outputs = append(mm.Outputs, TensorMetadata{Name: t.GetName(), Datatype: t.GetDatatype(), Shape: t.GetShape()})
	}
	return mm, nil
}

// Infer runs model name on req (ModelInfer), with typed contents or, as
// opts say, raw_input_contents and raw_output_contents; the response is the
// same, and the same as Client's. The request is not modified.
func (g *GRPCClient) Infer(ctx context.Context, name string, req *InferRequest, opts InferOptions) (*InferResponse, error) {
	ctx = g.outgoing(ctx)
	if name == "" {
		return nil, errNoModel
	}
	pr, err := protoRequest(name, req, opts)
	if err != nil {
		return nil, err
	}
	var r *inference.ModelInferResponse
	err = g.call(ctx, "ModelInfer "+name, func() (err error) {
		r, err = g.Service.ModelInfer(ctx, pr)
		return err
	})
	if err != nil {
		return nil, err
	}
	res, err := fromProtoResponse(r)
	if err != nil {
		return nil, fmt.Errorf("oip: %s: %w", name, err)
	}
	return res, nil
}

func protoRequest(name string, req *InferRequest, opts InferOptions) (*inference.ModelInferRequest, error) {
	if req == nil {
		return nil, fmt.Errorf("oip: nil request")
	}
	pr := &inference.ModelInferRequest{ModelName: name, ModelVersion: opts.Version, Id: req.ID}
	params := req.Parameters
	if opts.BinaryOutputs {
		params = withParam(params, paramBinaryDataOutput, true)
	}
	var err error
	if pr.Parameters, err = toProtoParams(params, "request"); err != nil {
		return nil, err
	}
	for i := range req.Inputs {
		in := &req.Inputs[i]
		if err := in.check(); err != nil {
			return nil, fmt.Errorf("oip: %w", err)
		}
		where := fmt.Sprintf("input %q", in.Name)
		pi := &inference.ModelInferRequest_InferInputTensor{Name: in.Name, Datatype: in.Datatype, Shape: in.Shape}
		if pi.Parameters, err = toProtoParams(in.Parameters, where); err != nil {
			return nil, err
		}
		switch {
		case opts.BinaryInputs:
			pr.RawInputContents = append(pr.RawInputContents, rawBytes(in))
		case in.Datatype == INT64:
			pi.Contents = &inference.InferTensorContents{Int64Contents: in.INT64}
		default:
			pi.Contents = &inference.InferTensorContents{Fp32Contents: in.FP32}
		}
		pr.Inputs = append(pr.Inputs, pi)
	}
	for _, o := range req.Outputs {
		po := &inference.ModelInferRequest_InferRequestedOutputTensor{Name: o.Name}
		if po.Parameters, err = toProtoParams(o.Parameters, fmt.Sprintf("output %q", o.Name)); err != nil {
			return nil, err
		}
		pr.Outputs = append(pr.Outputs, po)
	}
	return pr, nil
}

func fromProtoResponse(r *inference.ModelInferResponse) (*InferResponse, error) {
	res := &InferResponse{ModelName: r.GetModelName(), ModelVersion: r.GetModelVersion(), ID: r.GetId(),
		Parameters: fromProtoParams(r.GetParameters())}
	raw := r.GetRawOutputContents()
	if len(raw) > 0 && len(raw) != len(r.GetOutputs()) {
		return nil, fmt.Errorf("%d raw_output_contents for %d outputs", len(raw), len(r.GetOutputs()))
	}
	for i, o := range r.GetOutputs() {
		t := Tensor{Name: o.GetName(), Datatype: o.GetDatatype(), Shape: o.GetShape(), Parameters: fromProtoParams(o.GetParameters())}
		where := fmt.Sprintf("output %q", o.GetName())
		want, err := product(t.Shape)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if len(raw) > 0 {
			if err := fromRaw(&t, raw[i], want); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			res.Outputs = append(res.Outputs, t)
			continue
		}
		got := 0
		switch t.Datatype {
		case FP32:
			t.FP32 = nonNil(o.GetContents().GetFp32Contents())
			got = len(t.FP32)
		case INT64:
			t.INT64 = nonNil(o.GetContents().GetInt64Contents())
			got = len(t.INT64)
		default:
			return nil, fmt.Errorf("%s: datatype %q is not supported by this client", where, t.Datatype)
		}
		if got != want {
			return nil, fmt.Errorf("%s: %d values, shape %v gives %d", where, got, t.Shape, want)
		}
		res.Outputs = append(res.Outputs, t)
	}
	return res, nil
}

// toProtoParams converts parameters to gRPC's, which are bools, int64s and
// strings: an integral float64 becomes an int64, any other is refused.
func toProtoParams(p Parameters, where string) (map[string]*inference.InferParameter, error) {
	if len(p) == 0 {
		return nil, nil
	}
	out := make(map[string]*inference.InferParameter, len(p))
	for k, v := range p {
		var pv inference.InferParameter
		switch x := v.(type) {
		case string:
			pv.ParameterChoice = &inference.InferParameter_StringParam{StringParam: x}
		case bool:
			pv.ParameterChoice = &inference.InferParameter_BoolParam{BoolParam: x}
		case int:
			pv.ParameterChoice = &inference.InferParameter_Int64Param{Int64Param: int64(x)}
		case int64:
			pv.ParameterChoice = &inference.InferParameter_Int64Param{Int64Param: x}
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
				pv.ParameterChoice = &inference.InferParameter_Int64Param{Int64Param: int64(x)}
			}
		}
		if pv.ParameterChoice == nil {
			return nil, fmt.Errorf("oip: %s: parameter %s is %v (%T); over gRPC a parameter is a bool, an integer or a string", where, k, v, v)
		}
		out[k] = &pv
	}
	return out, nil
}

func fromProtoParams(pp map[string]*inference.InferParameter) Parameters {
	if len(pp) == 0 {
		return nil
	}
	p := make(Parameters, len(pp))
	for k, v := range pp {
		switch c := v.GetParameterChoice().(type) {
		case *inference.InferParameter_BoolParam:
			p[k] = c.BoolParam
		case *inference.InferParameter_Int64Param:
			p[k] = c.Int64Param
		case *inference.InferParameter_StringParam:
			p[k] = c.StringParam
		}
	}
	return p
}
