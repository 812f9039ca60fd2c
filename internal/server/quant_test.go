package server

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"testing"

	"github.com/aeserve/aeserve/api"
)

// conv's latent at float16: half the bytes, decoded by the fingerprint,
// and within a grey level or two of the float32 round trip.
func TestQuantFloat16(t *testing.T) {
	e := newEnv(t)
	_, img := mnistDigit(t, 2)
	r := e.post("/v1/encode?quant=float16", ctPNG, img, "Accept", ctBinary)
	wantStatus(t, r, http.StatusOK)
	if want := api.BinarySize([]int{1, 32, 7, 7}, api.DTypeFloat16); len(r.body) != want || want != 15+2*convLatentLen {
		t.Errorf("float16 latent %d bytes, want %d", len(r.body), want)
	}
	d := e.post("/v1/decode", ctBinary, r.body)
	wantStatus(t, d, http.StatusOK)
	full := e.post("/v1/decode", ctBinary, e.post("/v1/encode", ctPNG, img, "Accept", ctBinary).body)
	if diff := maxDiff(pngPixels(t, d.body), pngPixels(t, full.body)); diff > 2 {
		t.Errorf("float16 and float32 latents decode %d grey levels apart, want ≤ 2", diff)
	}
	// JSON carries the dtype, and decodes the same.
	j := e.post("/v1/encode?quant=float16", ctPNG, img)
	wantStatus(t, j, http.StatusOK)
	var l api.Latent
	if err := json.Unmarshal(j.body, &l); err != nil || l.DType != api.DTypeFloat16 || l.Scale != 0 {
		t.Fatalf("JSON latent dtype %q scale %v (%v)", l.DType, l.Scale, err)
	}
	dj := e.post("/v1/decode", ctJSON, j.body)
	wantStatus(t, dj, http.StatusOK)
	if diff := maxDiff(pngPixels(t, dj.body), pngPixels(t, d.body)); diff != 0 {
		t.Errorf("JSON and binary float16 latents decode %d grey levels apart", diff)
	}
}

// int8 latents, quantised by the client from conv's float32 latent (the
// server offers int8 only where it was measured), decode by fingerprint;
// every malformed or out-of-range one is a clear 4xx.
func TestQuantInt8Decode(t *testing.T) {
	e := newEnv(t)
	_, img := mnistDigit(t, 3)
	r := e.post("/v1/encode", ctPNG, img)
	wantStatus(t, r, http.StatusOK)
	var l api.Latent
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatal(err)
	}
	q, err := l.Quantize(api.DTypeInt8)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := q.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.post("/v1/decode", ctBinary, bin), http.StatusOK)
	js, _ := json.Marshal(q)
	wantStatus(t, e.post("/v1/decode", ctJSON, js), http.StatusOK)

	// The scale sits after the dims: 11 header bytes, 4 one-byte dims.
	const scaleAt = 11 + 4
	withScale := func(bits uint16) []byte {
		b := append([]byte(nil), bin...)
		binary.LittleEndian.PutUint16(b[scaleAt:], bits)
		return b
	}
	withValue := func(v int8) []byte {
		b := append([]byte(nil), bin...)
		b[scaleAt+2] = byte(v)
		return b
	}
	jsonWith := func(f func(*api.Latent)) []byte {
		c := *q
		c.Data = append([]float32(nil), q.Data...)
		f(&c)
		b, _ := json.Marshal(c)
		return b
	}
	for _, tc := range []struct {
		name   string
		ct     string
		body   []byte
		status int
	}{
		{"scale zero", ctBinary, withScale(0x0000), http.StatusUnprocessableEntity},
		{"scale negative", ctBinary, withScale(0xbc00), http.StatusUnprocessableEntity},
		{"scale subnormal", ctBinary, withScale(0x0001), http.StatusUnprocessableEntity},
		{"scale infinite", ctBinary, withScale(0x7c00), http.StatusUnprocessableEntity},
		{"scale NaN", ctBinary, withScale(0x7e00), http.StatusUnprocessableEntity},
		{"int8 -128", ctBinary, withValue(-128), http.StatusUnprocessableEntity},
		{"truncated", ctBinary, bin[:len(bin)-1], http.StatusBadRequest},
		{"trailing byte", ctBinary, append(append([]byte(nil), bin...), 0), http.StatusBadRequest},
		{"JSON scale zero", ctJSON, jsonWith(func(l *api.Latent) { l.Scale = 0 }), http.StatusUnprocessableEntity},
		{"JSON scale not binary16", ctJSON, jsonWith(func(l *api.Latent) { l.Scale = 0.1 }), http.StatusUnprocessableEntity},
		{"JSON value 128", ctJSON, jsonWith(func(l *api.Latent) { l.Data[0] = 128 }), http.StatusUnprocessableEntity},
		{"JSON value not whole", ctJSON, jsonWith(func(l *api.Latent) { l.Data[0] = 1.5 }), http.StatusUnprocessableEntity},
		{"JSON data short", ctJSON, jsonWith(func(l *api.Latent) { l.Data = l.Data[1:] }), http.StatusUnprocessableEntity},
		{"JSON scale on float32", ctJSON, jsonWith(func(l *api.Latent) { l.DType = api.DTypeFloat32 }), http.StatusUnprocessableEntity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post("/v1/decode", tc.ct, tc.body)
			wantStatus(t, r, tc.status)
			r.problem(t)
		})
	}
	if math.Abs(float64(q.Scale)) == 0 {
		t.Fatal("the quantised latent has no scale")
	}
}

