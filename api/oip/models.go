package oip

import (
	"context"
	"fmt"
	"strings"

	"github.com/aeserve/aeserve/api"
)

// The helpers below run aeserve's stages on 28×28 digits given as pixels:
// n images are n×784 float32 values in [0, 1], row-major, white (1) on
// black (0) as in MNIST. They take the base model's name ("conv") and call
// its stage's V2 model ("conv.encoder", "conv.decoder", "conv"); a
// classifier's V2 model is its name. Client and GRPCClient have the same
// helpers.

// imageLen is the number of pixels of one image.
const imageLen = 28 * 28

// inferrer is what the helpers need of a transport.
type inferrer interface {
	Infer(ctx context.Context, name string, req *InferRequest, opts InferOptions) (*InferResponse, error)
}

// Encode runs model's encoder (V2 model "<model>.encoder") on the images
// and returns their latent, a row per image, as api.Client.Encode does: its
// Fingerprint comes from the output's parameters, and it marshals into the
// binary latent format that /v1/decode and Decode take.
func (c *Client) Encode(ctx context.Context, model string, pixels []float32, opts InferOptions) (*api.Latent, error) {
	return encode(ctx, c, model, pixels, opts)
}

// Decode runs a decoder on a latent and returns n×784 pixels, one image per
// row. The model is model's decoder, or if model is "" that of l.Model (a
// binary latent has none: name its model). The latent's fingerprint goes
// with it, and the server refuses a latent of other weights (400,
// InvalidArgument).
func (c *Client) Decode(ctx context.Context, model string, l *api.Latent, opts InferOptions) ([]float32, error) {
	return decode(ctx, c, model, l, opts)
}

// Reconstruct runs the whole autoencoder model (V2 model "<model>") on the
// images and returns what comes out, n×784 pixels; with a denoising model,
// this is denoising.
func (c *Client) Reconstruct(ctx context.Context, model string, pixels []float32, opts InferOptions) ([]float32, error) {
	return reconstruct(ctx, c, model, pixels, opts)
}

// Classify runs classifier model on the images and returns one result per
// image: the digit and the ten probabilities, with the model's name and
// fingerprint, as api.Client.Classify does.
func (c *Client) Classify(ctx context.Context, model string, pixels []float32, opts InferOptions) (*api.Classifications, error) {
	return classify(ctx, c, model, pixels, opts)
}

// Encode is Client.Encode over gRPC.
func (g *GRPCClient) Encode(ctx context.Context, model string, pixels []float32, opts InferOptions) (*api.Latent, error) {
	return encode(ctx, g, model, pixels, opts)
}

// Decode is Client.Decode over gRPC.
func (g *GRPCClient) Decode(ctx context.Context, model string, l *api.Latent, opts InferOptions) ([]float32, error) {
	return decode(ctx, g, model, l, opts)
}

// Reconstruct is Client.Reconstruct over gRPC.
func (g *GRPCClient) Reconstruct(ctx context.Context, model string, pixels []float32, opts InferOptions) ([]float32, error) {
	return reconstruct(ctx, g, model, pixels, opts)
}

// Classify is Client.Classify over gRPC.
func (g *GRPCClient) Classify(ctx context.Context, model string, pixels []float32, opts InferOptions) (*api.Classifications, error) {
	return classify(ctx, g, model, pixels, opts)
}

// images is the input tensor of n images, [n, 1, 28, 28].
func images(pixels []float32) (Tensor, int, error) {
	if len(pixels) == 0 || len(pixels)%imageLen != 0 {
		return Tensor{}, 0, fmt.Errorf("oip: %d pixels are not a whole number of 28×28 images", len(pixels))
	}
	n := len(pixels) / imageLen
	return Tensor{Name: TensorImages, Datatype: FP32, Shape: []int64{int64(n), 1, 28, 28}, FP32: pixels}, n, nil
}

// output is the response's output name, checked: of datatype dt, with n
// rows of per values each.
func output(res *InferResponse, name, dt string, n, per int) (*Tensor, error) {
	t := res.Output(name)
	if t == nil {
		return nil, fmt.Errorf("oip: %s answered without output %q", res.ModelName, name)
	}
	if t.Datatype != dt {
		return nil, fmt.Errorf("oip: %s: output %q is %s, want %s", res.ModelName, name, t.Datatype, dt)
	}
	if len(t.Shape) < 1 || t.Shape[0] != int64(n) || t.elements() != n*per {
		return nil, fmt.Errorf("oip: %s: output %q of shape %v and %d values for %d items", res.ModelName, name, t.Shape, t.elements(), n)
	}
	return t, nil
}

