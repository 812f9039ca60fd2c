package api

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
)

// Names of the element types in Latent.DType. Only DTypeFloat32 is
// implemented; the others are reserved (see the package documentation).
const (
	DTypeFloat32 = "float32"
	DTypeFloat16 = "float16"
	DTypeInt8    = "int8"
)

// Latent is a batch of codes from an encoder: [N, …the model's latent
// shape] (GET /v1/models), e.g. NCHW [N, 32, 7, 7] for conv or [N, 32] for
// dense. In JSON the data is a flat row-major array; see the package
// documentation for the binary form, which carries no Model.
type Latent struct {
	Model       string    `json:"model"`
	Fingerprint string    `json:"fingerprint"` // 16 lowercase hex digits
	Shape       []int     `json:"shape"`
	DType       string    `json:"dtype"`
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

const (
	latentMagic   = 0xAE
	latentVersion = 1
	maxDims       = 8
	// maxElements bounds the product of the dimensions so that a header alone
	// can never ask for more than 1 GiB of float32.
	maxElements = 1 << 28
	// headerFixed is magic, version/dtype, fingerprint and ndim.
	headerFixed = 11
)

// Wire codes of the dtypes, the low nibble of byte 1.
const (
	codeFloat32 = 1
	codeFloat16 = 2
	codeInt8    = 3
)

var dtypeNames = map[byte]string{codeFloat32: DTypeFloat32, codeFloat16: DTypeFloat16, codeInt8: DTypeInt8}

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

// Validate checks what both encodings require: a known, implemented dtype, a
// well-formed fingerprint, 1 to 8 dimensions of at least 1 each, and exactly
// as many values as the shape says. It does not look at the values (see
// CheckFinite) nor compare the shape with any model's.
func (l *Latent) Validate() error {
	if err := checkDType(l.DType); err != nil {
		return err
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
	switch name {
	case DTypeFloat32:
		return nil
	case DTypeFloat16, DTypeInt8:
		return formatErr("dtype %s is not supported yet (use float32)", name)
	}
	return formatErr("unknown dtype %q (want float32)", name)
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

// CheckFinite finds the first NaN or infinity in Data. The codec carries them
// faithfully; whether they are acceptable input is the server's call (422).
func (l *Latent) CheckFinite() (index int, ok bool) {
	for i, v := range l.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return i, false
		}
	}
	return -1, true
}

// BinarySize is the length of a latent of this shape in the binary format,
// header included: for float32, 11 bytes, one varint per dimension, and 4
// bytes per number. Only float32 is implemented; other dtypes answer -1.
func BinarySize(shape []int, dtype string) int {
	if dtype != DTypeFloat32 {
		return -1
	}
	size, n := headerFixed, 1
	for _, d := range shape {
		size += uvarintLen(uint64(d))
		n *= d
	}
	return size + 4*n
}

// MarshalBinary encodes l in the binary format (Model is not carried). It
// fails with a *FormatError when Validate does.
func (l *Latent) MarshalBinary() ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	fp, _ := ParseFingerprint(l.Fingerprint)
	size := headerFixed + 4*len(l.Data)
	for _, d := range l.Shape {
		size += uvarintLen(uint64(d))
	}
	b := make([]byte, 0, size)
	b = append(b, latentMagic, latentVersion<<4|codeFloat32)
	b = append(b, fp[:]...)
	b = append(b, byte(len(l.Shape)))
	for _, d := range l.Shape {
		b = binary.AppendUvarint(b, uint64(d))
	}
	for _, v := range l.Data {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b, nil
}

// UnmarshalBinary decodes the binary format into l, replacing every field;
// Model becomes "" as the format has none. Any deviation from the format is a
// *FormatError. The data is copied: l does not alias b.
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
	if err := checkDType(name); err != nil {
		return err
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
	if rest := len(b) - pos; rest != 4*n {
		if rest < 4*n {
			return formatErr("shape %v needs %d data bytes, got %d (truncated)", shape, 4*n, rest)
		}
		return formatErr("shape %v needs %d data bytes, got %d (%d trailing)", shape, 4*n, rest, rest-4*n)
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[pos+4*i:]))
	}
	*l = Latent{
		Fingerprint: hex.EncodeToString(b[2:10]),
		Shape:       shape,
		DType:       name,
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
