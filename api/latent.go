package api

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"

	"github.com/x448/float16"
)

// Names of the element types in Latent.DType (see the package documentation
// for their binary layout and Latent for what Data holds in each).
const (
	DTypeFloat32 = "float32"
	DTypeFloat16 = "float16"
	DTypeInt8    = "int8"
)

// Latent is a batch of codes from an encoder: [N, …the model's latent
// shape] (GET /v1/models), e.g. NCHW [N, 32, 7, 7] for conv or [N, 32] for
// dense. In JSON the data is a flat row-major array; see the package
// documentation for the binary form, which carries no Model.
//
// What Data holds depends on DType:
//
//   - DTypeFloat32: the numbers themselves; Scale is 0.
//   - DTypeFloat16: the numbers themselves, each exactly representable in
//     IEEE 754 binary16; Scale is 0.
//   - DTypeInt8: whole numbers in −127…127, standing for Data[i]×Scale, where
//     Scale is a positive normal binary16 value. In JSON they print as
//     integers, beside "scale".
//
// Values returns the numbers in every case; Quantize makes a float16 or int8
// latent from a float32 one; CheckValues checks that Data and Scale are what
// the dtype allows.
type Latent struct {
	Model       string    `json:"model"`
	Fingerprint string    `json:"fingerprint"` // 16 lowercase hex digits
	Shape       []int     `json:"shape"`
	DType       string    `json:"dtype"`
	Scale       float32   `json:"scale,omitempty"` // int8 only: value = Data[i] * Scale
	Data        []float32 `json:"data"`
}

// FormatError reports a latent that is not well-formed, in either encoding.
// It is always the client's mistake (400).
type FormatError struct {
	Msg string
}

func (e *FormatError) Error() string { return "invalid latent: " + e.Msg }

func formatErr(format string, args ...any) *FormatError {
	return &FormatError{Msg: fmt.Sprintf(format, args...)}
}

// ValueError reports a well-formed latent whose values its dtype does not
// allow (see CheckValues): a server answers 422, not 400. Index is the
// position in Data of the first bad value, or -1 when the problem is the
// int8 scale.
type ValueError struct {
	Msg   string
	Index int
}

func (e *ValueError) Error() string { return "invalid latent: " + e.Msg }

func valueErr(index int, format string, args ...any) *ValueError {
	return &ValueError{Msg: fmt.Sprintf(format, args...), Index: index}
}

const (
	latentMagic   = 0xAE
	latentVersion = 1
	maxDims       = 8
	// maxElements bounds the product of the dimensions so that a header alone
	// can never ask for more than 1 GiB of float32.
	maxElements = 1 << 28
	// headerFixed is magic, version/dtype, fingerprint and ndim.
	headerFixed = 11
	// scaleLen is the int8 scale, a binary16 after the dimensions.
	scaleLen = 2
	// maxInt8 bounds the int8 data: -128 is not used, so that the range is
	// symmetric.
	maxInt8 = 127
	// minNormal16 and maxFloat16 are the smallest positive normal and the
	// largest finite binary16 values.
	minNormal16 = 0x1p-14
	maxFloat16  = 65504
)

// Wire codes of the dtypes, the low nibble of byte 1.
const (
	codeFloat32 = 1
	codeFloat16 = 2
	codeInt8    = 3
)

var dtypeNames = map[byte]string{codeFloat32: DTypeFloat32, codeFloat16: DTypeFloat16, codeInt8: DTypeInt8}

// elemSize is the number of bytes per value of a dtype, 0 for an unknown one.
func elemSize(dtype string) int {
	switch dtype {
	case DTypeFloat32:
		return 4
	case DTypeFloat16:
		return 2
	case DTypeInt8:
		return 1
	}
	return 0
}

// ParseFingerprint reads the JSON form of a fingerprint. Only lowercase is
// accepted: it is the canonical form, and servers may compare the strings.
func ParseFingerprint(s string) ([8]byte, error) {
	var fp [8]byte
	if len(s) != 16 {
		return fp, formatErr("fingerprint %q: want 16 lowercase hex digits", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fp, formatErr("fingerprint %q: want 16 lowercase hex digits", s)
		}
	}
	hex.Decode(fp[:], []byte(s))
	return fp, nil
}

// Validate checks what both encodings require: a known dtype, a well-formed
// fingerprint, 1 to 8 dimensions of at least 1 each, exactly as many values
// as the shape says, and no Scale unless the dtype is int8. It does not look
// at the values nor at an int8 scale (see CheckValues and CheckFinite), nor
// compare the shape with any model's.
func (l *Latent) Validate() error {
	if err := checkDType(l.DType); err != nil {
		return err
	}
	if l.DType != DTypeInt8 && l.Scale != 0 {
		return formatErr("a %s latent has no scale (got %v; only int8 has one)", l.DType, l.Scale)
	}
	if _, err := ParseFingerprint(l.Fingerprint); err != nil {
		return err
	}
	n, err := elements(l.Shape)
	if err != nil {
		return err
	}
	if n != len(l.Data) {
		return formatErr("shape %v needs %d values, data has %d", l.Shape, n, len(l.Data))
	}
	return nil
}

