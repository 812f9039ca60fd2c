package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aeserve/aeserve/internal/model"
)

// v2Body writes an inference request as the protocol's own examples do:
// "id", then "inputs" with name, shape, datatype and data, then "outputs".
func v2Body(id, input string, shape []int, data []float32, outputs ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n  \"id\" : %q,\n  \"inputs\" : [\n    {\n      \"name\" : %q,\n      \"shape\" : [ %s ],\n      \"datatype\" : \"FP32\",\n      \"data\" : [ ",
		id, input, joinInts(shape))
	for i, v := range data {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatFloat(float64(v), 'g', -1, 32))
	}
	b.WriteString(" ]\n    }\n  ]")
	if len(outputs) > 0 {
		b.WriteString(",\n  \"outputs\" : [\n")
		for i, o := range outputs {
			if i > 0 {
				b.WriteString(",\n")
			}
			fmt.Fprintf(&b, "    {\n      \"name\" : %q\n    }", o)
		}
		b.WriteString("\n  ]")
	}
	b.WriteString("\n}")
	return []byte(b.String())
}

type v2Out struct {
	ModelName    string `json:"model_name"`
	ModelVersion string `json:"model_version"`
	ID           string `json:"id"`
	Outputs      []struct {
		Name       string         `json:"name"`
		Shape      []int          `json:"shape"`
		Datatype   string         `json:"datatype"`
		Parameters map[string]any `json:"parameters"`
		Data       []float64      `json:"data"`
	} `json:"outputs"`
}

func v2Decode(t testing.TB, r *reply) v2Out {
	t.Helper()
	var o v2Out
	if err := json.Unmarshal(r.body, &o); err != nil {
		t.Fatalf("V2 response: %v: %.300s", err, r.body)
	}
	return o
}

func v2Error(t testing.TB, r *reply) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if r.mediaType() != ctJSON || json.Unmarshal(r.body, &e) != nil || e.Error == "" {
		t.Fatalf("status %d: not a V2 error: %q %.300s", r.StatusCode, r.Header.Get("Content-Type"), r.body)
	}
	return e.Error
}

// Health, server and model metadata answer as the protocol says.
func TestV2Metadata(t *testing.T) {
	e := newEnv(t)
	r := e.get("/v2")
	wantStatus(t, r, http.StatusOK)
	var sm v2ServerMetadata
	if err := json.Unmarshal(r.body, &sm); err != nil || sm.Name != "aeserve" || !slices.Contains(sm.Extensions, v2ExtensionBinary) {
		t.Errorf("server metadata %+v (%v)", sm, err)
	}
	for _, path := range []string{"/v2/health/live", "/v2/health/ready", "/v2/models/conv/ready", "/v2/models/conv.decoder/ready",
		"/v2/models/classifier/versions/9989b58db7c0c95c/ready"} {
		r := e.get(path)
		wantStatus(t, r, http.StatusOK)
		if len(r.body) != 0 {
			t.Errorf("%s: body %q, want empty", path, r.body)
		}
	}
	for _, tc := range []struct {
		name        string
		in, outs    []string
		inShape     []int64
		outShape    []int64
		fingerprint string
	}{
		{"conv", []string{"images"}, []string{"images"}, []int64{-1, 1, 28, 28}, []int64{-1, 1, 28, 28}, "82231c4ca0887f78"},
		{"conv.encoder", []string{"images"}, []string{"latent"}, []int64{-1, 1, 28, 28}, []int64{-1, 32, 7, 7}, "82231c4ca0887f78"},
		{"dense.decoder", []string{"latent"}, []string{"images"}, []int64{-1, 32}, []int64{-1, 1, 28, 28}, ""},
		{"classifier", []string{"images"}, []string{"probabilities", "digit"}, []int64{-1, 1, 28, 28}, []int64{-1, 10}, "9989b58db7c0c95c"},
	} {
		r := e.get("/v2/models/" + tc.name)
		wantStatus(t, r, http.StatusOK)
		var mm v2ModelMetadata
		if err := json.Unmarshal(r.body, &mm); err != nil {
			t.Fatal(err)
		}
		var ins, outs []string
		for _, m := range mm.Inputs {
			ins = append(ins, m.Name)
		}
		for _, m := range mm.Outputs {
			outs = append(outs, m.Name)
		}
		if mm.Name != tc.name || mm.Platform != "aeserve" || !slices.Equal(ins, tc.in) || !slices.Equal(outs, tc.outs) ||
			!slices.Equal(mm.Inputs[0].Shape, tc.inShape) || !slices.Equal(mm.Outputs[0].Shape, tc.outShape) ||
			len(mm.Versions) != 1 || tc.fingerprint != "" && mm.Versions[0] != tc.fingerprint {
			t.Errorf("%s: %+v", tc.name, mm)
		}
		wantStatus(t, e.get("/v2/models/"+tc.name+"/versions/"+mm.Versions[0]), http.StatusOK)
	}
	for _, path := range []string{"/v2/models/nope", "/v2/models/conv.middle", "/v2/models/classifier.encoder",
		"/v2/models/conv/versions/0000000000000000", "/v2/models/conv/versions/0000000000000000/ready"} {
		r := e.get(path)
		wantStatus(t, r, http.StatusNotFound)
		v2Error(t, r)
	}
}

