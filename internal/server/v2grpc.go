package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/aeserve/aeserve/api/inference"
)

// The Open Inference Protocol over gRPC (inference.GRPCInferenceService),
// beside gRPC's standard health service and server reflection, on a
// listener of its own. Requests take the same path as REST's (v2Run): the
// same batchers, limits, deadline and request log.

// grpcService adapts the protocol's messages to v2Call and back.
type grpcService struct {
	inference.UnimplementedGRPCInferenceServiceServer
	s *Server
}

// GRPCServer is the gRPC server ServeAll runs on Listeners.GRPC: the
// inference service, health (SERVING once ready, NOT_SERVING from the
// start of a drain) and reflection, with the request log and metrics, the
// request timeout and a receive limit of MaxBodyBytes; over TLS and with
// the token check when the Config asks for them (auth.go).
func (s *Server) GRPCServer() *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(min(s.cfg.MaxBodyBytes, 1<<31-1))),
		grpc.ChainUnaryInterceptor(s.grpcObserve),
	}
	gs := grpc.NewServer(append(opts, s.grpcSecurity()...)...)
	inference.RegisterGRPCInferenceServiceServer(gs, &grpcService{s: s})
	healthpb.RegisterHealthServer(gs, s.grpcHealth)
	reflection.Register(gs)
	return gs
}

func (g *grpcService) ServerLive(context.Context, *inference.ServerLiveRequest) (*inference.ServerLiveResponse, error) {
	return &inference.ServerLiveResponse{Live: true}, nil
}

func (g *grpcService) ServerReady(context.Context, *inference.ServerReadyRequest) (*inference.ServerReadyResponse, error) {
	return &inference.ServerReadyResponse{Ready: g.s.v2NotReady() == nil}, nil
}

func (g *grpcService) ModelReady(ctx context.Context, req *inference.ModelReadyRequest) (*inference.ModelReadyResponse, error) {
	t, err := g.target(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, grpcError(err)
	}
	return &inference.ModelReadyResponse{Ready: !t.sv.batchers[t.half].Stats().Closed}, nil
}

func (g *grpcService) ServerMetadata(context.Context, *inference.ServerMetadataRequest) (*inference.ServerMetadataResponse, error) {
	return &inference.ServerMetadataResponse{Name: "aeserve", Version: serverVersion(), Extensions: []string{v2ExtensionBinary}}, nil
}

func (g *grpcService) ModelMetadata(ctx context.Context, req *inference.ModelMetadataRequest) (*inference.ModelMetadataResponse, error) {
	t, err := g.target(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, grpcError(err)
	}
	md := t.metadata()
	res := &inference.ModelMetadataResponse{Name: md.Name, Versions: md.Versions, Platform: md.Platform}
	for _, m := range md.Inputs {
		res.Inputs = append(res.Inputs, &inference.ModelMetadataResponse_TensorMetadata{Name: m.Name, Datatype: m.Datatype, Shape: m.Shape})
	}
	for _, m := range md.Outputs {
		res.Outputs = append(res.Outputs, &inference.ModelMetadataResponse_TensorMetadata{Name: m.Name, Datatype: m.Datatype, Shape: m.Shape})
	}
	return res, nil
}

func (g *grpcService) ModelInfer(ctx context.Context, req *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	t, err := g.target(ctx, req.GetModelName(), req.GetModelVersion())
	if err != nil {
		return nil, grpcError(err)
	}
	call, err := grpcCall(req)
	if err != nil {
		return nil, grpcError(err)
	}
	res, err := g.s.v2Run(ctx, t, call)
	if err != nil {
		return nil, grpcError(err)
	}
	// raw_output_contents is all or nothing: it holds every output or none.
	raw := len(req.GetRawInputContents()) > 0
	for _, o := range res.Outputs {
		raw = raw || o.Raw
	}
	out := &inference.ModelInferResponse{ModelName: res.Model, ModelVersion: res.Version, Id: res.ID}
	for _, o := range res.Outputs {
		ot := &inference.ModelInferResponse_InferOutputTensor{Name: o.Name, Datatype: o.Datatype, Shape: o.Shape, Parameters: grpcParams(o.Params)}
		switch {
		case raw:
			out.RawOutputContents = append(out.RawOutputContents, v2RawBytes(o))
		case o.INT64 != nil:
			ot.Contents = &inference.InferTensorContents{Int64Contents: o.INT64}
		default:
			ot.Contents = &inference.InferTensorContents{Fp32Contents: o.FP32}
		}
		out.Outputs = append(out.Outputs, ot)
	}
	return out, nil
}

