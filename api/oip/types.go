package oip

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

// Datatypes of the protocol that this package carries. aeserve's inputs and
// outputs are FP32, and a classifier's digit is INT64.
const (
	FP32  = "FP32"
	INT64 = "INT64"
)

// Names of aeserve's tensors.
const (
	TensorImages        = "images"        // FP32 [N, 1, 28, 28] (or [N, 784] as input), values in [0, 1]
	TensorLatent        = "latent"        // FP32 [N, …the model's latent shape]
	TensorProbabilities = "probabilities" // FP32 [N, 10]
	TensorDigit         = "digit"         // INT64 [N]
)

// ParamFingerprint is the parameter naming the weights a latent came from:
// an encoder's latent output carries it, and a decoder's latent input may,
// in which case the server refuses a latent of other weights.
const ParamFingerprint = "fingerprint"

// Parameters of the binary tensor data extension, which Client sets and
// reads itself: they never appear in an InferResponse.
const (
	paramBinaryDataSize   = "binary_data_size"
	paramBinaryDataOutput = "binary_data_output"
)

// HeaderInferenceHeaderLength is the binary tensor data extension's header:
// the length of the JSON that starts a body whose tensor data follows in
// binary.
const HeaderInferenceHeaderLength = "Inference-Header-Content-Length"

// Parameters are a request's, a tensor's or a response's parameters. A
// value is a string, a bool, an int64 or (over REST only) a float64; an
// integral JSON number comes back as an int64 whichever transport carried
// it.
type Parameters map[string]any

// Str is the string parameter name, or "" if it is absent or not a string.
func (p Parameters) Str(name string) string {
	s, _ := p[name].(string)
	return s
}

// InferRequest is the protocol's inference request. The model and version
// are arguments of Infer, as they are part of the REST path.
type InferRequest struct {
	ID         string // optional; echoed in the response
	Parameters Parameters
	Inputs     []Tensor
	// Outputs names the outputs wanted, in the order wanted; none means
	// every output of the model, in the model's order.
	Outputs []RequestedOutput
}

// RequestedOutput is one output an InferRequest asks for.
type RequestedOutput struct {
	Name       string
	Parameters Parameters
}

// InferResponse is the protocol's inference response: the model and the
// version (the weights' fingerprint) that answered, and the outputs.
type InferResponse struct {
	ModelName    string
	ModelVersion string
	ID           string
	Parameters   Parameters
	Outputs      []Tensor
}

// Output is the output named name, or nil.
func (r *InferResponse) Output(name string) *Tensor {
	for i := range r.Outputs {
		if r.Outputs[i].Name == name {
			return &r.Outputs[i]
		}
	}
	return nil
}

// Tensor is an input or an output: its data is FP32 for datatype FP32 and
// INT64 for INT64, flat and row-major, whichever encoding carried it.
type Tensor struct {
	Name       string
	Datatype   string
	Shape      []int64
	Parameters Parameters
	FP32       []float32
	INT64      []int64
}

// elements is how many values the tensor holds, from its data.
func (t *Tensor) elements() int {
	if t.Datatype == INT64 {
		return len(t.INT64)
	}
	return len(t.FP32)
}

// check refuses a tensor whose data does not match its datatype, before it
// is sent.
func (t *Tensor) check() error {
	switch t.Datatype {
	case FP32:
		if t.INT64 != nil {
			return fmt.Errorf("input %q: datatype FP32 with INT64 data", t.Name)
		}
	case INT64:
		if t.FP32 != nil {
			return fmt.Errorf("input %q: datatype INT64 with FP32 data", t.Name)
		}
	default:
		return fmt.Errorf("input %q: datatype %q is not supported by this client (use FP32 or INT64)", t.Name, t.Datatype)
	}
	return nil
}

