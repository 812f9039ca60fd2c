package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/api/oip"
	"github.com/aeserve/aeserve/internal/digit"
)

// With --v2 (or --grpc ADDR) the commands speak the Open Inference Protocol
// (V2) instead of /v1: aectl reads the PNGs itself, sends their pixels to
// the stage's V2 model and writes what comes back as /v1 would have, the
// same files byte for byte.
//
//	encode        <model>.encoder   → the binary (or JSON) latent, fingerprint from the output's parameters
//	decode        <model>.decoder   the latent's fingerprint travels with it, and is checked
//	reconstruct   <model>
//	denoise       <model>           (default denoise)
//	classify      the classifier; --denoise runs the denoiser's <model> first
//	models        server metadata and every V2 model's metadata
//
// V2 has no default model, so the commands name the server's defaults.

// The server's default models (internal/server's DefaultModel,
// DefaultDenoiseModel and DefaultClassifyModel), which /v1 applies itself.
const (
	defaultModel      = "conv"
	defaultDenoiser   = "denoise"
	defaultClassifier = "classifier"
)

// oipClient is what both V2 transports, *oip.Client and *oip.GRPCClient, do.
type oipClient interface {
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
	_ oipClient = (*oip.Client)(nil)
	_ oipClient = (*oip.GRPCClient)(nil)
)

// v2Service is the service over V2.
type v2Service struct {
	c oipClient
	// v1 is the /v1 API at --server, for what V2 cannot say: which models
	// there are (models), and which model made a binary latent (decode).
	v1   *api.Client
	conn *grpc.ClientConn // the gRPC connection, if any
}

var _ service = (*v2Service)(nil)

// binary is how aectl's tensors travel: exact and compact, both ways.
var binary = oip.InferOptions{BinaryInputs: true, BinaryOutputs: true}

// newV2Service speaks V2 over REST at --server, or over gRPC at --grpc if
// given (plaintext, as aeserve's gRPC listener serves without TLS, or TLS
// with --grpc-tls), with the token if any.
func newV2Service(cm *common) (*v2Service, error) {
	s := &v2Service{v1: &api.Client{BaseURL: cm.server, HTTP: cm.http, Token: cm.token, MaxAttempts: 1}}
	if cm.grpc == "" {
		s.c = &oip.Client{BaseURL: cm.server, HTTP: cm.http, Token: cm.token}
		return s, nil
	}
	creds := insecure.NewCredentials()
	if cm.grpcTLS {
		tc := cm.tls
		if tc == nil {
			tc = &tls.Config{} // the system's roots
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(cm.grpc, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxInput)))
	if err != nil {
		return nil, err
	}
	g := oip.NewGRPCClient(conn)
	g.Token = cm.token
	s.c, s.conn = g, conn
	return s, nil
}

func (s *v2Service) Close() error {
	if s.conn == nil {
		return nil
	}
	return s.conn.Close()
}

// decodePixels decodes the PNGs as the server would, into one run of 784 values
// per image.
func decodePixels(pngs [][]byte, fit bool) ([]float32, error) {
	px := make([]float32, 0, 28*28*len(pngs))
	for i, b := range pngs {
		p, err := digit.Decode(b, digit.Limits{}, digit.Options{Fit: fit})
		if err != nil {
			return nil, fmt.Errorf("image %d: %s", i, strings.ReplaceAll(err.Error(), "send fit=true", "use --fit"))
		}
		px = append(px, p...)
	}
	return px, nil
}

// encodePNGs encodes n×784 pixels as PNGs, as the server does for /v1.
func encodePNGs(px []float32) ([][]byte, error) {
	var out [][]byte
	for i := 0; i+28*28 <= len(px); i += 28 * 28 {
		b, err := digit.EncodePNG(px[i : i+28*28])
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", len(out), err)
		}
		out = append(out, b)
	}
	return out, nil
}

func or(name, def string) string {
	if name == "" {
		return def
	}
	return name
}

func (s *v2Service) Encode(ctx context.Context, opts api.EncodeOptions, pngs ...[]byte) (*api.Latent, error) {
	px, err := decodePixels(pngs, opts.Fit)
	if err != nil {
		return nil, err
	}
	l, err := s.c.Encode(ctx, or(opts.Model, defaultModel), px, binary)
	if err != nil || opts.Quant == "" || opts.Quant == api.DTypeFloat32 {
		return l, err
	}
	// V2 tensors are FP32: the latent is quantised here, into the same
	// file /v1 would have written.
	return l.Quantize(opts.Quant)
}

