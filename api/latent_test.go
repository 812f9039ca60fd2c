package api

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

const testFP = "0123456789abcdef"

func testLatent(n int) *Latent {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	data := make([]float32, n*32*7*7)
	for i := range data {
		data[i] = float32(rng.NormFloat64())
	}
	return &Latent{Model: "ae", Fingerprint: testFP, Shape: []int{n, 32, 7, 7}, DType: DTypeFloat32, Data: data}
}

func TestLatentRoundTrip(t *testing.T) {
	for _, n := range []int{1, 3} {
		l := testLatent(n)
		// Odd values the codec must carry bit for bit.
		l.Data[0], l.Data[1], l.Data[2] = float32(math.Copysign(0, -1)), float32(math.Inf(-1)), math.Float32frombits(0x7fc00123)
		b, err := l.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if want := 15 + n*6272; len(b) != want {
			t.Errorf("[%d,32,7,7]: %d bytes, want %d", n, len(b), want)
		}
		var got Latent
		got.Model = "stale"
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if got.Model != "" || got.Fingerprint != testFP || got.DType != DTypeFloat32 || !reflect.DeepEqual(got.Shape, l.Shape) {
			t.Fatalf("header round trip: got %+v", Latent{Model: got.Model, Fingerprint: got.Fingerprint, Shape: got.Shape, DType: got.DType})
		}
		for i := range l.Data {
			if math.Float32bits(got.Data[i]) != math.Float32bits(l.Data[i]) {
				t.Fatalf("value %d: got %x, want %x", i, math.Float32bits(got.Data[i]), math.Float32bits(l.Data[i]))
			}
		}
		for i := 15; i < len(b); i++ {
			b[i] ^= 0xff
		}
		if math.Float32bits(got.Data[2]) != 0x7fc00123 {
			t.Error("decoded data aliases the input")
		}
	}
}

// TestLatentGolden pins the byte layout documented in the package comment.
func TestLatentGolden(t *testing.T) {
	l := &Latent{Fingerprint: "00112233445566ff", Shape: []int{2, 300}, DType: DTypeFloat32, Data: make([]float32, 600)}
	l.Data[0], l.Data[599] = 1, -2
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := "ae11" + "00112233445566ff" + "02" + "02" + "ac02" + "0000803f"
	if got := hex.EncodeToString(b[:len(want)/2]); got != want {
		t.Errorf("header = %s, want %s", got, want)
	}
	if got := hex.EncodeToString(b[len(b)-4:]); got != "000000c0" {
		t.Errorf("last value = %s, want 000000c0 (-2)", got)
	}
	if len(b) != 11+3+600*4 {
		t.Errorf("%d bytes, want %d", len(b), 11+3+600*4)
	}
}

// header builds a binary latent header by hand, for malformed cases.
func header(verDType byte, dims ...uint64) []byte {
	fp, _ := hex.DecodeString(testFP)
	b := append([]byte{0xAE, verDType}, fp...)
	b = append(b, byte(len(dims)))
	for _, d := range dims {
		b = binary.AppendUvarint(b, d)
	}
	return b
}