// target is v2Lookup, recording the model for the request log.
func (g *grpcService) target(ctx context.Context, name, version string) (*v2Target, error) {
	t, err := g.s.v2Lookup(name, version)
	if err != nil {
		return nil, err
	}
	infoOf(ctx).model = t.sv
	return t, nil
}

// grpcCall reads a ModelInferRequest. Typed and raw contents do not mix,
// and raw contents must come one per input.
func grpcCall(req *inference.ModelInferRequest) (*v2Call, error) {
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(req.GetInputs()) {
		return nil, malformed("%d raw_input_contents for %d inputs; give one per input", len(raw), len(req.GetInputs()))
	}
	call := &v2Call{ID: req.GetId()}
	var err error
	if call.Params, err = protoParams(req.GetParameters(), "request"); err != nil {
		return nil, err
	}
	for i, in := range req.GetInputs() {
		ci := v2CallInput{Name: in.GetName(), Datatype: in.GetDatatype(), Shape: in.GetShape()}
		where := fmt.Sprintf("input %q", in.GetName())
		if ci.Params, err = protoParams(in.GetParameters(), where); err != nil {
			return nil, err
		}
		c := in.GetContents()
		typed := c != nil && (len(c.GetFp32Contents())+len(c.GetFp64Contents())+len(c.GetIntContents())+len(c.GetInt64Contents())+
			len(c.GetUintContents())+len(c.GetUint64Contents())+len(c.GetBoolContents())+len(c.GetBytesContents()) > 0)
		switch {
		case len(raw) > 0 && typed:
			return nil, malformed("%s has typed contents and the request has raw_input_contents; use one or the other", where)
		case len(raw) > 0:
			ci.Raw, ci.HasRaw = raw[i], true
		case typed && len(c.GetFp32Contents()) == 0:
			return nil, malformed("%s: its contents are not fp32_contents; model inputs are %s", where, v2FP32)
		case typed:
			ci.FP32 = c.GetFp32Contents()
		default:
			return nil, malformed("%s has no contents", where)
		}
		call.Inputs = append(call.Inputs, ci)
	}
	for _, o := range req.GetOutputs() {
		co := v2CallOutput{Name: o.GetName()}
		if co.Params, err = protoParams(o.GetParameters(), fmt.Sprintf("output %q", o.GetName())); err != nil {
			return nil, err
		}
		call.Outputs = append(call.Outputs, co)
	}
	return call, nil
}

func protoParams(pp map[string]*inference.InferParameter, where string) (v2Params, error) {
	if len(pp) == 0 {
		return nil, nil
	}
	p := make(v2Params, len(pp))
	for k, v := range pp {
		switch c := v.GetParameterChoice().(type) {
		case *inference.InferParameter_BoolParam:
			p[k] = c.BoolParam
		case *inference.InferParameter_Int64Param:
			p[k] = c.Int64Param
		case *inference.InferParameter_StringParam:
			p[k] = c.StringParam
		default:
			return nil, malformed("%s: parameter %s has no value", where, k)
		}
	}
	return p, nil
}

func grpcParams(p v2Params) map[string]*inference.InferParameter {
	if len(p) == 0 {
		return nil
	}
	out := make(map[string]*inference.InferParameter, len(p))
	for k, v := range p {
		switch x := v.(type) {
		case string:
			out[k] = &inference.InferParameter{ParameterChoice: &inference.InferParameter_StringParam{StringParam: x}}
		case bool:
			out[k] = &inference.InferParameter{ParameterChoice: &inference.InferParameter_BoolParam{BoolParam: x}}
		case int:
			out[k] = &inference.InferParameter{ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: int64(x)}}
		case int64:
			out[k] = &inference.InferParameter{ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: x}}
		}
	}
	return out
}

