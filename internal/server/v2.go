package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/aeserve/aeserve/internal/model"
)

// The Open Inference Protocol (V2), over HTTP/REST: the protocol KServe,
// Triton, MLServer and Seldon speak, so that their clients, gateways and
// dashboards work with aeserve unchanged.
//
// Each runnable stage of a model is a V2 model of its own: "conv" is the
// full autoencoder (or, for a classifier, the classifier), "conv.encoder"
// and "conv.decoder" its halves (and "vae.posterior" a Gaussian code's
// mean and log-variance). A model's only version is its weights'
// fingerprint. Every infer goes through the same batchers, limits,
// deadlines, metrics and request log as /v1; only the error body differs
// ({"error": "..."}, which writeProblem writes for /v2 paths).

// HeaderInferenceHeaderLength is the binary tensor data extension's header:
// the length of the JSON part of a body whose tensors follow in binary.
const HeaderInferenceHeaderLength = "Inference-Header-Content-Length"

// V2 names: the platform, the extension, the datatype and the tensors.
const (
	v2Platform        = "aeserve"
	v2ExtensionBinary = "binary_tensor_data"
	v2FP32            = "FP32"
	v2INT64           = "INT64"
	v2TensorImages    = "images"
	v2TensorLatent    = "latent"
	v2TensorPosterior = "posterior" // a Gaussian code's [N, 2, L]: means, then log-variances
	v2TensorProbs     = "probabilities"
	v2TensorDigit     = "digit"
)

// Parameters the server honours; any other is refused, naming it.
const (
	v2ParamBinaryDataOutput = "binary_data_output" // request: every output in binary
	v2ParamBinaryDataSize   = "binary_data_size"   // input: bytes of its binary data
	v2ParamBinaryData       = "binary_data"        // requested output: send it in binary
	v2ParamFingerprint      = "fingerprint"        // decoder input: the weights the latent came from
)

// v2Name is the V2 model name of stage h of model base.
func v2Name(base string, h model.Half) string {
	switch h {
	case model.Full, model.Classifier:
		return base
	}
	return base + "." + string(h)
}

// v2Target is what a V2 model name resolves to: a served model's stage.
type v2Target struct {
	name string // the V2 name
	sv   *served
	half model.Half
}

// v2Lookup resolves a V2 model name (and version, if given) to a stage
// this server runs. A stage of another role's is 404 naming the role; a
// version other than the weights' fingerprint is 404 too.
func (s *Server) v2Lookup(name, version string) (*v2Target, error) {
	set, err := s.loaded()
	if err != nil {
		return nil, err
	}
	base, stage, split := strings.Cut(name, ".")
	sv := set.byName[base]
	if sv == nil {
		return nil, problemf(http.StatusNotFound, kindUnknownModel, "no model named %q (have %s)", name, strings.Join(s.v2Names(set), ", "))
	}
	h := model.Full
	if sv.m.Arch.Task == model.TaskClassifier {
		h = model.Classifier
	}
	if split {
		// Any stage of the architecture but the whole: encoder and
		// decoder, and a Gaussian code's posterior.
		h = model.Half(stage)
		if h == model.Full || h == model.Classifier || !slices.Contains(sv.m.Arch.Runnable(), h) {
			return nil, problemf(http.StatusNotFound, kindUnknownModel, "no model named %q (have %s)", name, strings.Join(s.v2Names(set), ", "))
		}
	}
	if sv.batchers[h] == nil {
		return nil, problemf(http.StatusNotFound, kindNotServedByRole, "model %q is not served by this server, which runs role %s (it serves %s)",
			name, s.cfg.Role, strings.Join(s.v2Names(set), ", "))
	}
	if version != "" && version != sv.fp {
		return nil, problemf(http.StatusNotFound, kindUnknownModel, "model %q has no version %q; its only version is its weights' fingerprint, %s",
			name, version, sv.fp)
	}
	return &v2Target{name: name, sv: sv, half: h}, nil
}

