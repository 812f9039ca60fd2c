package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/api/inference"
	"github.com/aeserve/aeserve/internal/model"
)

// The fuzz targets here call the parsers the handlers call, on a real
// Server with the real weights, rather than going through a loopback
// request: a round trip costs far more than the parsing, and the fuzzer's
// throughput is what finds bugs. The routes' own tests (inputs_test.go,
// v2_test.go, errors_test.go) cover the wiring around each parser.
//
// Every target asserts that what fails maps (problemOf, the one place errors
// become responses) to a 4xx, never the 500 that an unexpected error would
// give, and that nothing panics.

// fuzzServer is a Server with the embedded models loaded and small limits,
// so that the fuzzer explores structure rather than big allocations.
func fuzzServer(f *testing.F) *Server {
	f.Helper()
	s, err := New(Config{
		Log:              zerolog.Nop(),
		MaxImages:        4,
		MaxPixels:        1 << 16,
		MaxRequestPixels: 1 << 17,
		Batch:            BatchConfig{Workers: 1},
	})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Load(loadModels(f)...); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			f.Errorf("close: %v", err)
		}
	})
	return s
}

// wantClientError fails unless err is answered with a 4xx: the typed errors
// the server maps to its client-error statuses.
func wantClientError(t *testing.T, err error) *Problem {
	t.Helper()
	p := problemOf(err)
	if p.Status < 400 || p.Status > 499 || p.Detail == "" {
		t.Fatalf("error %T %v is answered %d %q, want a 4xx with a detail", err, err, p.Status, p.Detail)
	}
	return p
}

// FuzzSplitImages: any body under any of the image Content-Types, raw or
// multipart, is split into at most MaxImages images whose headers keep
// within the per-image and per-request pixel limits, or refused with a
// 4xx naming the image when one is at fault.
func FuzzSplitImages(f *testing.F) {
	s := fuzzServer(f)
	_, seven := mnistDigit(f, 0)
	_, two := mnistDigit(f, 1)
	one, _ := multipartBody(f, imageField, seven)
	both, _ := multipartBody(f, imageField, seven, two)
	odd, _ := multipartBody(f, "file", seven)
	ct := "multipart/form-data; boundary=" + boundaryFor
	for _, c := range []struct {
		ctype string
		body  []byte
	}{
		{ctPNG, seven},
		{ctPNG, append(slices.Clone(seven), seven...)},
		{ctPNG, seven[:len(seven)/2]},
		{"image/jpeg", seven},
		{"image/gif", []byte("GIF89a\x1c\x00\x1c\x00")},
		{ct, one},
		{ct, both},
		{ct, odd},
		{ct, one[:len(one)-10]},
		{"multipart/form-data", one},
		{ct, bytes.Repeat(both, 3)},
		{"text/plain", []byte("x")},
		{ct, nil},
	} {
		f.Add(c.ctype, c.body)
	}
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/v1/encode", bytes.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		for _, fit := range []bool{false, true} {
			imgs, err := s.splitImages(r, fit)
			if err != nil {
				p := wantClientError(t, err)
				if p.Index != nil && (*p.Index < 0 || *p.Index >= s.cfg.MaxImages) {
					t.Fatalf("problem names image %d of at most %d", *p.Index, s.cfg.MaxImages)
				}
				return
			}
			if len(imgs) == 0 || len(imgs) > s.cfg.MaxImages {
				t.Fatalf("%d images, want 1 to %d", len(imgs), s.cfg.MaxImages)
			}
			var total int64
			for i, u := range imgs {
				px := u.head.Pixels()
				if u.head.Width <= 0 || u.head.Height <= 0 || px > int64(s.cfg.MaxPixels) {
					t.Fatalf("image %d: header %+v accepted with limit %d", i, u.head, s.cfg.MaxPixels)
				}
				if !fit && (u.head.Width != model.ImageSide || u.head.Height != model.ImageSide) {
					t.Fatalf("image %d is %d×%d without fit", i, u.head.Width, u.head.Height)
				}
				total += px
			}
			if total > int64(s.cfg.MaxRequestPixels) {
				t.Fatalf("images declare %d pixels, limit %d", total, s.cfg.MaxRequestPixels)
			}
			// The body has been read: a fresh request for the second pass.
			r = httptest.NewRequest(http.MethodPost, "/v1/encode", bytes.NewReader(body))
			r.Header.Set("Content-Type", ctype)
		}
	})
}