func checkDType(name string) error {
	if elemSize(name) == 0 {
		return formatErr("unknown dtype %q (want float32, float16 or int8)", name)
	}
	return nil
}

// elements is the product of the dimensions, checked before it can overflow
// (each factor is at most 2^28, so int64 holds any partial product).
func elements(shape []int) (int, error) {
	if len(shape) < 1 || len(shape) > maxDims {
		return 0, formatErr("shape %v has %d dimensions, want 1 to %d", shape, len(shape), maxDims)
	}
	n := 1
	for _, d := range shape {
		if d < 1 {
			return 0, formatErr("shape %v: dimension %d is not positive", shape, d)
		}
		if d > maxElements || int64(n)*int64(d) > maxElements {
			return 0, formatErr("shape %v has more than 2^28 elements", shape)
		}
		n *= d
	}
	return n, nil
}

// CheckFinite finds the first NaN or infinity in Data, whatever the dtype
// (an int8 scale is checked by CheckValues). The codec carries them
// faithfully; whether they are acceptable input is the server's call (422).
func (l *Latent) CheckFinite() (index int, ok bool) {
	for i, v := range l.Data {
		if !isFinite(v) {
			return i, false
		}
	}
	return -1, true
}

func isFinite(v float32) bool {
	return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
}

// isFloat16 reports whether v is a finite value that binary16 holds exactly.
func isFloat16(v float32) bool {
	return isFinite(v) && float16.Fromfloat32(v).Float32() == v
}

// CheckValues finds the first value that l's dtype does not allow, which a
// server answers with 422; the binary decoder carries such values faithfully
// so that the server can say which. It returns -1, nil when all is well, and
// otherwise a *ValueError with the same index:
//
//   - float32: a NaN or an infinity (as CheckFinite);
//   - float16: a NaN, an infinity, or a number binary16 cannot hold exactly;
//   - int8: a Scale that is not a positive normal binary16 value (index -1),
//     or a value that is not a whole number in −127…127.
//
// It assumes a known dtype (see Validate); any other has no values to judge.
func (l *Latent) CheckValues() (index int, err error) {
	switch l.DType {
	case DTypeFloat32:
		if i, ok := l.CheckFinite(); !ok {
			return i, valueErr(i, "value %d is %v; values must be finite", i, l.Data[i])
		}
	case DTypeFloat16:
		for i, v := range l.Data {
			if !isFinite(v) {
				return i, valueErr(i, "float16 value %d is %v; values must be finite", i, v)
			}
			if !isFloat16(v) {
				return i, valueErr(i, "float16 value %d is %v, which binary16 cannot hold exactly (nearest %v)",
					i, v, float16.Fromfloat32(v).Float32())
			}
		}
	case DTypeInt8:
		if err := checkScale(l.Scale); err != nil {
			return -1, err
		}
		for i, v := range l.Data {
			if !(v >= -maxInt8 && v <= maxInt8) || v != float32(math.Trunc(float64(v))) {
				return i, valueErr(i, "int8 value %d is %v, want a whole number in -127…127", i, v)
			}
		}
	}
	return -1, nil
}

// checkScale accepts what an int8 scale must be: a positive normal binary16
// value, so that it survives the binary format exactly and means something.
func checkScale(s float32) *ValueError {
	why := ""
	switch {
	case math.IsNaN(float64(s)):
		why = "NaN"
	case math.IsInf(float64(s), 0):
		why = "infinite"
	case s == 0:
		why = "zero"
	case s < 0:
		why = "negative"
	case s < minNormal16:
		why = fmt.Sprintf("subnormal in binary16 (below %v, the smallest normal)", float32(minNormal16))
	case s > maxFloat16:
		why = fmt.Sprintf("beyond the binary16 range (largest %v)", maxFloat16)
	case !isFloat16(s):
		why = fmt.Sprintf("not a binary16 value (nearest %v)", float16.Fromfloat32(s).Float32())
	default:
		return nil
	}
	return valueErr(-1, "int8 scale %v is %s; want a positive normal binary16 value", s, why)
}

// Dequantize returns l as float32, the numbers it stands for, once its
// scale and values pass CheckValues (a *ValueError otherwise). A float32
// latent is returned as it is, unchecked: CheckFinite judges its values.
func (l *Latent) Dequantize() (*Latent, error) {
	if l.DType == DTypeFloat32 {
		return l, nil
	}
	if _, err := l.CheckValues(); err != nil {
		return nil, err
	}
	return &Latent{Model: l.Model, Fingerprint: l.Fingerprint, Shape: l.Shape, DType: DTypeFloat32, Data: l.Values()}, nil
}