// InferOptions choose how one inference travels. The zero value sends and
// receives plain JSON (typed contents over gRPC), which every server
// understands.
type InferOptions struct {
	// Version pins the model version, the weights' fingerprint: another is a
	// 404 (NotFound). "" lets the server use the model it has.
	Version string
	// BinaryInputs sends the inputs' data after the JSON, under the binary
	// tensor data extension (REST), or as raw_input_contents (gRPC): exact
	// and compact.
	BinaryInputs bool
	// BinaryOutputs asks for every output in binary (binary_data_output).
	// Over gRPC, a server answers raw_output_contents to raw inputs anyway.
	BinaryOutputs bool
}

// ServerMetadata is the answer of GET /v2 (ServerMetadata over gRPC).
type ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// ModelMetadata is the answer of GET /v2/models/{name} (ModelMetadata over
// gRPC). aeserve's models have one version: their weights' fingerprint.
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
}

// TensorMetadata describes one input or output; -1 in Shape is a dimension
// of any size (the batch).
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// Error is a server's refusal: over REST, a non-2xx status and the
// protocol's {"error": "…"} message; over gRPC, a status code and its
// message. Both fields are set whichever transport answered, through the
// protocol's mapping (400 InvalidArgument, 404 NotFound, 503 Unavailable,
// …), so that a caller can test either. A failure to reach the server over
// gRPC is an Error too (Unavailable), as gRPC reports it.
type Error struct {
	Status  int        // HTTP status
	Code    codes.Code // gRPC status code
	Message string     // aeserve's read "<kind>: <detail>" (see Kind)
	// RetryAfter is how long a REST server asked the client to wait before
	// trying again (Retry-After, with a 503); 0 if it did not say.
	RetryAfter time.Duration

	grpc bool // which transport answered, for Error()
}

// Error reads "404 Not Found: unknown-model: no model named …" for REST and
// "NotFound: unknown-model: no model named …" for gRPC.
func (e *Error) Error() string {
	head := strconv.Itoa(e.Status) + " " + http.StatusText(e.Status)
	if e.grpc {
		head = e.Code.String()
	}
	if e.Message == "" {
		return "oip: " + head
	}
	return "oip: " + head + ": " + e.Message
}

// Kind is aeserve's word for the cause, the start of its messages:
// "unknown-model", "malformed", "queue-full", … ("" for another server's
// message).
func (e *Error) Kind() string {
	k, _, ok := strings.Cut(e.Message, ": ")
	if !ok || k == "" {
		return ""
	}
	for _, c := range k {
		if (c < 'a' || c > 'z') && c != '-' {
			return ""
		}
	}
	return k
}

// GRPCStatus makes an Error a gRPC status for status.FromError and
// status.Code, whichever transport answered.
func (e *Error) GRPCStatus() *grpcstatus.Status {
	return grpcstatus.New(e.Code, e.Message)
}

// restError is the Error of an HTTP answer.
func restError(status int, msg string, retryAfter time.Duration) *Error {
	return &Error{Status: status, Code: codeOf(status), Message: msg, RetryAfter: retryAfter}
}

// grpcError turns a gRPC call's error into an *Error when it is a status.
func grpcError(err error) error {
	st, ok := grpcstatus.FromError(err)
	if !ok {
		return err
	}
	return &Error{Status: statusOf(st.Code()), Code: st.Code(), Message: st.Message(), grpc: true}
}

// codeOf maps an HTTP status to gRPC's code as aeserve's server does.
func codeOf(status int) codes.Code {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusConflict:
		return codes.InvalidArgument
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	case 499:
		return codes.Canceled
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusNotImplemented:
		return codes.Unimplemented
	}
	if status >= 200 && status < 300 {
		return codes.OK
	}
	if status >= 400 && status < 500 {
		return codes.FailedPrecondition
	}
	return codes.Internal
}

// statusOf maps a gRPC code to the HTTP status that means the same.
func statusOf(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition:
		return http.StatusBadRequest
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Canceled:
		return 499 // a client that went away, as nginx and aeserve say
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// product is the number of elements a shape holds, or an error for a
// negative dimension or one that overflows.
func product(shape []int64) (int, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension", shape)
		}
		if d > 0 && n > math.MaxInt32/d {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n *= d
	}
	return int(n), nil
}

var errNoModel = errors.New("oip: empty model name")
