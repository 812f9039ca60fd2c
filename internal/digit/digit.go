// Package digit converts between PNG files and the 28×28 pixel vectors the
// autoencoders work on: float32 in [0,1], row-major, white digit on black, as
// in MNIST. It knows nothing of HTTP or models; the server maps Error kinds to
// status codes (KindMalformed 400, KindTooLarge 413, KindSize 422).
package digit

import "fmt"

// side and pixels duplicate model.ImageSide and model.ImageLen on purpose:
// this package must not depend on the model.
const (
	side   = 28
	pixels = side * side
)

// defaultMaxPixels applies when Limits.MaxPixels is not set, so that a zero
// Limits is still safe to use on untrusted input: 4 Mpx decodes into at most
// 32 MiB (16-bit RGBA) plus 16 MiB of float32 grey.
const defaultMaxPixels = 1 << 22

// Limits bounds the work one PNG may cause. They are checked from the PNG
// header, before any pixel memory is allocated.
type Limits struct {
	// MaxPixels bounds width×height as declared in IHDR; ≤ 0 means 4 Mpx.
	MaxPixels int
}

// Options selects how an image that is not a ready-made MNIST digit is treated.
type Options struct {
	// Fit runs the MNIST preparation (see Fit) on the image, whatever its size.
	// Without it only 28×28 images are accepted and taken as they are.
	Fit bool
}

// Kind classifies an Error by whose fault it is and how the caller should answer.
type Kind int

const (
	// KindMalformed: the bytes are not one complete, valid PNG.
	KindMalformed Kind = iota + 1
	// KindTooLarge: the header declares more pixels than Limits allows.
	KindTooLarge
	// KindSize: a valid PNG that cannot be made into a digit (wrong size without
	// Fit, or no ink to fit).
	KindSize
)

func (k Kind) String() string {
	switch k {
	case KindMalformed:
		return "malformed"
	case KindTooLarge:
		return "too large"
	case KindSize:
		return "size"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is the only error type Decode, Fit and EncodePNG return. Msg is written
// for the end user (it becomes a problem detail), so Error returns it bare.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}