func encode(ctx context.Context, c inferrer, model string, pixels []float32, opts InferOptions) (*api.Latent, error) {
	if model == "" {
		return nil, errNoModel
	}
	in, n, err := images(pixels)
	if err != nil {
		return nil, err
	}
	res, err := c.Infer(ctx, model+".encoder", &InferRequest{Inputs: []Tensor{in}}, opts)
	if err != nil {
		return nil, err
	}
	t := res.Output(TensorLatent)
	if t == nil || t.Datatype != FP32 || len(t.Shape) < 2 || t.Shape[0] != int64(n) {
		return nil, fmt.Errorf("oip: %s did not answer a latent of %d rows", res.ModelName, n)
	}
	l := &api.Latent{Model: model, Fingerprint: t.Parameters.Str(ParamFingerprint), DType: api.DTypeFloat32, Data: t.FP32}
	if l.Fingerprint == "" {
		l.Fingerprint = res.ModelVersion // a model's only version is its fingerprint
	}
	for _, d := range t.Shape {
		l.Shape = append(l.Shape, int(d))
	}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("oip: %s: %w", res.ModelName, err)
	}
	return l, nil
}

func decode(ctx context.Context, c inferrer, model string, l *api.Latent, opts InferOptions) ([]float32, error) {
	if l == nil {
		return nil, fmt.Errorf("oip: decode: nil latent")
	}
	if model == "" {
		model = l.Model
	}
	if model == "" {
		return nil, fmt.Errorf("oip: decode: the latent names no model (a binary latent has only its fingerprint, %s): name the model", l.Fingerprint)
	}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("oip: decode: %w", err)
	}
	if len(l.Shape) < 2 {
		return nil, fmt.Errorf("oip: decode: latent of shape %v has no batch dimension", l.Shape)
	}
	in := Tensor{Name: TensorLatent, Datatype: FP32, Parameters: Parameters{ParamFingerprint: l.Fingerprint}, FP32: l.Data}
	for _, d := range l.Shape {
		in.Shape = append(in.Shape, int64(d))
	}
	res, err := c.Infer(ctx, model+".decoder", &InferRequest{Inputs: []Tensor{in}}, opts)
	if err != nil {
		return nil, err
	}
	t, err := output(res, TensorImages, FP32, l.Shape[0], imageLen)
	if err != nil {
		return nil, err
	}
	return t.FP32, nil
}

func reconstruct(ctx context.Context, c inferrer, model string, pixels []float32, opts InferOptions) ([]float32, error) {
	if model == "" {
		return nil, errNoModel
	}
	in, n, err := images(pixels)
	if err != nil {
		return nil, err
	}
	res, err := c.Infer(ctx, model, &InferRequest{Inputs: []Tensor{in}}, opts)
	if err != nil {
		return nil, err
	}
	t, err := output(res, TensorImages, FP32, n, imageLen)
	if err != nil {
		return nil, err
	}
	return t.FP32, nil
}

func classify(ctx context.Context, c inferrer, model string, pixels []float32, opts InferOptions) (*api.Classifications, error) {
	if model == "" {
		return nil, errNoModel
	}
	in, n, err := images(pixels)
	if err != nil {
		return nil, err
	}
	res, err := c.Infer(ctx, model, &InferRequest{Inputs: []Tensor{in}}, opts)
	if err != nil {
		return nil, err
	}
	pt := res.Output(TensorProbabilities)
	if pt == nil {
		var names []string
		for _, o := range res.Outputs {
			names = append(names, o.Name)
		}
		return nil, fmt.Errorf("oip: %s is not a classifier: it answered %s, not %s", res.ModelName, strings.Join(names, ", "), TensorProbabilities)
	}
	if len(pt.Shape) != 2 || pt.Shape[1] < 1 {
		return nil, fmt.Errorf("oip: %s: probabilities of shape %v, not [N, classes]", res.ModelName, pt.Shape)
	}
	k := int(pt.Shape[1])
	if pt, err = output(res, TensorProbabilities, FP32, n, k); err != nil {
		return nil, err
	}
	dt, err := output(res, TensorDigit, INT64, n, 1)
	if err != nil {
		return nil, err
	}
	out := &api.Classifications{Model: res.ModelName, Fingerprint: res.ModelVersion, Results: make([]api.Result, n)}
	for i := range out.Results {
		out.Results[i] = api.Result{Digit: int(dt.INT64[i]), Probabilities: pt.FP32[i*k : (i+1)*k : (i+1)*k]}
	}
	return out, nil
}