// grpcCode is the status code of a problem, as the protocol maps them.
func grpcCode(status int) codes.Code {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusConflict:
		return codes.InvalidArgument
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusRequestTimeout:
		return codes.DeadlineExceeded
	case StatusClientClosed:
		return codes.Canceled
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	}
	return codes.Internal
}

// grpcError turns any error into its gRPC status, through problemOf, the
// same mapping the HTTP answers use.
func grpcError(err error) error {
	p := problemOf(err)
	msg := p.Kind + ": " + p.Detail
	if p.Detail == "" {
		msg = p.Kind + ": " + p.Title
	}
	code := grpcCode(p.Status)
	if p.Kind == kindTimeout {
		// The deadline passed before a forward pass answered: for gRPC, whose
		// deadlines travel with the call, that is DeadlineExceeded, not the
		// overload an Unavailable would suggest.
		code = codes.DeadlineExceeded
	}
	return grpcstatus.Error(code, msg)
}

// grpcMetrics are the gRPC requests' own (the batchers' are shared).
type grpcMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newGRPCMetrics(reg prometheus.Registerer) (*grpcMetrics, error) {
	m := &grpcMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aeserve_grpc_requests_total",
			Help: "gRPC requests answered, by full method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aeserve_grpc_request_duration_seconds",
			Help:    "Time to answer a gRPC request, by full method.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"method"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register gRPC metrics: %w", err)
		}
	}
	return m, nil
}

// grpcObserve is gRPC's observe, recoverer and limits in one: the request
// ID (x-request-id metadata, or a new one, sent back in the header), the
// deadline, a recovered panic as Internal, and the log line and metrics.
func (s *Server) grpcObserve(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	id := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("x-request-id"); len(v) > 0 {
			id = v[0]
		}
	}
	if !validRequestID(id) {
		id = newRequestID()
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", id))
	ri := &reqInfo{id: id}
	ctx = context.WithValue(ctx, infoKey{}, ri)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	func() {
		defer func() {
			if v := recover(); v != nil {
				s.log.Error().Str("request_id", id).Str("panic", fmt.Sprint(v)).Msg("gRPC handler panicked")
				err = grpcstatus.Error(codes.Internal, "internal: internal error; the request ID identifies it in the server's log")
			}
		}()
		resp, err = handler(ctx, req)
	}()
	code := grpcstatus.Code(err)
	s.grpcMetrics.requests.WithLabelValues(info.FullMethod, code.String()).Inc()
	s.grpcMetrics.duration.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
	ev := s.log.Info()
	switch code {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		ev = s.log.Error()
	default:
		if grpcProbes[info.FullMethod] {
			ev = s.log.Debug() // as the HTTP probes (observe)
		} else if code != codes.OK {
			ev = s.log.Warn()
		}
	}
	modelName := ""
	if ri.model != nil {
		modelName = ri.model.name
	}
	ev = ev.Str("request_id", id).Str("method", "gRPC").Str("route", info.FullMethod).Str("code", code.String()).
		Dur("latency", time.Since(start)).Int("images", ri.images).Str("model", modelName)
	if err != nil {
		ev = ev.Str("detail", grpcstatus.Convert(err).Message())
	}
	ev.Msg("request")
	return resp, err
}

// grpcProbes are the gRPC methods that probes call, logged at debug.
var grpcProbes = map[string]bool{
	"/grpc.health.v1.Health/Check":                true,
	"/inference.GRPCInferenceService/ServerLive":  true,
	"/inference.GRPCInferenceService/ServerReady": true,
}

// grpcServing flips the health service's status with the server's.
func (s *Server) grpcServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, svc := range []string{"", inference.GRPCInferenceService_ServiceDesc.ServiceName} {
		s.grpcHealth.SetServingStatus(svc, st)
	}
}

// errGRPCStopped is the error a stopped gRPC server's Serve returns, which
// is a clean stop.
var errGRPCStopped = grpc.ErrServerStopped

func isGRPCStopped(err error) bool { return err == nil || errors.Is(err, errGRPCStopped) }

// newGRPCHealth starts NOT_SERVING: Load makes it SERVING.
func newGRPCHealth() *health.Server {
	h := health.NewServer()
	for _, svc := range []string{"", inference.GRPCInferenceService_ServiceDesc.ServiceName} {
		h.SetServingStatus(svc, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	return h
}