func (s *v2Service) Decode(ctx context.Context, l *api.Latent, opts api.DecodeOptions) ([][]byte, error) {
	model := or(opts.Model, l.Model)
	if model == "" {
		var err error
		if model, err = s.modelOf(ctx, l.Fingerprint); err != nil {
			return nil, err
		}
	}
	l, err := l.Dequantize()
	if err != nil {
		return nil, err
	}
	px, err := s.c.Decode(ctx, model, l, binary)
	if err != nil {
		return nil, err
	}
	return encodePNGs(px)
}

// modelOf finds the model whose weights have fingerprint fp in /v1/models,
// since V2 cannot list models and a binary latent names none.
func (s *v2Service) modelOf(ctx context.Context, fp string) (string, error) {
	ml, err := s.v1.Models(ctx)
	if err != nil {
		return "", fmt.Errorf("the latent names no model, and /v1/models at %s, which would say whose fingerprint %s is, did not answer (%v): name the model with --model",
			s.v1.BaseURL, fp, strings.TrimPrefix(err.Error(), "api: "))
	}
	for _, m := range ml.Models {
		if m.Fingerprint == fp {
			return m.Name, nil
		}
	}
	return "", fmt.Errorf("no model of %s has the latent's fingerprint, %s: the latent came from other weights", s.v1.BaseURL, fp)
}

func (s *v2Service) Reconstruct(ctx context.Context, opts api.ImageOptions, pngs ...[]byte) ([][]byte, error) {
	return s.imagesToImages(ctx, or(opts.Model, defaultModel), opts.Fit, pngs)
}

func (s *v2Service) Denoise(ctx context.Context, opts api.ImageOptions, pngs ...[]byte) ([][]byte, error) {
	return s.imagesToImages(ctx, or(opts.Model, defaultDenoiser), opts.Fit, pngs)
}

func (s *v2Service) imagesToImages(ctx context.Context, model string, fit bool, pngs [][]byte) ([][]byte, error) {
	px, err := decodePixels(pngs, fit)
	if err != nil {
		return nil, err
	}
	if px, err = s.c.Reconstruct(ctx, model, px, binary); err != nil {
		return nil, err
	}
	return encodePNGs(px)
}

// Classify is one call, or with Denoise two: the denoiser's full model,
// then the classifier on what it gave, as /v1/classify?denoise=true does
// inside the server. (/v1 also refuses a denoiser not trained on noise;
// V2 cannot tell, so any autoencoder may denoise here.)
func (s *v2Service) Classify(ctx context.Context, opts api.ClassifyOptions, pngs ...[]byte) (*api.Classifications, error) {
	px, err := decodePixels(pngs, opts.Fit)
	if err != nil {
		return nil, err
	}
	var denoiser, denoiserFP string
	if opts.Denoise || opts.Denoiser != "" {
		denoiser = or(opts.Denoiser, defaultDenoiser)
		n := int64(len(pngs))
		res, err := s.c.Infer(ctx, denoiser, &oip.InferRequest{Inputs: []oip.Tensor{{
			Name: oip.TensorImages, Datatype: oip.FP32, Shape: []int64{n, 1, 28, 28}, FP32: px}}}, binary)
		if err != nil {
			return nil, err
		}
		out := res.Output(oip.TensorImages)
		if out == nil || len(out.FP32) != len(px) {
			return nil, fmt.Errorf("denoiser %s did not answer %d images", denoiser, n)
		}
		px, denoiserFP = out.FP32, res.ModelVersion
		for i, v := range px {
			px[i] = min(max(v, 0), 1) // the classifier takes [0, 1]; a sigmoid's output is
		}
	}
	res, err := s.c.Classify(ctx, or(opts.Model, defaultClassifier), px, binary)
	if err != nil {
		return nil, err
	}
	res.Denoiser, res.DenoiserFingerprint = denoiser, denoiserFP
	return res, nil
}

func (s *v2Service) Models(ctx context.Context) (*api.ModelList, error) { return s.v1.Models(ctx) }

func (s *v2Service) Model(ctx context.Context, name string) (*api.ModelInfo, error) {
	return s.v1.Model(ctx, name)
}