func TestUnmarshalMalformed(t *testing.T) {
	valid, err := testLatent(1).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	with := func(i int, v byte) []byte {
		b := bytes.Clone(valid)
		b[i] = v
		return b
	}
	data := func(b []byte, n int) []byte { return append(b, make([]byte, n)...) }
	cases := []struct {
		name string
		b    []byte
		msg  string
	}{
		{"empty", nil, "shorter than"},
		{"header only part", valid[:10], "shorter than"},
		{"bad magic", with(0, 0xAF), "magic"},
		{"version 0", with(1, 0x01), "version 0"},
		{"version 2", with(1, 0x21), "version 2"},
		{"dtype 0", with(1, 0x10), "unknown dtype code 0"},
		{"dtype 4", with(1, 0x14), "unknown dtype code 4"},
		{"dtype 15", with(1, 0x1f), "unknown dtype code 15"},
		{"float16", data(header(0x12, 1, 4), 8), "float16 is not supported yet"},
		{"int8", data(header(0x13, 1, 4), 2+4), "int8 is not supported yet"},
		{"ndim 0", header(0x11), "ndim 0"},
		{"ndim 9", data(header(0x11, 1, 1, 1, 1, 1, 1, 1, 1, 1), 4), "ndim 9"},
		{"zero dim", data(header(0x11, 1, 0, 4), 0), "zero"},
		{"truncated varint", append(header(0x11, 1), 0x80), "truncated"},
		{"missing dim", header(0x11, 1, 2)[:12], "dimension 1 truncated"},
		{"non-minimal varint", data(append(header(0x11, 1)[:11], 0x81, 0x00), 4), "shortest form"},
		{"varint overflow", append(append(header(0x11, 1)[:11], bytes.Repeat([]byte{0xff}, 10)...), 1), "larger than 2^28"},
		{"dim over 2^28", header(0x11, 1<<28+1), "larger than 2^28"},
		{"huge product", header(0x11, 1<<14, 1<<14, 2), "more than 2^28"},
		{"truncated data", valid[:len(valid)-1], "truncated"},
		{"no data", valid[:15], "truncated"},
		{"trailing byte", append(bytes.Clone(valid), 0), "1 trailing"},
		{"two latents", append(bytes.Clone(valid), valid...), "trailing"},
	}
	for _, c := range cases {
		var l Latent
		err := l.UnmarshalBinary(c.b)
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: err = %v (%T), want *FormatError", c.name, err, err)
			continue
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %q, want it to mention %q", c.name, err, c.msg)
		}
	}
	// The largest allowed product is fine as a header; only the missing data fails.
	var l Latent
	if err := l.UnmarshalBinary(header(0x11, 1<<14, 1<<14)); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("2^28 elements without data: err = %v, want truncated data", err)
	}
}

func TestMarshalInvalid(t *testing.T) {
	base := func() *Latent {
		return &Latent{Fingerprint: testFP, Shape: []int{1, 4}, DType: DTypeFloat32, Data: make([]float32, 4)}
	}
	cases := []struct {
		name string
		edit func(*Latent)
		msg  string
	}{
		{"float16", func(l *Latent) { l.DType = DTypeFloat16 }, "not supported yet"},
		{"int8", func(l *Latent) { l.DType = DTypeInt8 }, "not supported yet"},
		{"unknown dtype", func(l *Latent) { l.DType = "float64" }, "unknown dtype"},
		{"empty dtype", func(l *Latent) { l.DType = "" }, "unknown dtype"},
		{"no fingerprint", func(l *Latent) { l.Fingerprint = "" }, "fingerprint"},
		{"uppercase fingerprint", func(l *Latent) { l.Fingerprint = strings.ToUpper(testFP) }, "lowercase"},
		{"short fingerprint", func(l *Latent) { l.Fingerprint = testFP[:15] }, "fingerprint"},
		{"no shape", func(l *Latent) { l.Shape = nil }, "0 dimensions"},
		{"9 dims", func(l *Latent) { l.Shape = []int{1, 1, 1, 1, 1, 1, 1, 1, 4} }, "9 dimensions"},
		{"zero dim", func(l *Latent) { l.Shape = []int{0, 4} }, "not positive"},
		{"negative dim", func(l *Latent) { l.Shape = []int{-1, -4} }, "not positive"},
		{"huge", func(l *Latent) { l.Shape = []int{1 << 20, 1 << 20} }, "2^28"},
		{"huge dim", func(l *Latent) { l.Shape = []int{math.MaxInt} }, "2^28"},
		{"short data", func(l *Latent) { l.Data = l.Data[:3] }, "data has 3"},
		{"long data", func(l *Latent) { l.Data = append(l.Data, 0) }, "data has 5"},
	}
	for _, c := range cases {
		l := base()
		c.edit(l)
		_, err := l.MarshalBinary()
		var fe *FormatError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: MarshalBinary err = %v, want *FormatError mentioning %q", c.name, err, c.msg)
		}
		if verr := l.Validate(); verr == nil || verr.Error() != err.Error() {
			t.Errorf("%s: Validate = %v, MarshalBinary = %v", c.name, verr, err)
		}
	}
	if err := base().Validate(); err != nil {
		t.Errorf("valid latent: %v", err)
	}
}

