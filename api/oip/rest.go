package oip

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Client speaks the protocol over HTTP/REST. It is safe for concurrent use,
// and its zero value (with BaseURL set) is ready to use.
//
// Any non-2xx answer is returned as an *Error carrying the status and the
// server's {"error"} message. A 503 is retried as api.Client retries it
// (see MaxAttempts); other statuses are returned at once.
type Client struct {
	// BaseURL is the server's root, e.g. "http://localhost:8080" (no /v2).
	BaseURL string
	// HTTP is nil for http.DefaultClient.
	HTTP *http.Client
	// Token, if not empty, is sent with every request as
	// "Authorization: Bearer <Token>" (as api.Client's).
	Token string

	// MaxAttempts is how many times a request is sent while the server
	// answers 503: 0 means api.DefaultMaxAttempts, 1 never retries.
	MaxAttempts int
	// MaxRetryWait is the longest the client waits before one retry: 0
	// means api.DefaultMaxRetryWait. A Retry-After asking for longer makes
	// the client give up at once, returning that 503.
	MaxRetryWait time.Duration
}

// maxResponse bounds what the client reads from a server, as api.Client's.
const maxResponse = 256 << 20

// Media types of REST bodies.
const (
	mediaJSON   = "application/json"
	mediaBinary = "application/octet-stream"
)

// ServerLive reports whether the server is live (GET /v2/health/live).
func (c *Client) ServerLive(ctx context.Context) (bool, error) {
	return c.health(ctx, "/v2/health/live")
}

// ServerReady reports whether the server is ready for inference (GET
// /v2/health/ready). A 400, the protocol's "not ready", is false and no
// error; other failures are errors.
func (c *Client) ServerReady(ctx context.Context) (bool, error) {
	return c.health(ctx, "/v2/health/ready")
}

// ModelReady reports whether a model (at version, if not "") is ready. An
// unknown model or version is a 404 *Error.
func (c *Client) ModelReady(ctx context.Context, name, version string) (bool, error) {
	p, err := modelPath(name, version)
	if err != nil {
		return false, err
	}
	return c.health(ctx, p+"/ready")
}

func (c *Client) health(ctx context.Context, path string) (bool, error) {
	_, err := c.do(ctx, http.MethodGet, path, nil, "", nil)
	if e := (*Error)(nil); errors.As(err, &e) && e.Status == http.StatusBadRequest {
		return false, nil
	}
	return err == nil, err
}

// ServerMetadata is GET /v2: the server's name, version and extensions.
func (c *Client) ServerMetadata(ctx context.Context) (*ServerMetadata, error) {
	a, err := c.do(ctx, http.MethodGet, "/v2", nil, "", nil)
	if err != nil {
		return nil, err
	}
	var sm ServerMetadata
	if err := json.Unmarshal(a.body, &sm); err != nil {
		return nil, fmt.Errorf("oip: server metadata: %w", err)
	}
	return &sm, nil
}

// ModelMetadata describes a model (at version, if not ""): its versions,
// inputs and outputs. An unknown model or version is a 404 *Error.
func (c *Client) ModelMetadata(ctx context.Context, name, version string) (*ModelMetadata, error) {
	p, err := modelPath(name, version)
	if err != nil {
		return nil, err
	}
	a, err := c.do(ctx, http.MethodGet, p, nil, "", nil)
	if err != nil {
		return nil, err
	}
	var mm ModelMetadata
	if err := json.Unmarshal(a.body, &mm); err != nil {
		return nil, fmt.Errorf("oip: model metadata: %w", err)
	}
	return &mm, nil
}

// Infer runs model name on req (POST /v2/models/{name}[/versions/{v}]/infer),
// in JSON or, as opts say, with the binary tensor data extension either way;
// the response is the same. The request is not modified.
func (c *Client) Infer(ctx context.Context, name string, req *InferRequest, opts InferOptions) (*InferResponse, error) {
	p, err := modelPath(name, opts.Version)
	if err != nil {
		return nil, err
	}
	body, binLen, err := marshalREST(req, opts)
	if err != nil {
		return nil, err
	}
	ctype, hdr := mediaJSON, http.Header(nil)
	if binLen >= 0 {
		ctype = mediaBinary
		hdr = http.Header{HeaderInferenceHeaderLength: {strconv.Itoa(binLen)}}
	}
	a, err := c.do(ctx, http.MethodPost, p+"/infer", body, ctype, hdr)
	if err != nil {
		return nil, err
	}
	res, err := unmarshalREST(a)
	if err != nil {
		return nil, fmt.Errorf("oip: %s: %w", name, err)
	}
	return res, nil
}

// modelPath is /v2/models/{name}, with /versions/{version} if given.
func modelPath(name, version string) (string, error) {
	if name == "" {
		return "", errNoModel
	}
	p := "/v2/models/" + url.PathEscape(name)
	if version != "" {
		p += "/versions/" + url.PathEscape(version)
	}
	return p, nil
}