// Values returns the numbers l stands for: Data itself for float32 and
// float16, and a new slice of Data[i]×Scale for int8 (exact in float32).
func (l *Latent) Values() []float32 {
	if l.DType != DTypeInt8 {
		return l.Data
	}
	out := make([]float32, len(l.Data))
	for i, q := range l.Data {
		out[i] = q * l.Scale
	}
	return out
}

// Quantize converts a float32 latent to dtype, returning a new latent with
// the same Model, Fingerprint and Shape (l is unchanged and not aliased):
//
//   - float32: a copy.
//   - float16: each value rounded to the nearest binary16 (ties to even), a
//     relative error of at most 2^-11 for normal values. A value that would
//     round to infinity (|x| ≥ 65520) is an error.
//   - int8: symmetric, one scale for the whole tensor: the smallest positive
//     normal binary16 value ≥ max|x|/127 (1 for all-zero data), and each
//     value round(x/scale), halves away from zero, so that
//     |Values()[i] − x| ≤ Scale/2. Data whose max|x| needs a scale beyond
//     65504 is an error.
//
// A latent of another dtype, an unknown dtype, or a NaN or infinite value is
// a *FormatError. Quantize does not otherwise Validate l.
func (l *Latent) Quantize(dtype string) (*Latent, error) {
	if l.DType != DTypeFloat32 {
		return nil, formatErr("cannot quantize a %q latent, only a float32 one", l.DType)
	}
	if err := checkDType(dtype); err != nil {
		return nil, err
	}
	if i, ok := l.CheckFinite(); !ok {
		return nil, formatErr("cannot quantize value %d: it is %v", i, l.Data[i])
	}
	q := &Latent{Model: l.Model, Fingerprint: l.Fingerprint, DType: dtype, Data: make([]float32, len(l.Data))}
	if l.Shape != nil {
		q.Shape = append([]int{}, l.Shape...)
	}
	switch dtype {
	case DTypeFloat32:
		copy(q.Data, l.Data)
	case DTypeFloat16:
		for i, v := range l.Data {
			h := float16.Fromfloat32(v)
			if !h.IsFinite() {
				return nil, formatErr("cannot quantize value %d to float16: %v is beyond ±%v", i, v, maxFloat16)
			}
			q.Data[i] = h.Float32()
		}
	case DTypeInt8:
		var maxAbs float64
		at := -1
		for i, v := range l.Data {
			if a := math.Abs(float64(v)); a > maxAbs {
				maxAbs, at = a, i
			}
		}
		scale, ok := int8Scale(maxAbs)
		if !ok {
			return nil, formatErr("cannot quantize value %d to int8: %v needs a scale beyond the binary16 range", at, l.Data[at])
		}
		q.Scale = scale
		for i, v := range l.Data {
			r := math.Round(float64(v) / float64(scale)) // halves away from zero
			// Through int, so that -0 becomes 0 like every encoding makes it.
			q.Data[i] = float32(int(max(-maxInt8, min(maxInt8, r))))
		}
	}
	return q, nil
}

// int8Scale is the smallest positive normal binary16 value s with
// s ≥ maxAbs/127, 1 when maxAbs is 0, and false when there is none.
func int8Scale(maxAbs float64) (float32, bool) {
	if maxAbs == 0 {
		return 1, true
	}
	t := maxAbs / maxInt8
	if t > maxFloat16 {
		return 0, false
	}
	if t <= minNormal16 {
		return minNormal16, true
	}
	// Rounding to nearest lands within one step of the answer; walk there.
	// Positive finite binary16 values are ordered as their bits.
	h := float16.Fromfloat32(float32(t)).Bits()
	for float64(float16.Frombits(h).Float32()) < t {
		h++
	}
	for h > 0x0400 && float64(float16.Frombits(h-1).Float32()) >= t {
		h--
	}
	return float16.Frombits(h).Float32(), true
}

// BinarySize is the length of a latent of this shape and dtype in the binary
// format, header included: 11 bytes, one varint per dimension, 2 bytes of
// scale for int8, then 4 (float32), 2 (float16) or 1 (int8) bytes per value.
// An unknown dtype answers -1. The shape is not checked (see Validate).
func BinarySize(shape []int, dtype string) int {
	es := elemSize(dtype)
	if es == 0 {
		return -1
	}
	size, n := headerFixed, 1
	for _, d := range shape {
		size += uvarintLen(uint64(d))
		n *= d
	}
	if dtype == DTypeInt8 {
		size += scaleLen
	}
	return size + es*n
}

