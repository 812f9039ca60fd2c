package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/common/version"
)

// The Open Inference Protocol over HTTP/REST: its JSON, and the binary
// tensor data extension (Inference-Header-Content-Length), turned into a
// v2Call and back.

// serverVersion is what /v2 and gRPC's ServerMetadata report.
func serverVersion() string {
	if version.Version == "" {
		return "dev" // a build without the version linked in (tests)
	}
	return version.Version
}

func (s *Server) v2ServerMetadata(*http.Request, query) (*response, error) {
	return jsonResponse(v2ServerMetadata{Name: "aeserve", Version: serverVersion(), Extensions: []string{v2ExtensionBinary}})
}

// v2Live answers 200 with an empty body, as the protocol asks.
func (s *Server) v2Live(*http.Request, query) (*response, error) {
	return &response{}, nil
}

// v2Ready answers 200 when every model is loaded and the server is not
// draining; the protocol says a 4xx means "not ready", so that is 400 here
// (with the reason), unlike /readyz's 503.
func (s *Server) v2Ready(*http.Request, query) (*response, error) {
	if err := s.v2NotReady(); err != nil {
		p := *problemOf(err)
		p.Status, p.RetryAfter = http.StatusBadRequest, 0
		return nil, &p
	}
	return &response{}, nil
}

func (s *Server) v2ModelReady(r *http.Request, _ query) (*response, error) {
	t, err := s.v2Target(r)
	if err != nil {
		return nil, err
	}
	if st := t.sv.batchers[t.half].Stats(); st.Closed {
		p := *shuttingDown()
		p.Status, p.RetryAfter = http.StatusBadRequest, 0
		return nil, &p
	}
	return &response{}, nil
}

func (s *Server) v2ModelMetadata(r *http.Request, _ query) (*response, error) {
	t, err := s.v2Target(r)
	if err != nil {
		return nil, err
	}
	return jsonResponse(t.metadata())
}

func (t *v2Target) metadata() v2ModelMetadata {
	return v2ModelMetadata{Name: t.name, Versions: []string{t.sv.fp}, Platform: v2Platform,
		Inputs: []v2TensorMeta{t.inputMeta()}, Outputs: t.outputMetas()}
}

// v2Target resolves the route's {name} and, on the versioned routes,
// {version}, each percent-decoded once, and records the model for the
// response headers, logs and metrics.
func (s *Server) v2Target(r *http.Request) (*v2Target, error) {
	name, err := url.PathUnescape(chi.URLParam(r, "name"))
	if err != nil {
		name = chi.URLParam(r, "name")
	}
	ver, err := url.PathUnescape(chi.URLParam(r, "version"))
	if err != nil {
		ver = chi.URLParam(r, "version")
	}
	if ver == "" && strings.Contains(r.URL.Path, "/versions/") {
		return nil, malformed("empty model version")
	}
	t, err := s.v2Lookup(name, ver)
	if err != nil {
		return nil, err
	}
	infoOf(r.Context()).model = t.sv
	return t, nil
}

// v2InferRequest is the protocol's $inference_request. Fields the protocol
// does not define are refused (decoded strictly), as are parameters the
// server does not honour (v2Run).
type v2InferRequest struct {
	ID         string                     `json:"id,omitempty"`
	Parameters map[string]json.RawMessage `json:"parameters,omitempty"`
	Inputs     []struct {
		Name       string                     `json:"name"`
		Shape      []int64                    `json:"shape"`
		Datatype   string                     `json:"datatype"`
		Parameters map[string]json.RawMessage `json:"parameters,omitempty"`
		Data       json.RawMessage            `json:"data,omitempty"`
	} `json:"inputs"`
	Outputs []struct {
		Name       string                     `json:"name"`
		Parameters map[string]json.RawMessage `json:"parameters,omitempty"`
	} `json:"outputs,omitempty"`
}

type v2InferResponse struct {
	ModelName    string             `json:"model_name"`
	ModelVersion string             `json:"model_version"`
	ID           string             `json:"id,omitempty"`
	Outputs      []v2ResponseOutput `json:"outputs"`
}

type v2ResponseOutput struct {
	Name       string   `json:"name"`
	Shape      []int64  `json:"shape"`
	Datatype   string   `json:"datatype"`
	Parameters v2Params `json:"parameters,omitempty"`
	Data       any      `json:"data,omitempty"`
}

// fp32JSON marshals FP32 data by hand, each number in its shortest form
// for float32: encoding/json's reflection cost more than the forward pass
// for an image.
type fp32JSON []float32

func (f fp32JSON) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+12*len(f))
	b = append(b, '[')
	for i, v := range f {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(v), 'g', -1, 32)
	}
	return append(b, ']'), nil
}

