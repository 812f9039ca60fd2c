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
	"slices"
	"strings"
	"testing"

	"github.com/x448/float16"
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
		{"float16 truncated data", data(header(0x12, 1, 4), 7), "needs 8 data bytes, got 7 (truncated)"},
		{"float16 trailing byte", data(header(0x12, 1, 4), 9), "needs 8 data bytes, got 9 (1 trailing)"},
		{"float16 no data", header(0x12, 1, 4), "(truncated)"},
		{"int8 truncated data", data(header(0x13, 1, 4), 2+3), "needs 2 scale and 4 data bytes, got 5 (truncated)"},
		{"int8 trailing byte", data(header(0x13, 1, 4), 2+5), "needs 2 scale and 4 data bytes, got 7 (1 trailing)"},
		{"int8 truncated scale", data(header(0x13, 1, 4), 1), "got 1 (truncated)"},
		{"int8 no scale", header(0x13, 1, 4), "got 0 (truncated)"},
		{"int8 scale but no data", data(header(0x13, 1, 4), 2), "got 2 (truncated)"},
		{"int8 without its scale", data(header(0x13, 1, 4), 4), "got 4 (truncated)"},
		{"float32 data one byte long", data(header(0x11, 1, 4), 17), "needs 16 data bytes, got 17 (1 trailing)"},
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
		{"scale on float32", func(l *Latent) { l.Scale = 0.5 }, "no scale"},
		{"NaN scale on float32", func(l *Latent) { l.Scale = float32(math.NaN()) }, "no scale"},
		{"scale on float16", func(l *Latent) { l.DType, l.Scale = DTypeFloat16, 1 }, "float16 latent has no scale"},
		{"float16 short data", func(l *Latent) { l.DType, l.Data = DTypeFloat16, l.Data[:3] }, "data has 3"},
		{"int8 long data", func(l *Latent) { l.DType, l.Scale, l.Data = DTypeInt8, 1, append(l.Data, 0) }, "data has 5"},
		{"int8 bad scale and shape", func(l *Latent) { l.DType, l.Shape = DTypeInt8, nil }, "0 dimensions"},
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
	// Every dtype: the binary decoder carries non-finite float16 values, and
	// JSON may put anything in an int8 latent's data.
	for _, c := range []struct {
		b    []byte
		want int
	}{
		{append(header(0x12, 3), 0x00, 0x3c, 0x00, 0x7c, 0x00, 0x7e), 1}, // 1, +Inf, NaN
		{append(header(0x12, 2), 0x00, 0x3c, 0x00, 0xfc), 1},             // 1, -Inf
		{append(header(0x13, 2), 0x00, 0x3c, 0x01, 0x02), -1},            // finite int8
	} {
		var l Latent
		if err := l.UnmarshalBinary(c.b); err != nil {
			t.Fatal(err)
		}
		if i, ok := l.CheckFinite(); i != c.want || ok != (c.want < 0) {
			t.Errorf("%s %v: CheckFinite = %d, %v, want %d", l.DType, l.Data, i, ok, c.want)
		}
	}
	l8 := &Latent{DType: DTypeInt8, Scale: 1, Data: []float32{1, float32(math.NaN())}}
	if i, ok := l8.CheckFinite(); ok || i != 1 {
		t.Errorf("int8 NaN: CheckFinite = %d, %v", i, ok)
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
// to the very same bytes, or fail with a *FormatError; nothing panics. A
// float16 or int8 latent whose values CheckValues refuses must be refused by
// MarshalBinary too; float32 carries even NaN bit for bit.
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
	for _, dtype := range []string{DTypeFloat16, DTypeInt8} {
		q, err := randLatent(3, 1, 32).Quantize(dtype)
		if err != nil {
			f.Fatal(err)
		}
		b, err := q.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(bytes.Clone(b), 0))
	}
	f.Add(append(header(0x12, 2), 0x00, 0x7e, 0x01, 0x80))    // NaN, -subnormal
	f.Add(append(header(0x13, 2), 0x00, 0x00, 0x80, 0x7f))    // scale 0, -128, 127
	f.Add(append(header(0x13, 2), 0x01, 0x00, 0x01, 0xff))    // subnormal scale
	f.Add(append(header(0x13, 1, 2), 0x00, 0x3c, 0x81, 0x7f)) // scale 1, -127, 127
	f.Add(append(header(0x13, 1, 2), 0x00, 0x3c, 0x81))       // truncated
	f.Add(append(header(0x12, 1, 1), 0x00, 0x7c))             // +Inf
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
		if _, verr := l.CheckValues(); verr != nil && l.DType != DTypeFloat32 {
			// Decoded faithfully, but not a value the dtype allows: the
			// encoder refuses it with the same error.
			var ve *ValueError
			if _, err := l.MarshalBinary(); !errors.As(err, &ve) || err.Error() != verr.Error() {
				t.Fatalf("CheckValues = %v, but MarshalBinary = %v", verr, err)
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

// randLatent is a float32 latent of the given shape, normal values times sd.
func randLatent(sd float64, shape ...int) *Latent {
	n := 1
	for _, d := range shape {
		n *= d
	}
	rng := rand.New(rand.NewPCG(7, uint64(n)))
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(sd * rng.NormFloat64())
	}
	return &Latent{Model: "ae", Fingerprint: testFP, Shape: shape, DType: DTypeFloat32, Data: data}
}

var allDTypes = []string{DTypeFloat32, DTypeFloat16, DTypeInt8}

// TestLatentDTypesRoundTrip: every dtype, single and batch shapes, survives
// both encodings exactly, and BinarySize is the length MarshalBinary writes.
func TestLatentDTypesRoundTrip(t *testing.T) {
	for _, dtype := range allDTypes {
		for _, shape := range [][]int{{1, 32}, {3, 32}, {1, 32, 7, 7}, {2, 32, 7, 7}, {200}} {
			l, err := randLatent(2, shape...).Quantize(dtype)
			if err != nil {
				t.Fatalf("%s %v: Quantize: %v", dtype, shape, err)
			}
			if i, err := l.CheckValues(); i != -1 || err != nil {
				t.Fatalf("%s %v: quantized latent fails CheckValues: %d, %v", dtype, shape, i, err)
			}
			b, err := l.MarshalBinary()
			if err != nil {
				t.Fatalf("%s %v: MarshalBinary: %v", dtype, shape, err)
			}
			if size := BinarySize(shape, dtype); len(b) != size {
				t.Errorf("%s %v: %d bytes, BinarySize says %d", dtype, shape, len(b), size)
			}
			var got Latent
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatalf("%s %v: UnmarshalBinary: %v", dtype, shape, err)
			}
			got.Model = l.Model
			if !reflect.DeepEqual(&got, l) {
				t.Errorf("%s %v: binary round trip differs", dtype, shape)
			}

			j, err := json.Marshal(l)
			if err != nil {
				t.Fatalf("%s %v: json: %v", dtype, shape, err)
			}
			var back Latent
			if err := json.Unmarshal(j, &back); err != nil {
				t.Fatalf("%s %v: json: %v", dtype, shape, err)
			}
			if !reflect.DeepEqual(&back, l) {
				t.Errorf("%s %v: JSON round trip differs", dtype, shape)
			}
			if hasScale := bytes.Contains(j, []byte(`"scale":`)); hasScale != (dtype == DTypeInt8) {
				t.Errorf("%s %v: JSON has scale = %v", dtype, shape, hasScale)
			}
			if dtype == DTypeInt8 {
				// Whole numbers print as integers: no fraction, no exponent.
				arr := j[bytes.Index(j, []byte(`"data":[`)):]
				if bytes.ContainsAny(arr, ".eE") {
					t.Errorf("%s %v: int8 data in JSON is not all integers: %.80s…", dtype, shape, arr)
				}
			}
		}
	}
}