// v2Names lists the V2 models this server serves, sorted.
func (s *Server) v2Names(set *modelSet) []string {
	var names []string
	for _, n := range set.names {
		sv := set.byName[n]
		for _, h := range sv.m.Arch.Runnable() {
			if sv.batchers[h] != nil {
				names = append(names, v2Name(n, h))
			}
		}
	}
	slices.Sort(names)
	return names
}

// v2Tensor is a tensor's metadata, and in requests and responses its data.
type v2TensorMeta struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

type v2ModelMetadata struct {
	Name     string         `json:"name"`
	Versions []string       `json:"versions"`
	Platform string         `json:"platform"`
	Inputs   []v2TensorMeta `json:"inputs"`
	Outputs  []v2TensorMeta `json:"outputs"`
}

type v2ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// signature is a V2 model's input and its outputs, per item: the stage's
// shapes, under the names clients use.
func (t *v2Target) inputMeta() v2TensorMeta {
	a := t.sv.m.Arch
	name := v2TensorImages
	if t.half == model.Decoder {
		name = v2TensorLatent
	}
	return v2TensorMeta{Name: name, Datatype: v2FP32, Shape: batched(a.InShape(t.half))}
}

func (t *v2Target) outputMetas() []v2TensorMeta {
	a := t.sv.m.Arch
	switch t.half {
	case model.Encoder:
		return []v2TensorMeta{{Name: v2TensorLatent, Datatype: v2FP32, Shape: batched(a.OutShape(t.half))}}
	case model.Posterior:
		return []v2TensorMeta{{Name: v2TensorPosterior, Datatype: v2FP32, Shape: batched(a.OutShape(t.half))}}
	case model.Classifier:
		return []v2TensorMeta{
			{Name: v2TensorProbs, Datatype: v2FP32, Shape: batched(a.OutShape(t.half))},
			{Name: v2TensorDigit, Datatype: v2INT64, Shape: []int64{-1}},
		}
	}
	return []v2TensorMeta{{Name: v2TensorImages, Datatype: v2FP32, Shape: batched(a.OutShape(t.half))}}
}

func batched(shape []int) []int64 {
	out := []int64{-1}
	for _, d := range shape {
		out = append(out, int64(d))
	}
	return out
}

// ---- inference, whatever the transport ----

// v2Call is one inference request, as REST (v2rest.go) and gRPC
// (v2grpc.go) both give it.
type v2Call struct {
	ID      string
	Params  v2Params
	Inputs  []v2CallInput
	Outputs []v2CallOutput // those asked for; none means all
}

// v2Params are parameters with their values: bool, int64, float64 or string.
type v2Params map[string]any

type v2CallInput struct {
	Name     string
	Datatype string
	Shape    []int64
	Params   v2Params
	// The data, in one of three forms: JSON (REST), typed FP32 contents
	// (gRPC), or raw little-endian bytes (REST's binary extension, gRPC's
	// raw_input_contents).
	JSON   json.RawMessage
	FP32   []float32
	Raw    []byte
	HasRaw bool
}

type v2CallOutput struct {
	Name   string
	Params v2Params
}

// v2Result is an answer, rendered by the transport.
type v2Result struct {
	Model, Version, ID string
	Outputs            []v2ResultOutput
}

type v2ResultOutput struct {
	Name     string
	Datatype string
	Shape    []int64
	FP32     []float32 // datatype FP32
	INT64    []int64   // datatype INT64
	Raw      bool      // send as binary (REST) or raw_output_contents (gRPC)
	Params   v2Params
}