// FuzzParseLatent: a latent body, JSON or binary, parses to a latent that
// Validate accepts, which re-encodes to a body parsing to the very same
// latent (JSON, when its values are finite: JSON has no NaN) or to the
// very same bytes (binary); or it is refused with 400 (not a latent) or 422
// (a well-formed one that cannot be).
func FuzzParseLatent(f *testing.F) {
	lat := &api.Latent{Model: "conv", Fingerprint: "0123456789abcdef", Shape: []int{2}, DType: api.DTypeFloat32, Data: []float32{0.5, -1}}
	js, err := json.Marshal(lat)
	if err != nil {
		f.Fatal(err)
	}
	bin, err := lat.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(js),
		`{"model":"conv","fingerprint":"0123456789abcdef","shape":[2],"dtype":"float32","data":[1e39,-1e39]}`,
		`{"model":"conv","fingerprint":"0123456789abcdef","shape":[3],"dtype":"float32","data":[1,2]}`,
		`{"model":"conv","fingerprint":"0123456789abcdef","shape":[2],"dtype":"int8","scale":0.5,"data":[1,-127]}`,
		`{"model":"conv","fingerprint":"0123456789abcdef","shape":[2],"dtype":"float16","data":[65504,1e-8]}`,
		`{"data":[1,"x"]}`,
		`{"data":{}}`,
		`{"shape":[2]} {}`,
		`{"extra":1}`,
		`null`,
		`[]`,
		` `,
	} {
		f.Add(false, []byte(s))
	}
	f.Add(true, bin)
	f.Add(true, bin[:len(bin)-1])
	f.Add(true, []byte{})
	f.Fuzz(func(t *testing.T, binary bool, body []byte) {
		mt := ctJSON
		if binary {
			mt = ctBinary
		}
		l, err := parseLatent(mt, body)
		if err != nil {
			if p := wantClientError(t, err); p.Status != http.StatusBadRequest && p.Status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 400 or 422: %v", p.Status, err)
			}
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("parsed latent fails Validate: %v", err)
		}
		if binary {
			// A quantised latent's scale and values are checked after
			// parsing (decode answers 422 for them, TestQuantInt8Decode):
			// the bytes decode faithfully, and only good values re-encode.
			if _, err := l.CheckValues(); err != nil && l.DType != api.DTypeFloat32 {
				var ve *api.ValueError
				if !errors.As(err, &ve) {
					t.Fatalf("CheckValues of a parsed %s latent: %v", l.DType, err)
				}
				return
			}
			b, err := l.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary of a parsed latent: %v", err)
			}
			if !bytes.Equal(b, body) {
				t.Fatalf("re-encoded binary latent differs:\n got %x\nwant %x", b, body)
			}
			return
		}
		if _, ok := l.CheckFinite(); !ok {
			return
		}
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatalf("marshal a parsed latent: %v", err)
		}
		again, err := parseLatent(ctJSON, b)
		if err != nil {
			t.Fatalf("re-encoded latent %s is refused: %v", b, err)
		}
		if !reflect.DeepEqual(normLatent(again), normLatent(l)) {
			t.Fatalf("latent changed through JSON:\n got %+v\nwant %+v", again, l)
		}
	})
}

// normLatent makes an empty and a missing data the same, as JSON does.
func normLatent(l *api.Latent) api.Latent {
	c := *l
	if len(c.Data) == 0 {
		c.Data = nil
	}
	if len(c.Shape) == 0 {
		c.Shape = nil
	}
	return c
}

// FuzzParseQuery: a query string parses to parameters the route takes, each
// once with a value, which re-encode to a query parsing the same; or it is
// refused with 400.
func FuzzParseQuery(f *testing.F) {
	params := []string{"model", "fit", "quant"}
	for _, s := range []string{"", "model=conv", "model=conv&fit=true", "model=conv&model=dense", "fit", "fit=", "x=1",
		"model=%zz", "model=a;b", "quant=int8&fit=1&model=deep", "%", "&&", "=x", "model=%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseQuery(raw, params...)
		if err != nil {
			if p := wantClientError(t, err); p.Status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %v", p.Status, err)
			}
			return
		}
		vals := url.Values{}
		for k, v := range q {
			if !slices.Contains(params, k) || v == "" {
				t.Fatalf("parameter %q=%q accepted", k, v)
			}
			vals.Set(k, v)
		}
		again, err := parseQuery(vals.Encode(), params...)
		if err != nil {
			t.Fatalf("re-encoded query %q is refused: %v", vals.Encode(), err)
		}
		if len(q) == 0 {
			q = nil
		}
		if len(again) == 0 {
			again = nil
		}
		if !reflect.DeepEqual(again, q) {
			t.Fatalf("query changed through re-encoding: %v, want %v", again, q)
		}
	})
}