func TestParseFingerprint(t *testing.T) {
	fp, err := ParseFingerprint("00ff10a0b0c0d0e9")
	if err != nil || fp != [8]byte{0x00, 0xff, 0x10, 0xa0, 0xb0, 0xc0, 0xd0, 0xe9} {
		t.Errorf("ParseFingerprint = %x, %v", fp, err)
	}
	for _, s := range []string{"", "00ff10a0b0c0d0e", "00ff10a0b0c0d0e90", "00FF10A0B0C0D0E9", "00ff10a0b0c0d0eg", " 0ff10a0b0c0d0e9"} {
		if _, err := ParseFingerprint(s); err == nil {
			t.Errorf("ParseFingerprint(%q): no error", s)
		}
	}
}

func TestCheckFinite(t *testing.T) {
	l := testLatent(1)
	if i, ok := l.CheckFinite(); !ok || i != -1 {
		t.Errorf("finite latent: CheckFinite = %d, %v", i, ok)
	}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		l.Data[700], l.Data[900] = bad, bad
		if i, ok := l.CheckFinite(); ok || i != 700 {
			t.Errorf("%v at 700: CheckFinite = %d, %v", bad, i, ok)
		}
	}
}

func TestJSONNames(t *testing.T) {
	idx := 2
	for _, c := range []struct {
		v    any
		want string
	}{
		{Latent{Model: "m", Fingerprint: testFP, Shape: []int{1}, DType: "float32", Data: []float32{0.5}},
			`{"model":"m","fingerprint":"0123456789abcdef","shape":[1],"dtype":"float32","data":[0.5]}`},
		{Images{Model: "m", Fingerprint: testFP, Images: []string{"AA=="}},
			`{"model":"m","fingerprint":"0123456789abcdef","images":["AA=="]}`},
		{Problem{Type: "about:blank", Title: "Bad Request", Status: 400, Detail: "d"},
			`{"type":"about:blank","title":"Bad Request","status":400,"detail":"d"}`},
		{Problem{Type: "t", Title: "T", Status: 422, Detail: "d", Instance: "/v1/encode", Index: &idx, RequestID: "r1"},
			`{"type":"t","title":"T","status":422,"detail":"d","instance":"/v1/encode","index":2,"request_id":"r1"}`},
		{Metrics{BCE: 0.1, PSNRdB: 20},
			`{"bce":0.1,"psnr_db":20}`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil || string(b) != c.want {
			t.Errorf("%T: %s, want %s (%v)", c.v, b, c.want, err)
		}
	}
}

func TestProblemError(t *testing.T) {
	idx := 3
	for _, c := range []struct {
		p    Problem
		want string
	}{
		{Problem{Status: 409, Title: "Fingerprint mismatch", Detail: "latent is from other weights"}, "409 Conflict: latent is from other weights"},
		{Problem{Status: 422, Title: "Bad image", Detail: "no ink found", Index: &idx}, "422 Unprocessable Entity: no ink found (image 3)"},
		{Problem{Status: 503, Title: "Service Unavailable"}, "503 Service Unavailable"},
		{Problem{Status: 599, Title: "Odd"}, "599 Odd"},
	} {
		if got := c.p.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
}

// FuzzUnmarshalLatent: any bytes either decode to a latent that encodes back
// to the very same bytes, or fail with a *FormatError; nothing panics.
func FuzzUnmarshalLatent(f *testing.F) {
	for _, l := range []*Latent{testLatent(1), {Fingerprint: testFP, Shape: []int{2, 300}, DType: DTypeFloat32, Data: make([]float32, 600)}} {
		b, err := l.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(bytes.Clone(b), 0))
	}
	f.Add([]byte{})
	f.Add(header(0x11, 1, 1))
	f.Add(append(header(0x11, 1, 1), 0, 0, 0x80, 0x7f))
	f.Add(header(0x12, 1, 2))
	f.Add(header(0x13, 1, 2))
	f.Add(header(0x11, 1<<14, 1<<14))
	f.Add(append(header(0x11, 1)[:11], 0x81, 0x00, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		var l Latent
		err := l.UnmarshalBinary(b)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is a %T, want *FormatError", err, err)
			}
			return
		}
		again, err := l.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded latent does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", b, again)
		}
	})
}