// v2Run checks a call against the model, runs it through the stage's
// batcher (the same as /v1's) and returns its outputs.
func (s *Server) v2Run(ctx context.Context, t *v2Target, call *v2Call) (*v2Result, error) {
	if err := call.Params.allow("request", v2ParamBinaryDataOutput); err != nil {
		return nil, err
	}
	rawAll, err := call.Params.boolean("request", v2ParamBinaryDataOutput)
	if err != nil {
		return nil, err
	}
	in, err := s.v2Input(t, call)
	if err != nil {
		return nil, err
	}
	wanted, err := t.v2Outputs(call, rawAll)
	if err != nil {
		return nil, err
	}
	if t.half == model.Decoder && in.fingerprint != "" && in.fingerprint != t.sv.fp {
		return nil, malformed("input %q: parameters.fingerprint %s is not the fingerprint of model %s's weights, %s: the latent came from other weights",
			v2TensorLatent, in.fingerprint, t.sv.name, t.sv.fp)
	}
	infoOf(ctx).images = in.n
	release, err := s.reserve(t.sv, t.half, in.n)
	if err != nil {
		return nil, err
	}
	release() // the values are already decoded: nothing lies between admission and the queue
	out, err := t.sv.batchers[t.half].Do(ctx, in.data, in.n)
	if err != nil {
		return nil, err
	}
	if t.half == model.Decoder {
		// As /v1/decode: finite latents can still overflow the decoder.
		for i := range in.n {
			if !allFinite(out[i*model.ImageLen : (i+1)*model.ImageLen]) {
				return nil, malformed("item %d: the latent's values are too large to decode: the output is not finite", i)
			}
		}
	}
	res := &v2Result{Model: t.name, Version: t.sv.fp, ID: call.ID}
	per := t.sv.m.Arch.OutLen(t.half)
	for _, w := range wanted {
		o := v2ResultOutput{Name: w.meta.Name, Datatype: w.meta.Datatype, Shape: slices.Clone(w.meta.Shape), Raw: w.raw}
		o.Shape[0] = int64(in.n)
		if w.meta.Name == v2TensorDigit {
			o.INT64 = make([]int64, in.n)
			for i := range o.INT64 {
				o.INT64[i] = int64(argmax(out[i*per : (i+1)*per]))
			}
		} else {
			o.FP32 = out
		}
		if t.half == model.Encoder || t.half == model.Posterior {
			// The latent names the weights it came from, so that a decoder
			// can refuse it if it is not theirs.
			o.Params = v2Params{v2ParamFingerprint: t.sv.fp}
		}
		res.Outputs = append(res.Outputs, o)
	}
	return res, nil
}

// v2Input is a validated input: n items of values, in the stage's order.
type v2Input struct {
	n           int
	data        []float32
	fingerprint string // the decoder input's parameter, if given
}

// v2Wanted is one output to send, in the order asked (or the model's).
type v2Wanted struct {
	meta v2TensorMeta
	raw  bool
}