// MarshalBinary encodes l in the binary format (Model is not carried). It
// fails with a *FormatError when Validate does and, for float16 and int8,
// with a *ValueError when CheckValues does, so that only values the dtype
// allows are ever written. A float32 latent carries NaN and infinities bit
// for bit.
func (l *Latent) MarshalBinary() ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	var code byte
	switch l.DType {
	case DTypeFloat32:
		code = codeFloat32
	case DTypeFloat16:
		code = codeFloat16
	case DTypeInt8:
		code = codeInt8
	}
	if code != codeFloat32 {
		if _, err := l.CheckValues(); err != nil {
			return nil, err
		}
	}
	fp, _ := ParseFingerprint(l.Fingerprint)
	b := make([]byte, 0, BinarySize(l.Shape, l.DType))
	b = append(b, latentMagic, latentVersion<<4|code)
	b = append(b, fp[:]...)
	b = append(b, byte(len(l.Shape)))
	for _, d := range l.Shape {
		b = binary.AppendUvarint(b, uint64(d))
	}
	switch code {
	case codeFloat32:
		for _, v := range l.Data {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	case codeFloat16:
		for _, v := range l.Data {
			b = binary.LittleEndian.AppendUint16(b, float16.Fromfloat32(v).Bits())
		}
	case codeInt8:
		b = binary.LittleEndian.AppendUint16(b, float16.Fromfloat32(l.Scale).Bits())
		for _, v := range l.Data {
			b = append(b, byte(int8(v)))
		}
	}
	return b, nil
}

// UnmarshalBinary decodes the binary format into l, replacing every field;
// Model becomes "" as the format has none. Any deviation from the format is a
// *FormatError. Values are decoded faithfully even when their dtype does not
// allow them (a float16 NaN, an int8 -128, a zero or subnormal int8 scale):
// judging them is CheckValues's job. The data is copied: l does not alias b.
func (l *Latent) UnmarshalBinary(b []byte) error {
	if len(b) < headerFixed {
		return formatErr("%d bytes is shorter than the %d-byte header", len(b), headerFixed)
	}
	if b[0] != latentMagic {
		return formatErr("bad magic byte 0x%02x, want 0x%02X", b[0], latentMagic)
	}
	if v := b[1] >> 4; v != latentVersion {
		return formatErr("unsupported version %d, want %d", v, latentVersion)
	}
	code := b[1] & 0x0f
	name, known := dtypeNames[code]
	if !known {
		return formatErr("unknown dtype code %d", code)
	}
	ndim := int(b[10])
	if ndim < 1 || ndim > maxDims {
		return formatErr("ndim %d, want 1 to %d", ndim, maxDims)
	}
	shape := make([]int, ndim)
	pos := headerFixed
	n := 1
	for i := range shape {
		d, k := binary.Uvarint(b[pos:])
		if k == 0 {
			return formatErr("dimension %d truncated at byte %d", i, pos)
		}
		if k < 0 || d > maxElements {
			return formatErr("dimension %d at byte %d is larger than 2^28", i, pos)
		}
		if k != uvarintLen(d) {
			// One value, one encoding: the format stays canonical, so equal
			// latents are equal bytes.
			return formatErr("dimension %d at byte %d is not in its shortest form", i, pos)
		}
		if d == 0 {
			return formatErr("dimension %d is zero", i)
		}
		if int64(n)*int64(d) > maxElements {
			return formatErr("shape has more than 2^28 elements")
		}
		shape[i] = int(d)
		n *= int(d)
		pos += k
	}
	es := elemSize(name)
	need, what := es*n, fmt.Sprintf("%d data bytes", es*n)
	if code == codeInt8 {
		need, what = scaleLen+n, fmt.Sprintf("%d scale and %d data bytes", scaleLen, n)
	}
	if rest := len(b) - pos; rest != need {
		if rest < need {
			return formatErr("shape %v needs %s, got %d (truncated)", shape, what, rest)
		}
		return formatErr("shape %v needs %s, got %d (%d trailing)", shape, what, rest, rest-need)
	}
	var scale float32
	data := make([]float32, n)
	switch code {
	case codeFloat32:
		for i := range data {
			data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[pos+4*i:]))
		}
	case codeFloat16:
		for i := range data {
			data[i] = float16.Frombits(binary.LittleEndian.Uint16(b[pos+2*i:])).Float32()
		}
	case codeInt8:
		scale = float16.Frombits(binary.LittleEndian.Uint16(b[pos:])).Float32()
		for i, q := range b[pos+scaleLen:] {
			data[i] = float32(int8(q))
		}
	}
	*l = Latent{
		Fingerprint: hex.EncodeToString(b[2:10]),
		Shape:       shape,
		DType:       name,
		Scale:       scale,
		Data:        data,
	}
	return nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
