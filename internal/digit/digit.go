// Package digit converts between image files and the 28×28 pixel vectors the
// autoencoders work on: float32 in [0,1], row-major, white digit on black, as
// in MNIST. It reads PNG, JPEG (with its EXIF orientation) and GIF (the first
// frame), and writes PNG. It knows nothing of HTTP or models; the server maps
// Error kinds to status codes (KindMalformed 400, KindTooLarge 413,
// KindFormat 415, KindSize 422).
package digit

import (
	"fmt"
	"strings"
)

// side and pixels duplicate model.ImageSide and model.ImageLen on purpose:
// this package must not depend on the model.
const (
	side   = 28
	pixels = side * side
)

// defaultMaxPixels applies when Limits.MaxPixels is not set, so that a zero
// Limits is still safe to use on untrusted input: 4 Mpx decodes into at most
// 32 MiB (16-bit RGBA).
const defaultMaxPixels = 1 << 22

// workSide bounds the longer side of the grid Fit works on. A large image is
// box-averaged down to it as soon as it is decoded, before anything else
// looks at it: the digit ends up 20 pixels tall, so 512 leaves a digit that
// fills a tenth of a photo's width still 50 pixels wide, and the full-size
// image is garbage as soon as it has been read once.
const workSide = 512

// Limits bounds the work one image may cause. They are checked from the
// file's header, before any pixel memory is allocated.
type Limits struct {
	// MaxPixels bounds width×height as the header declares it; ≤ 0 means 4 Mpx.
	MaxPixels int
}

func (l Limits) maxPixels() uint64 {
	if l.MaxPixels <= 0 {
		return defaultMaxPixels
	}
	return uint64(l.MaxPixels)
}

// Options selects how an image that is not a ready-made MNIST digit is treated.
type Options struct {
	// Fit runs the MNIST preparation (see Fit) on the image, whatever its size.
	// Without it only 28×28 images are accepted and taken as they are.
	Fit bool
}

// Format is an image file format Decode reads.
type Format string

// The formats Decode reads, recognised by their signatures.
const (
	PNG  Format = "PNG"
	JPEG Format = "JPEG"
	GIF  Format = "GIF"
)

// Formats lists every Format, in the order messages name them.
var Formats = []Format{PNG, JPEG, GIF}

// MediaType is the format's registered media type: image/png, image/jpeg, image/gif.
func (f Format) MediaType() string { return "image/" + strings.ToLower(string(f)) }

// formatNames is "PNG, JPEG or GIF", for messages.
func formatNames() string {
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Kind classifies an Error by whose fault it is and how the caller should answer.
type Kind int

const (
	// KindMalformed: the bytes are empty, or carry the signature of a format
	// Decode reads but are not one complete, valid file of it.
	KindMalformed Kind = iota + 1
	// KindTooLarge: the header declares more pixels than Limits allows.
	KindTooLarge
	// KindSize: a valid image that cannot be made into a digit (wrong size
	// without Fit, or no ink to fit).
	KindSize
	// KindFormat: the bytes are not in any format Decode reads (no known
	// signature).
	KindFormat
)

func (k Kind) String() string {
	switch k {
	case KindMalformed:
		return "malformed"
	case KindTooLarge:
		return "too large"
	case KindSize:
		return "size"
	case KindFormat:
		return "format"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is the only error type Decode, ReadHeader, Fit and EncodePNG return.
// Msg is written for the end user (it becomes a problem detail), so Error
// returns it bare.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}