func TestQuantParam(t *testing.T) {
	e := newEnv(t)
	_, img := mnistDigit(t, 4)
	for _, tc := range []struct {
		query  string
		status int
		kind   string
	}{
		{"quant=int4", http.StatusBadRequest, kindMalformed},
		{"quant=", http.StatusBadRequest, kindMalformed},
		{"quant=int8", http.StatusBadRequest, kindUnsupported}, // conv does not offer it
		{"quant=float16&quant=float16", http.StatusBadRequest, kindMalformed},
		{"model=classifier&quant=float16", http.StatusBadRequest, kindUnsupported},
	} {
		t.Run(tc.query, func(t *testing.T) {
			r := e.post("/v1/encode?"+tc.query, ctPNG, img)
			wantStatus(t, r, tc.status)
			if p := r.problem(t); p.Type != ProblemTypeBase+tc.kind {
				t.Errorf("type %s, want %s", p.Type, ProblemTypeBase+tc.kind)
			}
		})
	}
	// quant is /v1/encode's alone.
	wantStatus(t, e.post("/v1/reconstruct?quant=float16", ctPNG, img), http.StatusBadRequest)
	// /v1/models says what each model offers, and the sizes.
	var info api.ModelInfo
	r := e.get("/v1/models/conv")
	if err := json.Unmarshal(r.body, &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Quantizations) != 2 || info.Quantizations[0].DType != api.DTypeFloat32 ||
		info.Quantizations[1] != (api.Quantization{DType: api.DTypeFloat16, BinaryBytes: 15 + 2*convLatentLen}) {
		t.Errorf("conv quantizations %+v", info.Quantizations)
	}
}

// compact offers int8: a digit in 47 bytes, decoded to within a few grey
// levels of its float32 round trip.
func TestQuantInt8Compact(t *testing.T) {
	e := newEnv(t)
	_, img := mnistDigit(t, 6)
	r := e.post("/v1/encode?model=compact&quant=int8", ctPNG, img, "Accept", ctBinary)
	wantStatus(t, r, http.StatusOK)
	if len(r.body) != 47 {
		t.Fatalf("compact int8 latent is %d bytes, want 47", len(r.body))
	}
	var l api.Latent
	if err := l.UnmarshalBinary(r.body); err != nil || l.DType != api.DTypeInt8 || l.Scale <= 0 {
		t.Fatalf("latent %+v, %v", l, err)
	}
	d := e.post("/v1/decode", ctBinary, r.body)
	wantStatus(t, d, http.StatusOK)
	if d.Header.Get(HeaderModel) != "compact" {
		t.Errorf("decoded by %q", d.Header.Get(HeaderModel))
	}
	rec := e.post("/v1/reconstruct?model=compact", ctPNG, img)
	wantStatus(t, rec, http.StatusOK)
	if diff := maxDiff(pngPixels(t, d.body), pngPixels(t, rec.body)); diff > 8 {
		t.Errorf("int8 decode is %d grey levels from reconstruct, want ≤ 8", diff)
	}
	// JSON: integers and the scale.
	j := e.post("/v1/encode?model=compact&quant=int8", ctPNG, img)
	wantStatus(t, j, http.StatusOK)
	var jl api.Latent
	if err := json.Unmarshal(j.body, &jl); err != nil || jl.Scale != l.Scale || len(jl.Data) != 32 {
		t.Fatalf("JSON int8 latent %+v (%v), binary scale %v", jl, err, l.Scale)
	}
	for i, v := range jl.Data {
		if v != float32(int(v)) || v < -127 || v > 127 || v != l.Data[i] {
			t.Fatalf("JSON int8 value %d is %v (binary %v)", i, v, l.Data[i])
		}
	}
}