// FuzzReadTokens: a token file is read to the digests of exactly its
// non-blank, non-comment lines, each a token a client could send, or
// refused with an error that names no token in the file.
func FuzzReadTokens(f *testing.F) {
	for _, s := range []string{
		"tok-0123456789abcdef\n",
		"# comment\n\n  spaced-token-0123456789  \r\nsecond_token_ABCDEFGH==\n",
		"good-token-0123456789\nbad token with spaces\n",
		"",
		"# only a comment\n",
		"trailing=equals=not\n",
		"\x00\xff\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	file := filepath.Join(dir, "tokens")
	f.Fuzz(func(t *testing.T, content []byte) {
		if err := os.WriteFile(file, content, 0o600); err != nil {
			t.Fatal(err)
		}
		var want [][sha256.Size]byte
		var toks []string
		for _, line := range bytes.Split(content, []byte("\n")) {
			tok := bytes.TrimSpace(line)
			if len(tok) == 0 || tok[0] == '#' {
				continue
			}
			if isToken(tok) {
				toks = append(toks, string(tok))
			}
			want = append(want, sha256.Sum256(tok))
		}
		got, err := readTokens(file)
		if err != nil {
			for _, tok := range toks {
				// Short ones may occur in the message's own words or path.
				if len(tok) >= 16 && !strings.Contains(file, tok) && strings.Contains(err.Error(), tok) {
					t.Fatalf("error %q names token %q", err, tok)
				}
			}
			return
		}
		if !slices.Equal(got, want) {
			t.Fatalf("read %d tokens, want the %d lines'", len(got), len(want))
		}
		for _, tok := range toks {
			if b, ok := bearerToken("Bearer " + tok); !ok || b != tok {
				t.Fatalf("token %q read from the file cannot be sent: got %q, %v", tok, b, ok)
			}
		}
	})
}

// v2Targets are the stages the V2 fuzz targets feed: an encoder, whose
// inputs are images, and a decoder, whose inputs are latents.
func v2Targets(f *testing.F, s *Server) []*v2Target {
	var ts []*v2Target
	for _, name := range []string{v2Name("conv", model.Encoder), v2Name("conv", model.Decoder), v2Name("compact", model.Decoder)} {
		t, err := s.v2Lookup(name, "")
		if err != nil {
			f.Fatal(err)
		}
		ts = append(ts, t)
	}
	return ts
}

// checkV2Input runs a parsed call's input checks against every target:
// each either accepts values of the right count, finite and (for images)
// in [0, 1], or refuses with a 4xx.
func checkV2Input(t *testing.T, s *Server, targets []*v2Target, call *v2Call) {
	t.Helper()
	for _, tg := range targets {
		in, err := s.v2Input(tg, call)
		if err != nil {
			wantClientError(t, err)
			continue
		}
		per := tg.sv.m.Arch.InLen(tg.half)
		if in.n < 1 || in.n > s.cfg.MaxImages || len(in.data) != in.n*per {
			t.Fatalf("%s: %d items of %d values for %d values", tg.name, in.n, per, len(in.data))
		}
		for i, v := range in.data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || tg.half != model.Decoder && (v < 0 || v > 1) {
				t.Fatalf("%s: value %d = %v accepted", tg.name, i, v)
			}
		}
		if _, err := tg.v2Outputs(call, false); err != nil {
			wantClientError(t, err)
		}
	}
}