// v2Input checks the call's one input against the stage and returns its
// values: name, datatype, parameters, shape, data (flat or nested JSON,
// typed contents or raw bytes, whose count or size must match the shape),
// finite, and in [0, 1] for images.
func (s *Server) v2Input(t *v2Target, call *v2Call) (*v2Input, error) {
	meta := t.inputMeta()
	if len(call.Inputs) != 1 {
		return nil, malformed("%d inputs; model %s takes exactly one, %q", len(call.Inputs), t.name, meta.Name)
	}
	ci := call.Inputs[0]
	if ci.Name != meta.Name {
		return nil, malformed("unknown input %q: model %s takes one input, %q", ci.Name, t.name, meta.Name)
	}
	if ci.Datatype != v2FP32 {
		return nil, malformed("input %q: datatype %q; model %s takes %s", ci.Name, ci.Datatype, t.name, v2FP32)
	}
	where := fmt.Sprintf("input %q", ci.Name)
	allowed := []string{v2ParamBinaryDataSize}
	if t.half == model.Decoder {
		allowed = append(allowed, v2ParamFingerprint)
	}
	if err := ci.Params.allow(where, allowed...); err != nil {
		return nil, err
	}
	in := &v2Input{}
	var err error
	if in.fingerprint, err = ci.Params.str(where, v2ParamFingerprint); err != nil {
		return nil, err
	}
	if in.n, err = t.v2Items(ci.Shape); err != nil {
		return nil, err
	}
	if in.n > s.cfg.MaxImages {
		return nil, tooLarge("%s holds %d items, more than %d per request", where, in.n, s.cfg.MaxImages)
	}
	per := t.sv.m.Arch.InLen(t.half)
	want := in.n * per
	forms := 0
	for _, has := range []bool{len(ci.JSON) > 0, ci.FP32 != nil, ci.HasRaw} {
		if has {
			forms++
		}
	}
	switch {
	case forms > 1:
		return nil, malformed("%s gives its data in more than one form; give one", where)
	case ci.HasRaw:
		if len(ci.Raw) != 4*want {
			return nil, malformed("%s: %d bytes of raw data, but shape %v of FP32 needs %d", where, len(ci.Raw), ci.Shape, 4*want)
		}
		in.data = make([]float32, want)
		for i := range in.data {
			in.data[i] = math.Float32frombits(binary.LittleEndian.Uint32(ci.Raw[4*i:]))
		}
	case ci.FP32 != nil:
		if len(ci.FP32) != want {
			return nil, malformed("%s: %d values, the shape gives %d", where, len(ci.FP32), want)
		}
		in.data = slices.Clone(ci.FP32)
	default:
		if in.data, err = v2Data(ci.JSON, want); err != nil {
			return nil, malformed("%s: %v", where, err)
		}
	}
	for i, v := range in.data {
		f := float64(v)
		switch {
		case math.IsNaN(f) || math.IsInf(f, 0):
			return nil, malformed("%s: value %d (item %d) is %v; values must be finite", where, i, i/per, v)
		case t.half != model.Decoder && (v < 0 || v > 1):
			return nil, malformed("%s: value %d (item %d) is %v; image values must be in [0, 1]", where, i, i/per, v)
		}
	}
	return in, nil
}

// v2Items checks an input shape against the stage's and returns the batch
// size. Images come as [N, 1, 28, 28] or flat [N, 784]; a latent in the
// model's latent shape.
func (t *v2Target) v2Items(shape []int64) (int, error) {
	per := t.sv.m.Arch.InShape(t.half)
	accepted := [][]int{per}
	if t.half != model.Decoder {
		accepted = append(accepted, []int{prodInts(per)})
	}
	for _, d := range shape {
		if d < 0 {
			return 0, malformed("shape %v: dimensions must not be negative", shape)
		}
	}
	for _, a := range accepted {
		if len(shape) != 1+len(a) {
			continue
		}
		ok := true
		for i, d := range a {
			ok = ok && shape[i+1] == int64(d)
		}
		if ok {
			if shape[0] < 1 || shape[0] > math.MaxInt32 {
				return 0, malformed("shape %v: the batch dimension must be between 1 and %d", shape, math.MaxInt32)
			}
			return int(shape[0]), nil
		}
	}
	var want []string
	for _, a := range accepted {
		want = append(want, "[N, "+joinInts(a)+"]")
	}
	return 0, malformed("shape %v: model %s takes %s", shape, t.name, strings.Join(want, " or "))
}

func prodInts(v []int) int {
	p := 1
	for _, x := range v {
		p *= x
	}
	return p
}