func (s *Server) v2Infer(r *http.Request, _ query) (*response, error) {
	t, err := s.v2Target(r)
	if err != nil {
		return nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	call, err := v2ParseREST(r, body)
	if err != nil {
		return nil, err
	}
	res, err := s.v2Run(r.Context(), t, call)
	if err != nil {
		return nil, err
	}
	return v2RenderREST(res)
}

// v2ParseREST splits a body into its JSON and, under the binary extension,
// the binary tensor data that follows it, and reads both into a call.
func v2ParseREST(r *http.Request, body []byte) (*v2Call, error) {
	js, bin := body, []byte(nil)
	if h := r.Header.Get(HeaderInferenceHeaderLength); h != "" {
		n, err := strconv.ParseInt(h, 10, 64)
		switch {
		case err != nil || n < 0:
			return nil, malformed("%s %q is not a length in bytes", HeaderInferenceHeaderLength, h)
		case n > int64(len(body)):
			return nil, malformed("%s %d exceeds the body's %d bytes", HeaderInferenceHeaderLength, n, len(body))
		}
		js, bin = body[:n], body[n:]
	}
	var req v2InferRequest
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, malformed("inference request JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed("inference request JSON: data after the object")
	}
	call := &v2Call{ID: req.ID}
	var err error
	if call.Params, err = jsonParams(req.Parameters, "request"); err != nil {
		return nil, err
	}
	for _, ri := range req.Inputs {
		ci := v2CallInput{Name: ri.Name, Datatype: ri.Datatype, Shape: ri.Shape, JSON: ri.Data}
		where := "input " + strconv.Quote(ri.Name)
		if ci.Params, err = jsonParams(ri.Parameters, where); err != nil {
			return nil, err
		}
		// The binary extension: this input's bytes come next after the JSON.
		size, has, err := ci.Params.integer(where, v2ParamBinaryDataSize)
		if err != nil {
			return nil, err
		}
		if has {
			if size > int64(len(bin)) {
				return nil, malformed("%s: parameters.%s is %d but only %d bytes of binary data are left after the JSON",
					where, v2ParamBinaryDataSize, size, len(bin))
			}
			ci.Raw, ci.HasRaw, bin = bin[:size], true, bin[size:]
		}
		call.Inputs = append(call.Inputs, ci)
	}
	if len(bin) > 0 {
		return nil, malformed("%d bytes of binary data follow the JSON beyond what the inputs' parameters.%s account for",
			len(bin), v2ParamBinaryDataSize)
	}
	for _, ro := range req.Outputs {
		co := v2CallOutput{Name: ro.Name}
		if co.Params, err = jsonParams(ro.Parameters, "output "+strconv.Quote(ro.Name)); err != nil {
			return nil, err
		}
		call.Outputs = append(call.Outputs, co)
	}
	return call, nil
}

// jsonParams reads parameter values: a string, a number or a boolean, as
// the protocol allows.
func jsonParams(raw map[string]json.RawMessage, where string) (v2Params, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	p := make(v2Params, len(raw))
	for k, v := range raw {
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return nil, malformed("%s: parameter %s: %v", where, k, err)
		}
		switch x.(type) {
		case string, float64, bool:
			p[k] = x
		default:
			return nil, malformed("%s: parameter %s is %s; parameters are strings, numbers or booleans", where, k, v)
		}
	}
	return p, nil
}

// v2RenderREST writes the answer: JSON, or under the binary extension the
// JSON followed by the binary outputs, in order.
func v2RenderREST(res *v2Result) (*response, error) {
	out := v2InferResponse{ModelName: res.Model, ModelVersion: res.Version, ID: res.ID}
	var bin []byte
	for _, o := range res.Outputs {
		ro := v2ResponseOutput{Name: o.Name, Shape: o.Shape, Datatype: o.Datatype, Parameters: o.Params}
		if !o.Raw {
			if o.INT64 != nil {
				ro.Data = o.INT64
			} else {
				ro.Data = fp32JSON(o.FP32)
			}
			out.Outputs = append(out.Outputs, ro)
			continue
		}
		raw := v2RawBytes(o)
		if ro.Parameters == nil {
			ro.Parameters = v2Params{}
		}
		ro.Parameters[v2ParamBinaryDataSize] = len(raw)
		bin = append(bin, raw...)
		out.Outputs = append(out.Outputs, ro)
	}
	js, err := json.Marshal(out)
	if err != nil {
		return nil, internal("encoding the V2 response", err)
	}
	if bin == nil {
		return &response{contentType: ctJSON, body: append(js, '\n')}, nil
	}
	return &response{contentType: ctBinary, body: append(js, bin...),
		header: http.Header{HeaderInferenceHeaderLength: {strconv.Itoa(len(js))}}}, nil
}

// v2RawBytes is an output's data in little-endian binary.
func v2RawBytes(o v2ResultOutput) []byte {
	if o.INT64 != nil {
		raw := make([]byte, 0, 8*len(o.INT64))
		for _, d := range o.INT64 {
			raw = binary.LittleEndian.AppendUint64(raw, uint64(d))
		}
		return raw
	}
	raw := make([]byte, 0, 4*len(o.FP32))
	for _, v := range o.FP32 {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	return raw
}