// The protocol's JSON, as this client writes and reads it.
type (
	restRequest struct {
		ID         string       `json:"id,omitempty"`
		Parameters Parameters   `json:"parameters,omitempty"`
		Inputs     []restInput  `json:"inputs"`
		Outputs    []restOutput `json:"outputs,omitempty"`
	}
	restInput struct {
		Name       string     `json:"name"`
		Shape      []int64    `json:"shape"`
		Datatype   string     `json:"datatype"`
		Parameters Parameters `json:"parameters,omitempty"`
		Data       any        `json:"data,omitempty"`
	}
	restOutput struct {
		Name       string     `json:"name"`
		Parameters Parameters `json:"parameters,omitempty"`
	}
	restResponse struct {
		ModelName    string                     `json:"model_name"`
		ModelVersion string                     `json:"model_version"`
		ID           string                     `json:"id"`
		Parameters   map[string]json.RawMessage `json:"parameters"`
		Outputs      []struct {
			Name       string                     `json:"name"`
			Shape      []int64                    `json:"shape"`
			Datatype   string                     `json:"datatype"`
			Parameters map[string]json.RawMessage `json:"parameters"`
			Data       json.RawMessage            `json:"data"`
		} `json:"outputs"`
	}
)

// marshalREST writes a request body: JSON, or under the binary extension
// the JSON followed by each input's data (binLen is then the JSON's length;
// -1 for plain JSON).
func marshalREST(req *InferRequest, opts InferOptions) (body []byte, binLen int, err error) {
	if req == nil {
		return nil, 0, fmt.Errorf("oip: nil request")
	}
	w := restRequest{ID: req.ID, Parameters: req.Parameters}
	if opts.BinaryOutputs {
		w.Parameters = withParam(req.Parameters, paramBinaryDataOutput, true)
	}
	var bin []byte
	for i := range req.Inputs {
		in := &req.Inputs[i]
		if err := in.check(); err != nil {
			return nil, 0, fmt.Errorf("oip: %w", err)
		}
		ri := restInput{Name: in.Name, Shape: in.Shape, Datatype: in.Datatype, Parameters: in.Parameters}
		if ri.Shape == nil {
			ri.Shape = []int64{}
		}
		switch {
		case opts.BinaryInputs:
			raw := rawBytes(in)
			ri.Parameters = withParam(in.Parameters, paramBinaryDataSize, int64(len(raw)))
			bin = append(bin, raw...)
		case in.Datatype == INT64:
			ri.Data = nonNil(in.INT64)
		default:
			for j, v := range in.FP32 {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return nil, 0, fmt.Errorf("oip: input %q: value %d is %v, which JSON cannot carry (BinaryInputs can)", in.Name, j, v)
				}
			}
			ri.Data = nonNil(in.FP32)
		}
		w.Inputs = append(w.Inputs, ri)
	}
	if w.Inputs == nil {
		w.Inputs = []restInput{}
	}
	for _, o := range req.Outputs {
		w.Outputs = append(w.Outputs, restOutput(o))
	}
	js, err := json.Marshal(w)
	if err != nil {
		return nil, 0, fmt.Errorf("oip: encoding the request: %w", err)
	}
	if !opts.BinaryInputs {
		return js, -1, nil
	}
	return append(js, bin...), len(js), nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// withParam is a copy of p with name set to v.
func withParam(p Parameters, name string, v any) Parameters {
	out := make(Parameters, len(p)+1)
	for k, x := range p {
		out[k] = x
	}
	out[name] = v
	return out
}

// unmarshalREST reads an answer: JSON, or JSON and the binary outputs that
// follow it.
func unmarshalREST(a *answer) (*InferResponse, error) {
	js, bin := a.body, []byte(nil)
	if h := a.header.Get(HeaderInferenceHeaderLength); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n < 0 || n > len(a.body) {
			return nil, fmt.Errorf("%s %q does not fit a %d-byte answer", HeaderInferenceHeaderLength, h, len(a.body))
		}
		js, bin = a.body[:n], a.body[n:]
	}
	var w restResponse
	if err := json.Unmarshal(js, &w); err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	res := &InferResponse{ModelName: w.ModelName, ModelVersion: w.ModelVersion, ID: w.ID}
	var err error
	if res.Parameters, err = jsonParams(w.Parameters); err != nil {
		return nil, err
	}
	for _, o := range w.Outputs {
		t := Tensor{Name: o.Name, Datatype: o.Datatype, Shape: o.Shape}
		where := fmt.Sprintf("output %q", o.Name)
		if t.Parameters, err = jsonParams(o.Parameters); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		want, err := product(o.Shape)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if size, has := t.Parameters[paramBinaryDataSize]; has {
			n, ok := size.(int64)
			if !ok || n < 0 || n > int64(len(bin)) {
				return nil, fmt.Errorf("%s: %s %v, with %d bytes of binary data left", where, paramBinaryDataSize, size, len(bin))
			}
			// Transport, not content: the same response either way.
			delete(t.Parameters, paramBinaryDataSize)
			if len(t.Parameters) == 0 {
				t.Parameters = nil
			}
			if err := fromRaw(&t, bin[:n], want); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			bin = bin[n:]
		} else if err := fromJSON(&t, o.Data, want); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		res.Outputs = append(res.Outputs, t)
	}
	if len(bin) > 0 {
		return nil, fmt.Errorf("%d bytes of binary data that no output accounts for", len(bin))
	}
	return res, nil
}