// v2Outputs resolves the requested outputs (all, in the model's order, if
// none are named) and whether each goes back raw.
func (t *v2Target) v2Outputs(call *v2Call, rawAll bool) ([]v2Wanted, error) {
	metas := t.outputMetas()
	if len(call.Outputs) == 0 {
		w := make([]v2Wanted, len(metas))
		for i, m := range metas {
			w[i] = v2Wanted{meta: m, raw: rawAll}
		}
		return w, nil
	}
	var names []string
	for _, m := range metas {
		names = append(names, m.Name)
	}
	var w []v2Wanted
	for _, co := range call.Outputs {
		i := slices.Index(names, co.Name)
		if i < 0 {
			return nil, malformed("unknown output %q: model %s has %s", co.Name, t.name, strings.Join(names, ", "))
		}
		if slices.ContainsFunc(w, func(x v2Wanted) bool { return x.meta.Name == co.Name }) {
			return nil, malformed("output %q is requested twice", co.Name)
		}
		where := fmt.Sprintf("output %q", co.Name)
		if err := co.Params.allow(where, v2ParamBinaryData); err != nil {
			return nil, err
		}
		raw, err := co.Params.boolean(where, v2ParamBinaryData)
		if err != nil {
			return nil, err
		}
		if _, given := co.Params[v2ParamBinaryData]; !given {
			raw = rawAll
		}
		w = append(w, v2Wanted{meta: metas[i], raw: raw})
	}
	return w, nil
}

// allow refuses parameters other than those allowed, naming the first.
func (p v2Params) allow(where string, allowed ...string) error {
	var unknown []string
	for k := range p {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return malformed("%s: unknown parameter %q (the server honours %s there)", where, unknown[0], strings.Join(allowed, ", "))
}

func (p v2Params) boolean(where, name string) (bool, error) {
	v, ok := p[name]
	if !ok {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, malformed("%s: parameter %s must be a boolean, not %v", where, name, v)
	}
	return b, nil
}

func (p v2Params) integer(where, name string) (int64, bool, error) {
	v, ok := p[name]
	if !ok {
		return 0, false, nil
	}
	switch x := v.(type) {
	case int64:
		if x >= 0 {
			return x, true, nil
		}
	case float64:
		if x >= 0 && x == math.Trunc(x) && x < 1<<53 {
			return int64(x), true, nil
		}
	}
	return 0, false, malformed("%s: parameter %s must be a non-negative integer, not %v", where, name, v)
}

func (p v2Params) str(where, name string) (string, error) {
	v, ok := p[name]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", malformed("%s: parameter %s must be a string, not %v", where, name, v)
	}
	return s, nil
}

// v2Data reads a JSON tensor's data, flat or nested to any depth, as
// exactly want numbers. Nesting is taken in row-major order, as the
// protocol allows; the count must still match the shape. The JSON decoder
// has already checked that raw is well-formed JSON, so this scans it by
// hand: decoding 784 numbers a request through json.Decoder's tokens cost
// more than the forward pass.
func v2Data(raw json.RawMessage, want int) ([]float32, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, errors.New("no data (and no parameters.binary_data_size)")
	}
	if raw[0] != '[' {
		return nil, fmt.Errorf("data is %s, not an array of numbers", jsonKind(raw))
	}
	out := make([]float32, 0, want)
	for i := 0; i < len(raw); {
		switch c := raw[i]; {
		case c == '[' || c == ']' || c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '-' || '0' <= c && c <= '9':
			j := i
			for j < len(raw) && isNumberByte(raw[j]) {
				j++
			}
			if len(out) == want {
				return nil, fmt.Errorf("data holds more than the %d numbers the shape gives", want)
			}
			f, err := strconv.ParseFloat(string(raw[i:j]), 32)
			if err != nil && !errors.Is(err, strconv.ErrRange) { // ErrRange comes with ±Inf, refused as not finite
				return nil, fmt.Errorf("data[%d]: %v", len(out), err)
			}
			out = append(out, float32(f))
			i = j
		default:
			return nil, fmt.Errorf("data[%d] is %s, not a number", len(out), jsonKind(raw[i:]))
		}
	}
	if len(out) != want {
		return nil, fmt.Errorf("data holds %d numbers, the shape gives %d", len(out), want)
	}
	return out, nil
}

// v2Ready reports, as an error, why the server is not ready for inference.
func (s *Server) v2NotReady() error {
	if _, err := s.readyz(nil, nil); err != nil {
		return err
	}
	return nil
}