// v2Names lists the V2 models of the /v1 catalogue, model by model: the
// stages of each that this server runs, the whole model first.
func v2Names(ml *api.ModelList) []string {
	var names []string
	for _, m := range ml.Models {
		for _, h := range []string{"full", "classifier", "encoder", "decoder"} {
			switch {
			case !slices.Contains(m.Halves, h):
			case h == "full" || h == "classifier":
				names = append(names, m.Name)
			default:
				names = append(names, m.Name+"."+h)
			}
		}
	}
	return names
}

// v2Listing is models --v2 --json's answer.
type v2Listing struct {
	Server *oip.ServerMetadata  `json:"server"`
	Models []*oip.ModelMetadata `json:"models"`
}

// models is `aectl models --v2`: the server's metadata and every V2
// model's, or one model's with its readiness.
func (s *v2Service) models(ctx context.Context, w io.Writer, name string, asJSON bool) error {
	if name != "" {
		mm, err := s.c.ModelMetadata(ctx, name, "")
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(w, mm)
		}
		ready, err := s.c.ModelReady(ctx, name, "")
		if err != nil {
			return err
		}
		return printV2Model(w, mm, ready)
	}
	sm, err := s.c.ServerMetadata(ctx)
	if err != nil {
		return err
	}
	ml, err := s.v1.Models(ctx)
	if err != nil {
		return fmt.Errorf("V2 has no list of models, and /v1/models at %s did not answer (%v); aectl models --v2 NAME describes one model",
			s.v1.BaseURL, strings.TrimPrefix(err.Error(), "api: "))
	}
	out := v2Listing{Server: sm}
	for _, n := range v2Names(ml) {
		mm, err := s.c.ModelMetadata(ctx, n, "")
		if err != nil {
			return err
		}
		out.Models = append(out.Models, mm)
	}
	if asJSON {
		return writeJSON(w, out)
	}
	fmt.Fprintf(w, "%s %s, extensions: %s\n\n", sm.Name, sm.Version, strings.Join(sm.Extensions, ", "))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tVERSION\tINPUT\tOUTPUTS")
	for _, mm := range out.Models {
		var ins, outs []string
		for _, t := range mm.Inputs {
			ins = append(ins, tensorMeta(t))
		}
		for _, t := range mm.Outputs {
			outs = append(outs, tensorMeta(t))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", mm.Name, strings.Join(mm.Versions, ","), strings.Join(ins, ", "), strings.Join(outs, ", "))
	}
	return tw.Flush()
}

// tensorMeta reads like latent FP32 [-1,32,7,7].
func tensorMeta(t oip.TensorMetadata) string {
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = fmt.Sprint(d)
	}
	return fmt.Sprintf("%s %s [%s]", t.Name, t.Datatype, strings.Join(dims, ","))
}

func printV2Model(w io.Writer, mm *oip.ModelMetadata, ready bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", mm.Name)
	fmt.Fprintf(tw, "versions:\t%s\n", strings.Join(mm.Versions, ", "))
	fmt.Fprintf(tw, "platform:\t%s\n", mm.Platform)
	fmt.Fprintf(tw, "ready:\t%s\n", yesNo(ready))
	for _, t := range mm.Inputs {
		fmt.Fprintf(tw, "input:\t%s\n", tensorMeta(t))
	}
	for _, t := range mm.Outputs {
		fmt.Fprintf(tw, "output:\t%s\n", tensorMeta(t))
	}
	return tw.Flush()
}

// describeV2 is the one-line message of an *oip.Error in err's chain, or
// false if there is none.
func describeV2(err error, target string, viaGRPC bool) (string, bool) {
	var e *oip.Error
	if !errors.As(err, &e) {
		return "", false
	}
	msg := strings.TrimPrefix(e.Error(), "oip: ")
	if viaGRPC && e.Kind() == "" && e.Code == codes.Unavailable {
		// gRPC's word for a connection it could not make: "connection
		// error: desc = \"transport: Error while dialing: dial tcp …:
		// connect: connection refused\"" says "connection refused".
		cause := strings.TrimSuffix(e.Message, `"`)
		if i := strings.LastIndex(cause, ": "); i >= 0 {
			cause = cause[i+2:]
		}
		return fmt.Sprintf("cannot reach %s: %s", target, cause), true
	}
	return msg, true
}