// FuzzV2REST: an inference request body, JSON and optionally binary tensor
// data after it (Inference-Header-Content-Length), parses to a call whose
// raw inputs account for every byte after the JSON, and whose input the
// stages accept or refuse with a 4xx; or it is refused with 400.
func FuzzV2REST(f *testing.F) {
	s := fuzzServer(f)
	targets := v2Targets(f, s)
	img := `{"inputs":[{"name":"image","datatype":"FP32","shape":[1,784],"data":[` + strings.TrimSuffix(strings.Repeat("0.5,", 784), ",") + `]}]}`
	raw := make([]byte, 4*784)
	binary.LittleEndian.PutUint32(raw, math.Float32bits(0.25))
	binHead := `{"inputs":[{"name":"image","datatype":"FP32","shape":[1,1,28,28],"parameters":{"binary_data_size":3136}}],"outputs":[{"name":"latent","parameters":{"binary_data":true}}]}`
	for _, c := range []struct {
		body string
		hlen string
	}{
		{img, ""},
		{binHead + string(raw), strconv.Itoa(len(binHead))},
		{binHead + string(raw[:10]), strconv.Itoa(len(binHead))},
		{binHead, ""},
		{`{"inputs":[{"name":"latent","datatype":"FP32","shape":[1,4],"data":[[1,2],[3,4]],"parameters":{"fingerprint":"x"}}]}`, ""},
		{`{"id":"a","parameters":{"x":[1]},"inputs":[]}`, ""},
		{`{"inputs":[{"name":"image","datatype":"FP32","shape":[-1,784],"data":[]}]}`, ""},
		{`{"inputs":[{"name":"image","datatype":"FP32","shape":[1,784],"data":[1e99]}]}`, ""},
		{`{"inputs":[{"name":"image","datatype":"INT8","shape":[1,784],"data":[0]}]}`, ""},
		{`{"inputs":[]} {}`, ""},
		{`{"unknown":1}`, ""},
		{`{}`, "-1"},
		{`{}`, "99"},
		{``, ""},
	} {
		f.Add([]byte(c.body), c.hlen)
	}
	f.Fuzz(func(t *testing.T, body []byte, hlen string) {
		r := httptest.NewRequest(http.MethodPost, "/v2/models/conv.encoder/infer", nil)
		if hlen != "" {
			r.Header.Set(HeaderInferenceHeaderLength, hlen)
		}
		call, err := v2ParseREST(r, body)
		if err != nil {
			if p := wantClientError(t, err); p.Status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %v", p.Status, err)
			}
			return
		}
		js := len(body)
		if hlen != "" {
			n, err := strconv.Atoi(hlen)
			if err != nil {
				t.Fatalf("header length %q accepted", hlen)
			}
			js = n
		}
		rawLen := 0
		for _, in := range call.Inputs {
			rawLen += len(in.Raw)
		}
		if js+rawLen != len(body) {
			t.Fatalf("JSON %d + raw %d bytes, body %d", js, rawLen, len(body))
		}
		checkV2Input(t, s, targets, call)
	})
}

// FuzzGRPCCall: any bytes that unmarshal as a ModelInferRequest convert to
// a call, or are refused as InvalidArgument; a call's input is accepted or
// refused by the stages with a 4xx.
func FuzzGRPCCall(f *testing.F) {
	s := fuzzServer(f)
	targets := v2Targets(f, s)
	px := make([]float32, 784)
	raw := make([]byte, 4*784)
	for _, req := range []*inference.ModelInferRequest{
		{ModelName: "conv.encoder", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
			Name: "image", Datatype: "FP32", Shape: []int64{1, 784}, Contents: &inference.InferTensorContents{Fp32Contents: px},
		}}},
		{ModelName: "conv.encoder", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
			Name: "image", Datatype: "FP32", Shape: []int64{1, 1, 28, 28},
		}}, RawInputContents: [][]byte{raw}},
		{ModelName: "conv.encoder", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
			Name: "image", Datatype: "FP32", Shape: []int64{1, 784}, Contents: &inference.InferTensorContents{IntContents: []int32{1}},
		}}},
		{Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "latent", Datatype: "FP32", Shape: []int64{1, 2},
			Parameters: map[string]*inference.InferParameter{"fingerprint": {}}}}},
		{Parameters: map[string]*inference.InferParameter{"x": {ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: 1}}},
			Outputs: []*inference.ModelInferRequest_InferRequestedOutputTensor{{Name: "latent"}}},
		{RawInputContents: [][]byte{{1}}},
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req inference.ModelInferRequest
		if proto.Unmarshal(b, &req) != nil {
			return // grpc-go refuses these before the service sees them
		}
		call, err := grpcCall(&req)
		if err != nil {
			wantClientError(t, err)
			if c := grpcstatus.Code(grpcError(err)); c != codes.InvalidArgument {
				t.Fatalf("gRPC code %v, want InvalidArgument: %v", c, err)
			}
			return
		}
		if len(call.Inputs) != len(req.GetInputs()) {
			t.Fatalf("%d inputs of %d", len(call.Inputs), len(req.GetInputs()))
		}
		checkV2Input(t, s, targets, call)
	})
}