// TestLatentDTypesGolden pins the float16 and int8 layouts, including the
// documented 47 bytes of a one-image [1, 32] int8 latent.
func TestLatentDTypesGolden(t *testing.T) {
	l := &Latent{Fingerprint: "00112233445566ff", Shape: []int{1, 32}, DType: DTypeInt8, Scale: 0.5, Data: make([]float32, 32)}
	l.Data[0], l.Data[1], l.Data[31] = 127, -127, -1
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 47 || BinarySize([]int{1, 32}, DTypeInt8) != 47 {
		t.Errorf("[1,32] int8: %d bytes, BinarySize %d, want 47", len(b), BinarySize([]int{1, 32}, DTypeInt8))
	}
	want := "ae13" + "00112233445566ff" + "02" + "01" + "20" + "0038" + "7f81" + strings.Repeat("00", 29) + "ff"
	if got := hex.EncodeToString(b); got != want {
		t.Errorf("int8:\n got %s\nwant %s", got, want)
	}

	h := &Latent{Fingerprint: "00112233445566ff", Shape: []int{3}, DType: DTypeFloat16, Data: []float32{1, -2, 65504}}
	if b, err = h.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(b), "ae12"+"00112233445566ff"+"01"+"03"+"003c"+"00c0"+"ff7b"; got != want {
		t.Errorf("float16:\n got %s\nwant %s", got, want)
	}
	for _, c := range []struct {
		shape []int
		dtype string
		want  int
	}{
		{[]int{1, 32, 7, 7}, DTypeFloat32, 15 + 6272},
		{[]int{1, 32, 7, 7}, DTypeFloat16, 15 + 3136},
		{[]int{1, 32, 7, 7}, DTypeInt8, 15 + 2 + 1568},
		{[]int{2, 300}, DTypeInt8, 14 + 2 + 600},
		{[]int{1, 32}, "float64", -1},
		{[]int{1, 32}, "", -1},
	} {
		if got := BinarySize(c.shape, c.dtype); got != c.want {
			t.Errorf("BinarySize(%v, %q) = %d, want %d", c.shape, c.dtype, got, c.want)
		}
	}
}