// jsonParams reads parameter values: strings, booleans, and numbers as
// int64 when integral, float64 otherwise.
func jsonParams(raw map[string]json.RawMessage) (Parameters, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	p := make(Parameters, len(raw))
	for k, v := range raw {
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		var x any
		if err := dec.Decode(&x); err != nil {
			return nil, fmt.Errorf("parameter %s: %w", k, err)
		}
		if n, ok := x.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				x = i
			} else if f, err := n.Float64(); err == nil {
				x = f
			} else {
				return nil, fmt.Errorf("parameter %s: %w", k, err)
			}
		}
		p[k] = x
	}
	return p, nil
}

// fromJSON reads a tensor's JSON data, flat or nested (row-major), as
// exactly want values of its datatype.
func fromJSON(t *Tensor, raw json.RawMessage, want int) error {
	if t.Datatype != FP32 && t.Datatype != INT64 {
		return fmt.Errorf("datatype %q is not supported by this client", t.Datatype)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	count, depth := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("data: %w", err)
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '[':
				depth++
			case ']':
				depth--
			default:
				return fmt.Errorf("data is not an array of numbers")
			}
		case json.Number:
			if depth == 0 {
				return fmt.Errorf("data is not an array of numbers")
			}
			if count == want {
				return fmt.Errorf("data holds more than the %d values of shape %v", want, t.Shape)
			}
			if t.Datatype == INT64 {
				i, err := strconv.ParseInt(string(v), 10, 64)
				if err != nil {
					return fmt.Errorf("data[%d]: %w", count, err)
				}
				t.INT64 = append(t.INT64, i)
			} else {
				f, err := strconv.ParseFloat(string(v), 32)
				if err != nil {
					return fmt.Errorf("data[%d]: %w", count, err)
				}
				t.FP32 = append(t.FP32, float32(f))
			}
			count++
		default:
			return fmt.Errorf("data[%d] is %v, not a number", count, tok)
		}
	}
	if count != want {
		return fmt.Errorf("data holds %d values, shape %v gives %d", count, t.Shape, want)
	}
	switch {
	case t.Datatype == INT64 && t.INT64 == nil:
		t.INT64 = []int64{}
	case t.Datatype == FP32 && t.FP32 == nil:
		t.FP32 = []float32{}
	}
	return nil
}

// answer is a 2xx response, read whole.
type answer struct {
	body   []byte
	header http.Header
}

// do sends a request, again while the server answers 503 (every attempt
// sends the same bytes; every model is a pure function of its input), and
// returns a 2xx answer or the last *Error.
func (c *Client) do(ctx context.Context, method, path string, body []byte, ctype string, hdr http.Header) (*answer, error) {
	var a *answer
	err := retry(ctx, c.MaxAttempts, c.MaxRetryWait, method+" "+path, func() error {
		var err error
		a, err = c.once(ctx, method, path, body, ctype, hdr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// once performs one request and returns a 2xx answer, or an *Error.
func (c *Client) once(ctx context.Context, method, path string, body []byte, ctype string, hdr http.Header) (*answer, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, fmt.Errorf("oip: %w", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oip: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("oip: %s %s: reading response: %w", method, path, err)
	}
	if len(b) > maxResponse {
		return nil, fmt.Errorf("oip: %s %s: response larger than %d bytes", method, path, maxResponse)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, restError(resp.StatusCode, errorMessage(resp.Header.Get("Content-Type"), b),
			parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()))
	}
	return &answer{body: b, header: resp.Header}, nil
}

// errorMessage is the protocol's {"error": "…"} or, from a proxy or another
// server, the body's text, shortened.
func errorMessage(ctype string, body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if mt, _, _ := mime.ParseMediaType(ctype); (mt == mediaJSON || mt == "application/problem+json") &&
		json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	if !utf8.Valid(body) {
		return ""
	}
	text := strings.TrimSpace(string(body))
	if n := 512; len(text) > n {
		for !utf8.RuneStart(text[n]) {
			n--
		}
		text = text[:n] + "…"
	}
	return text
}