// Inference through V2 equals /v1 on the same digits, for every kind of
// stage, from flat and nested JSON and from binary data, and a V2 latent
// decodes with the weights it came from.
func TestV2Infer(t *testing.T) {
	e := newEnv(t)
	px, png := mnistDigit(t, 44)
	// Full model: the same image /v1/reconstruct answers.
	r := e.post("/v2/models/conv/infer", ctJSON, v2Body("42", "images", []int{1, 784}, px, "images"))
	wantStatus(t, r, http.StatusOK)
	o := v2Decode(t, r)
	if o.ID != "42" || o.ModelName != "conv" || o.ModelVersion != "82231c4ca0887f78" || len(o.Outputs) != 1 ||
		!slices.Equal(o.Outputs[0].Shape, []int{1, 1, 28, 28}) || o.Outputs[0].Datatype != v2FP32 {
		t.Fatalf("response %+v", o)
	}
	v1 := pngPixels(t, e.post("/v1/reconstruct", ctPNG, png).body)
	var grey []uint8
	for _, v := range o.Outputs[0].Data {
		grey = append(grey, uint8(math.Round(math.Min(math.Max(v, 0), 1)*255)))
	}
	if d := maxDiff(grey, v1); d > 1 {
		t.Errorf("V2 full model differs from /v1/reconstruct by %d grey levels", d)
	}

	// Nested data, as [1,1,28,28] in its natural form, gives the same.
	nested, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{
		"name": "images", "shape": []int{1, 1, 28, 28}, "datatype": "FP32", "data": [][][][]float32{{rows(px)}}}}})
	r2 := e.post("/v2/models/conv/infer", ctJSON, nested)
	wantStatus(t, r2, http.StatusOK)
	if !slices.Equal(v2Decode(t, r2).Outputs[0].Data, o.Outputs[0].Data) {
		t.Error("nested data gave another answer than flat data")
	}

	// Encoder: the latent carries its fingerprint and equals /v1/encode's.
	r = e.post("/v2/models/conv.encoder/infer", ctJSON, v2Body("enc", "images", []int{1, 1, 28, 28}, px))
	wantStatus(t, r, http.StatusOK)
	enc := v2Decode(t, r).Outputs[0]
	if enc.Name != "latent" || enc.Parameters[v2ParamFingerprint] != "82231c4ca0887f78" || !slices.Equal(enc.Shape, []int{1, 32, 7, 7}) {
		t.Fatalf("encoder output %+v", enc.Parameters)
	}
	l := encodeLatent(t, e, "conv", 44)
	for i, v := range l.Data {
		if float32(enc.Data[i]) != v {
			t.Fatalf("latent value %d: %v through V2, %v through /v1", i, enc.Data[i], v)
		}
	}

	// Decoder, with the binary extension both ways and the fingerprint pinned.
	lat := make([]byte, 0, 4*len(l.Data))
	for _, v := range l.Data {
		lat = binary.LittleEndian.AppendUint32(lat, math.Float32bits(v))
	}
	hdr := fmt.Sprintf(`{"inputs":[{"name":"latent","shape":[1,32,7,7],"datatype":"FP32","parameters":{"binary_data_size":%d,"fingerprint":"82231c4ca0887f78"}}],"outputs":[{"name":"images","parameters":{"binary_data":true}}]}`, len(lat))
	r = e.post("/v2/models/conv.decoder/versions/82231c4ca0887f78/infer", ctBinary, append([]byte(hdr), lat...),
		HeaderInferenceHeaderLength, strconv.Itoa(len(hdr)))
	wantStatus(t, r, http.StatusOK)
	n, err := strconv.Atoi(r.Header.Get(HeaderInferenceHeaderLength))
	if err != nil || r.mediaType() != ctBinary || n > len(r.body) {
		t.Fatalf("binary response: header %q, type %q", r.Header.Get(HeaderInferenceHeaderLength), r.mediaType())
	}
	var dec v2Out
	if err := json.Unmarshal(r.body[:n], &dec); err != nil {
		t.Fatal(err)
	}
	raw := r.body[n:]
	if size := dec.Outputs[0].Parameters[v2ParamBinaryDataSize]; size != float64(len(raw)) || len(raw) != 4*784 || dec.Outputs[0].Data != nil {
		t.Fatalf("binary output: size %v, %d bytes", size, len(raw))
	}
	v1dec := pngPixels(t, e.post("/v1/decode", ctBinary, latentBinary(t, l)).body)
	grey = grey[:0]
	for i := range 784 {
		v := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		grey = append(grey, uint8(math.Round(math.Min(math.Max(float64(v), 0), 1)*255)))
	}
	if d := maxDiff(grey, v1dec); d > 1 {
		t.Errorf("V2 decoder differs from /v1/decode by %d grey levels", d)
	}

	// Classifier: the digit is the argmax of the probabilities, both outputs.
	r = e.post("/v2/models/classifier/infer", ctJSON, v2Body("c", "images", []int{1, 784}, px, "digit", "probabilities"))
	wantStatus(t, r, http.StatusOK)
	co := v2Decode(t, r)
	if co.Outputs[0].Name != "digit" || co.Outputs[0].Datatype != v2INT64 || int(co.Outputs[0].Data[0]) != mnistLabel(t, 44) ||
		co.Outputs[1].Name != "probabilities" || len(co.Outputs[1].Data) != 10 {
		t.Errorf("classifier outputs %+v", co.Outputs)
	}

	// A V2 request and a PNG request for the same half share the batcher.
	if st := e.batcher("conv", model.Encoder).Stats(); st.Closed {
		t.Error("encoder batcher closed")
	}
}