// TestLatentJSONInt8 decodes an int8 latent as a client writes it, both
// plainly and the way the server does (an embedding struct with its own
// data and strict fields).
func TestLatentJSONInt8(t *testing.T) {
	in := `{"model":"ae","fingerprint":"0123456789abcdef","shape":[1,3],"dtype":"int8","scale":0.0123,"data":[3,-127,0]}`
	var l Latent
	if err := json.Unmarshal([]byte(in), &l); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(l.Data, []float32{3, -127, 0}) || l.Scale != float32(0.0123) || l.Validate() != nil {
		t.Errorf("decoded %+v (Validate: %v)", l, l.Validate())
	}
	var w struct {
		Latent
		Data json.RawMessage `json:"data"`
	}
	dec := json.NewDecoder(strings.NewReader(in))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil || w.Scale != float32(0.0123) || string(w.Data) != "[3,-127,0]" {
		t.Errorf("strict embedding decode: %+v, %v", w, err)
	}
	// 0.0123 is no binary16 value: well-formed, but not a value int8 allows.
	if i, err := l.CheckValues(); i != -1 || !isValueError(err) || !strings.Contains(err.Error(), "not a binary16 value") {
		t.Errorf("scale 0.0123: CheckValues = %d, %v", i, err)
	}

	l.Scale = 0.5
	out, err := json.Marshal(&l)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"model":"ae","fingerprint":"0123456789abcdef","shape":[1,3],"dtype":"int8","scale":0.5,"data":[3,-127,0]}`; string(out) != want {
		t.Errorf("JSON = %s\nwant   %s", out, want)
	}
	if got := l.Values(); !reflect.DeepEqual(got, []float32{1.5, -63.5, 0}) || &got[0] == &l.Data[0] {
		t.Errorf("Values = %v (or aliases Data)", got)
	}
	f := &Latent{DType: DTypeFloat16, Data: []float32{1, 2}}
	if got := f.Values(); &got[0] != &f.Data[0] {
		t.Error("float16 Values is not Data")
	}
}

func isValueError(err error) bool {
	var ve *ValueError
	return errors.As(err, &ve)
}

func TestQuantize(t *testing.T) {
	cases := []struct {
		name string
		data []float32
	}{
		{"normal", randLatent(1, 3, 32).Data},
		{"wide", randLatent(300, 2, 32, 7, 7).Data},
		{"tiny", randLatent(1e-7, 1, 64).Data},
		{"subnormal float32", []float32{1e-40, -3e-41, 0, 1e-45}},
		{"negative max", []float32{-10, 3, 0.25, 9.99}},
		{"all zero", make([]float32, 32)},
		{"one value", []float32{-0.7}},
		{"large", []float32{8e6, -4e6, 65504, 1}},
		{"float16 edge", []float32{65504, -65519.99, 0x1p-14, 0x1p-24, 0x1p-25 * 1.5}},
	}
	for _, c := range cases {
		src := &Latent{Model: "ae", Fingerprint: testFP, Shape: []int{len(c.data)}, DType: DTypeFloat32, Data: c.data}
		orig := bytes.Clone(mustMarshal(t, src))
		var maxAbs float64
		for _, x := range c.data {
			maxAbs = math.Max(maxAbs, math.Abs(float64(x)))
		}
		for _, dtype := range allDTypes {
			q, err := src.Quantize(dtype)
			if dtype == DTypeFloat16 && maxAbs >= 65520 {
				if !isFormatError(err) {
					t.Errorf("%s → float16: err = %v, want *FormatError", c.name, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s → %s: %v", c.name, dtype, err)
				continue
			}
			if q.Model != src.Model || q.Fingerprint != src.Fingerprint || !reflect.DeepEqual(q.Shape, src.Shape) || q.DType != dtype {
				t.Errorf("%s → %s: header %+v", c.name, dtype, q)
			}
			if &q.Data[0] == &src.Data[0] || &q.Shape[0] == &src.Shape[0] {
				t.Errorf("%s → %s: result aliases the source", c.name, dtype)
			}
			if _, err := q.CheckValues(); err != nil {
				t.Errorf("%s → %s: %v", c.name, dtype, err)
			}
			v := q.Values()
			switch dtype {
			case DTypeFloat32:
				if !reflect.DeepEqual(v, c.data) {
					t.Errorf("%s → float32: not a copy", c.name)
				}
			case DTypeFloat16:
				for i, x := range c.data {
					d := math.Abs(float64(v[i]) - float64(x))
					// Relative 2^-11 for normal binary16, half the subnormal
					// step 2^-24 below.
					if d > math.Abs(float64(x))*0x1p-11 && d > 0x1p-25 {
						t.Errorf("%s → float16: value %d %v became %v", c.name, i, x, v[i])
					}
				}
			case DTypeInt8:
				s := float64(q.Scale)
				if maxAbs == 0 {
					if q.Scale != 1 {
						t.Errorf("%s → int8: scale %v for zero data, want 1", c.name, q.Scale)
					}
				} else {
					// The smallest binary16 at or above max|x|/127, normal.
					prev := float64(float16.Fromfloat32(q.Scale).Bits() - 1)
					prev = float64(float16.Frombits(uint16(prev)).Float32())
					if s < maxAbs/127 || (s > 0x1p-14 && prev >= maxAbs/127) {
						t.Errorf("%s → int8: scale %v for max|x| %v (max|x|/127 = %v)", c.name, s, maxAbs, maxAbs/127)
					}
				}
				for i, x := range c.data {
					if d := math.Abs(float64(v[i]) - float64(x)); d > s/2 {
						t.Errorf("%s → int8: value %d %v became %v (scale %v)", c.name, i, x, v[i], s)
					}
				}
			}
			if !bytes.Equal(mustMarshal(t, src), orig) {
				t.Fatalf("%s → %s: source changed", c.name, dtype)
			}
		}
	}

	// Halves round away from zero; -0 becomes 0.
	q, err := (&Latent{DType: DTypeFloat32, Data: []float32{127, 2.5, -2.5, 0.5, -0.5, -0.25}}).Quantize(DTypeInt8)
	if err != nil || q.Scale != 1 || !reflect.DeepEqual(q.Data, []float32{127, 3, -3, 1, -1, 0}) || math.Signbit(float64(q.Data[5])) {
		t.Errorf("int8 rounding: %v scale %v, %v", q.Data, q.Scale, err)
	}

	for _, c := range []struct {
		name  string
		l     *Latent
		dtype string
		msg   string
	}{
		{"from float16", &Latent{DType: DTypeFloat16, Data: []float32{1}}, DTypeInt8, "only a float32"},
		{"from int8", &Latent{DType: DTypeInt8, Scale: 1, Data: []float32{1}}, DTypeFloat32, "only a float32"},
		{"to float64", &Latent{DType: DTypeFloat32, Data: []float32{1}}, "float64", "unknown dtype"},
		{"NaN", &Latent{DType: DTypeFloat32, Data: []float32{1, float32(math.NaN())}}, DTypeInt8, "value 1"},
		{"+Inf to float32", &Latent{DType: DTypeFloat32, Data: []float32{float32(math.Inf(1))}}, DTypeFloat32, "value 0"},
		{"-Inf to float16", &Latent{DType: DTypeFloat32, Data: []float32{0, 0, float32(math.Inf(-1))}}, DTypeFloat16, "value 2"},
		{"beyond float16", &Latent{DType: DTypeFloat32, Data: []float32{1, 65520}}, DTypeFloat16, "value 1"},
		{"beyond int8 scale", &Latent{DType: DTypeFloat32, Data: []float32{1, -1e7}}, DTypeInt8, "value 1"},
	} {
		if _, err := c.l.Quantize(c.dtype); !isFormatError(err) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want *FormatError mentioning %q", c.name, err, c.msg)
		}
	}
}

func isFormatError(err error) bool {
	var fe *FormatError
	return errors.As(err, &fe)
}

func mustMarshal(t *testing.T, l *Latent) []byte {
	t.Helper()
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckValues: values a dtype does not allow are a *ValueError from
// CheckValues and MarshalBinary, never written, yet read faithfully from
// bytes that hold them, for the server to answer 422.
func TestCheckValues(t *testing.T) {
	f16 := func(v float32) []byte {
		return binary.LittleEndian.AppendUint16(nil, float16.Fromfloat32(v).Bits())
	}
	int8Bytes := func(scale []byte, q ...byte) []byte {
		return append(append(header(0x13, 1, uint64(len(q))), scale...), q...)
	}
	nan := float32(math.NaN())
	cases := []struct {
		name  string
		l     Latent // when b is nil
		b     []byte // binary form, when the format can carry it
		index int
		msg   string
	}{
		{name: "scale 0", b: int8Bytes(f16(0), 1, 2), index: -1, msg: "is zero"},
		{name: "scale -0", b: int8Bytes([]byte{0x00, 0x80}, 1, 2), index: -1, msg: "is zero"},
		{name: "scale -1", b: int8Bytes(f16(-1), 1, 2), index: -1, msg: "is negative"},
		{name: "subnormal scale 1e-6", b: int8Bytes(f16(1e-6), 1, 2), index: -1, msg: "subnormal"},
		{name: "smallest subnormal scale", b: int8Bytes([]byte{0x01, 0x00}, 1, 2), index: -1, msg: "subnormal"},
		{name: "scale +Inf", b: int8Bytes(f16(float32(math.Inf(1))), 1, 2), index: -1, msg: "infinite"},
		{name: "scale NaN", b: int8Bytes([]byte{0x00, 0x7e}, 1, 2), index: -1, msg: "NaN"},
		{name: "int8 -128", b: int8Bytes(f16(0.5), 1, 0x80, 0x80), index: 1, msg: "value 1 is -128"},
		{name: "float16 NaN", b: append(header(0x12, 3), append(append(f16(1), f16(2)...), 0x00, 0x7e)...), index: 2, msg: "NaN"},
		{name: "float16 -Inf", b: append(header(0x12, 2), append(f16(1), 0x00, 0xfc)...), index: 1, msg: "-Inf"},
		// Only JSON (or a Go caller) can say these.
		{name: "JSON scale 0.0123", l: Latent{DType: DTypeInt8, Scale: 0.0123, Data: []float32{1}}, index: -1, msg: "not a binary16 value"},
		{name: "JSON scale 1e-6", l: Latent{DType: DTypeInt8, Scale: 1e-6, Data: []float32{1}}, index: -1, msg: "subnormal"},
		{name: "JSON scale 1e5", l: Latent{DType: DTypeInt8, Scale: 1e5, Data: []float32{1}}, index: -1, msg: "beyond the binary16 range"},
		{name: "JSON no scale", l: Latent{DType: DTypeInt8, Data: []float32{1}}, index: -1, msg: "is zero"},
		{name: "int8 128", l: Latent{DType: DTypeInt8, Scale: 1, Data: []float32{0, 127, 128}}, index: 2, msg: "value 2 is 128"},
		{name: "int8 -128 JSON", l: Latent{DType: DTypeInt8, Scale: 1, Data: []float32{-128}}, index: 0, msg: "value 0 is -128"},
		{name: "int8 1.5", l: Latent{DType: DTypeInt8, Scale: 1, Data: []float32{-127, 1.5}}, index: 1, msg: "whole number"},
		{name: "int8 NaN", l: Latent{DType: DTypeInt8, Scale: 1, Data: []float32{nan}}, index: 0, msg: "NaN"},
		{name: "float16 0.1", l: Latent{DType: DTypeFloat16, Data: []float32{0.5, 0.1}}, index: 1, msg: "cannot hold exactly"},
		{name: "float16 65505", l: Latent{DType: DTypeFloat16, Data: []float32{65505}}, index: 0, msg: "cannot hold exactly"},
		{name: "float16 NaN JSON", l: Latent{DType: DTypeFloat16, Data: []float32{nan}}, index: 0, msg: "finite"},
		{name: "float32 NaN", l: Latent{DType: DTypeFloat32, Data: []float32{0, nan}}, index: 1, msg: "finite"},
		{name: "float32 +Inf", l: Latent{DType: DTypeFloat32, Data: []float32{float32(math.Inf(1))}}, index: 0, msg: "finite"},
	}
	for _, c := range cases {
		l := c.l
		if c.b != nil {
			if err := l.UnmarshalBinary(c.b); err != nil {
				t.Errorf("%s: UnmarshalBinary refused the bytes: %v", c.name, err)
				continue
			}
		} else {
			l.Fingerprint = testFP
			l.Shape = []int{len(l.Data)}
			if err := l.Validate(); err != nil {
				t.Errorf("%s: Validate: %v", c.name, err)
			}
		}
		i, err := l.CheckValues()
		var ve *ValueError
		if !errors.As(err, &ve) || i != c.index || ve.Index != c.index || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: CheckValues = %d, %v; want %d and a *ValueError mentioning %q", c.name, i, err, c.index, c.msg)
			continue
		}
		if l.DType == DTypeFloat32 {
			continue // the binary format carries float32 NaN and infinities
		}
		if _, merr := l.MarshalBinary(); !isValueError(merr) || merr.Error() != err.Error() {
			t.Errorf("%s: MarshalBinary = %v, want %v", c.name, merr, err)
		}
	}

	// Allowed oddities.
	for _, l := range []Latent{
		{DType: DTypeInt8, Scale: 0x1p-14, Data: []float32{float32(math.Copysign(0, -1)), -127, 127}},
		{DType: DTypeInt8, Scale: 65504, Data: []float32{1}},
		{DType: DTypeFloat16, Data: []float32{0x1p-24, -65504, float32(math.Copysign(0, -1))}},
		{DType: DTypeFloat32, Data: []float32{math.MaxFloat32, 1e-45}},
	} {
		if i, err := l.CheckValues(); i != -1 || err != nil {
			t.Errorf("%s %v scale %v: CheckValues = %d, %v", l.DType, l.Data, l.Scale, i, err)
		}
	}
}

// TestFloat16AllValues: every finite binary16 value decodes and encodes back
// to the same two bytes.
func TestFloat16AllValues(t *testing.T) {
	var data []byte
	for h := range 1 << 16 {
		if h&0x7c00 != 0x7c00 {
			data = binary.LittleEndian.AppendUint16(data, uint16(h))
		}
	}
	b := append(header(0x12, uint64(len(data)/2)), data...)
	var l Latent
	if err := l.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if i, err := l.CheckValues(); err != nil {
		t.Fatalf("value %d: %v", i, err)
	}
	if again := mustMarshal(t, &l); !bytes.Equal(again, b) {
		t.Error("float16 values do not survive a round trip")
	}
}

func TestDequantize(t *testing.T) {
	f := &Latent{Fingerprint: "0123456789abcdef", Shape: []int{1, 4}, DType: DTypeFloat32, Data: []float32{0.5, -1, 2, 0}}
	if got, err := f.Dequantize(); err != nil || got != f {
		t.Errorf("float32: %v, %v; want the latent itself", got, err)
	}
	q, err := f.Quantize(DTypeInt8)
	if err != nil {
		t.Fatal(err)
	}
	d, err := q.Dequantize()
	if err != nil || d.DType != DTypeFloat32 || d.Scale != 0 || !slices.Equal(d.Data, q.Values()) || !slices.Equal(d.Shape, f.Shape) {
		t.Errorf("int8: %+v, %v", d, err)
	}
	q.Scale = 0
	var ve *ValueError
	if _, err := q.Dequantize(); !errors.As(err, &ve) {
		t.Errorf("int8 without a scale: %v, want *ValueError", err)
	}
}