func rows(px []float32) [][]float32 {
	out := make([][]float32, 28)
	for i := range out {
		out[i] = px[i*28 : (i+1)*28]
	}
	return out
}

// Every malformed V2 request gets a clear 400 in the protocol's form, never
// a panic or a silently reshaped tensor.
func TestV2BadRequests(t *testing.T) {
	e := newEnv(t)
	px, _ := mnistDigit(t, 9)
	good := func(mod func(m map[string]any)) []byte {
		in := map[string]any{"name": "images", "shape": []int{1, 784}, "datatype": "FP32", "data": px}
		req := map[string]any{"inputs": []any{in}}
		mod(req)
		b, _ := json.Marshal(req)
		return b
	}
	input := func(m map[string]any) map[string]any { return m["inputs"].([]any)[0].(map[string]any) }
	nan := append([]float32{}, px...)
	bigData := make([]float32, 785)
	for _, tc := range []struct {
		name, path, want string
		body             []byte
		header           []string
		status           int
	}{
		{"NaN in binary", "/v2/models/conv/infer", "is NaN", nil, nil, 400},
		{"value above 1", "/v2/models/conv/infer", "must be in [0, 1]", good(func(m map[string]any) { nan[3] = 1.5; input(m)["data"] = nan }), nil, 400},
		{"too few values", "/v2/models/conv/infer", "holds 10 numbers", good(func(m map[string]any) { input(m)["data"] = px[:10] }), nil, 400},
		{"too many values", "/v2/models/conv/infer", "more than the 784", good(func(m map[string]any) { input(m)["data"] = bigData }), nil, 400},
		{"nested with the wrong count", "/v2/models/conv/infer", "holds 56 numbers", good(func(m map[string]any) { input(m)["data"] = [][]float32{px[:28], px[28:56]} }), nil, 400},
		{"wrong rank", "/v2/models/conv/infer", "takes [N, 1, 28, 28] or [N, 784]", good(func(m map[string]any) { input(m)["shape"] = []int{784} }), nil, 400},
		{"negative dimension", "/v2/models/conv/infer", "must not be negative", good(func(m map[string]any) { input(m)["shape"] = []int{-1, 784} }), nil, 400},
		{"overflowing shape", "/v2/models/conv/infer", "batch dimension", good(func(m map[string]any) { input(m)["shape"] = []int64{1 << 62, 784} }), nil, 400},
		{"shape disagrees with data", "/v2/models/conv/infer", "the shape gives 1568", good(func(m map[string]any) { input(m)["shape"] = []int{2, 784} }), nil, 400},
		{"datatype", "/v2/models/conv/infer", `datatype "FP64"`, good(func(m map[string]any) { input(m)["datatype"] = "FP64" }), nil, 400},
		{"input name", "/v2/models/conv/infer", `unknown input "x"`, good(func(m map[string]any) { input(m)["name"] = "x" }), nil, 400},
		{"output name", "/v2/models/conv/infer", `unknown output "latent"`, good(func(m map[string]any) { m["outputs"] = []any{map[string]any{"name": "latent"}} }), nil, 400},
		{"unknown parameter", "/v2/models/conv/infer", `unknown parameter "priority"`, good(func(m map[string]any) { m["parameters"] = map[string]any{"priority": 1} }), nil, 400},
		{"unknown field", "/v2/models/conv/infer", `unknown field "input"`, good(func(m map[string]any) { m["input"] = 1 }), nil, 400},
		{"header length not a number", "/v2/models/conv/infer", "is not a length", good(func(map[string]any) {}), []string{HeaderInferenceHeaderLength, "abc"}, 400},
		{"header length beyond the body", "/v2/models/conv/infer", "exceeds the body", good(func(map[string]any) {}), []string{HeaderInferenceHeaderLength, "99999"}, 400},
		{"binary size disagrees", "/v2/models/conv/infer", "binary_data_size is 3136 but only 3000 bytes", nil, nil, 400},
		{"fingerprint of other weights", "/v2/models/conv.decoder/infer", "24fc73baec52813b is not the fingerprint of model conv's weights, 82231c4ca0887f78",
			[]byte(`{"inputs":[{"name":"latent","shape":[1,32,7,7],"datatype":"FP32","parameters":{"fingerprint":"24fc73baec52813b"},"data":[` + strings.Repeat("0,", 1567) + `0]}]}`), nil, 400},
		{"fingerprint on an encoder", "/v2/models/conv.encoder/infer", `unknown parameter "fingerprint"`, good(func(m map[string]any) {
			input(m)["parameters"] = map[string]any{"fingerprint": "82231c4ca0887f78"}
		}), nil, 400},
		{"too many items", "/v2/models/conv/infer", "more than 256 per request", good(func(m map[string]any) {
			input(m)["shape"] = []int{257, 784}
			input(m)["data"] = make([]float32, 257*784)
		}), nil, 413},
		{"not JSON", "/v2/models/conv/infer", "inference request JSON", []byte("hello"), nil, 400},
		{"unknown model", "/v2/models/nope/infer", `no model named "nope"`, good(func(map[string]any) {}), nil, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, header := tc.body, tc.header
			switch tc.name {
			case "NaN in binary", "binary size disagrees":
				vals := append([]float32{}, px...)
				vals[5] = float32(math.NaN())
				raw := make([]byte, 0, 3136)
				for _, v := range vals {
					raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
				}
				if tc.name == "binary size disagrees" {
					raw = raw[:3000]
				}
				hdr := `{"inputs":[{"name":"images","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":3136}}]}`
				body, header = append([]byte(hdr), raw...), []string{HeaderInferenceHeaderLength, strconv.Itoa(len(hdr))}
			}
			r := e.do(e.request(http.MethodPost, tc.path, ctJSON, body, header...))
			wantStatus(t, r, tc.status)
			if msg := v2Error(t, r); !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want it to say %q", msg, tc.want)
			}
		})
	}
	// Unknown paths and methods under /v2 answer in the protocol's form too.
	r := e.get("/v2/nothing")
	wantStatus(t, r, http.StatusNotFound)
	v2Error(t, r)
	r = e.do(e.request(http.MethodDelete, "/v2/models/conv/infer", "", nil))
	wantStatus(t, r, http.StatusMethodNotAllowed)
	v2Error(t, r)
	if !bytes.Contains([]byte(r.Header.Get("Allow")), []byte("POST")) {
		t.Errorf("Allow %q", r.Header.Get("Allow"))
	}
}

// A role serves only its own stages over V2 too.
func TestV2Roles(t *testing.T) {
	e := newRoleEnv(t, RoleDecoder)
	wantStatus(t, e.get("/v2/models/conv.decoder"), http.StatusOK)
	for _, name := range []string{"conv", "conv.encoder", "classifier"} {
		r := e.get("/v2/models/" + name)
		wantStatus(t, r, http.StatusNotFound)
		if msg := v2Error(t, r); !strings.Contains(msg, "role decoder") && !strings.Contains(msg, "no model named") {
			t.Errorf("%s: %q", name, msg)
		}
	}
}
