package digit

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
)

const (
	pngSignature = "\x89PNG\r\n\x1a\n"
	jpegSOI      = "\xff\xd8\xff" // SOI and the first byte of the next marker
)

// Sniff names the format whose signature data starts with.
func Sniff(data []byte) (Format, bool) {
	switch {
	case bytes.HasPrefix(data, []byte(pngSignature)):
		return PNG, true
	case bytes.HasPrefix(data, []byte(jpegSOI)):
		return JPEG, true
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return GIF, true
	}
	return "", false
}

// Header is what an image file declares before its pixel data.
type Header struct {
	Format Format
	// Width and Height are the image as displayed: for a JPEG whose EXIF
	// orientation turns it by 90°, the stored width is Height. A GIF's are
	// its logical screen's.
	Width, Height int
	// Orientation is a JPEG's EXIF orientation, 1 to 8 (1 when it has
	// none, or its EXIF cannot be read); 1 for the other formats.
	Orientation int
}

// Pixels is Width×Height.
func (h Header) Pixels() int64 { return int64(h.Width) * int64(h.Height) }

// ReadHeader identifies data's format from its signature and reads the size
// its header declares, without decoding any pixel data, so that a file
// declaring 100000×100000 costs nothing but a *Error of KindTooLarge.
//
// Empty data is KindMalformed; data without the signature of any format
// Decode reads is KindFormat; data with one whose header is corrupt is
// KindMalformed. A PNG must also be framed correctly up to IEND and end
// exactly there (bytes smuggled after it would otherwise be ignored
// silently, and a batch of concatenated files read as one). A JPEG's EXIF
// orientation is read here; EXIF that cannot be read is ignored, as viewers do.
func ReadHeader(data []byte, lim Limits) (Header, error) {
	if len(data) == 0 {
		return Header{}, errorf(KindMalformed, "empty: 0 bytes, want a %s image", formatNames())
	}
	f, ok := Sniff(data)
	if !ok {
		for _, sig := range []struct {
			f   Format
			sig string
		}{{PNG, pngSignature}, {JPEG, jpegSOI}, {GIF, "GIF89a"}, {GIF, "GIF87a"}} {
			if len(data) < len(sig.sig) && sig.sig[:len(data)] == string(data) {
				return Header{}, errorf(KindMalformed, "malformed %s: truncated in its signature (%d bytes)", sig.f, len(data))
			}
		}
		return Header{}, errorf(KindFormat, "not a %s image (no known signature in the first bytes)", formatNames())
	}
	h := Header{Format: f, Orientation: 1}
	var w, ht int
	switch f {
	case PNG:
		uw, uh, err := pngHeader(data)
		if err != nil {
			return Header{}, err
		}
		w, ht = int(uw), int(uh)
	case JPEG:
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return Header{}, errorf(KindMalformed, "malformed JPEG: %v", err)
		}
		w, ht = cfg.Width, cfg.Height
		h.Orientation = jpegOrientation(data)
	case GIF:
		cfg, err := gif.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return Header{}, errorf(KindMalformed, "malformed GIF: %v", err)
		}
		w, ht = cfg.Width, cfg.Height
	}
	if w <= 0 || ht <= 0 {
		return Header{}, errorf(KindMalformed, "malformed %s: invalid dimensions %d×%d", f, w, ht)
	}
	if px := uint64(w) * uint64(ht); px > lim.maxPixels() {
		return Header{}, errorf(KindTooLarge, "image is %d×%d = %d pixels, limit is %d", w, ht, px, lim.maxPixels())
	}
	if f == PNG {
		// Only within the limit: a bomb is refused before its chunks are walked.
		if err := pngFraming(data); err != nil {
			return Header{}, err
		}
	}
	if h.Orientation >= 5 {
		w, ht = ht, w // turned by 90°
	}
	h.Width, h.Height = w, ht
	return h, nil
}

// Decode reads one PNG, JPEG or GIF image and returns its 784 pixels.
//
// The header is checked first (see ReadHeader); without opt.Fit an image
// that is not 28×28 is refused from it, before any pixel is decoded. A
// JPEG's EXIF orientation is applied; a GIF gives its first frame, on its
// logical screen (transparent outside the frame).
//
// The ink: an image with any pixel less than opaque (alpha < 255 at 8 bits)
// is read by its alpha, the ink being the opacity, so dark strokes on a
// transparent canvas (what an HTML canvas or a drawing app exports) read as a
// white digit on black, whatever their colour. A fully opaque image is read
// by luminance (ITU-R BT.601, as color.GrayModel; a JPEG's own luma); 8-bit
// grey comes back as exactly v/255, so Decode(EncodePNG(px)) == px for such px.
func Decode(data []byte, lim Limits, opt Options) ([]float32, error) {
	return decode(nil, data, lim, opt, true)
}

// DecodeAppend is Decode appending the 784 pixels to dst, so that a caller
// gathering several images (or reusing a buffer) does not pay for a slice
// per image. On error it returns nil.
func DecodeAppend(dst []float32, data []byte, lim Limits, opt Options) ([]float32, error) {
	if dst == nil {
		dst = make([]float32, 0, pixels)
	}
	return decode(dst, data, lim, opt, true)
}

// decode is Decode (dst nil) or DecodeAppend, with decodeGrey's fast path
// (fast) or without it, which the tests hold to the same answers.
func decode(dst []float32, data []byte, lim Limits, opt Options, fast bool) ([]float32, error) {
	h, err := ReadHeader(data, lim)
	if err != nil {
		return nil, err
	}
	if !opt.Fit && (h.Width != side || h.Height != side) {
		return nil, errorf(KindSize, "image is %d×%d, want %d×%d (send fit=true to resize)", h.Width, h.Height, side, side)
	}
	if fast && h.Format == PNG && !opt.Fit {
		if px, ok := decodeGrey(dst, data); ok {
			return px, nil
		}
	}
	s, err := decodeSampled(h, data, opt.Fit)
	if err != nil {
		return nil, err
	}
	g, alphaInk := s.ink()
	if opt.Fit {
		if g, err = fit(g, s.w, s.h, alphaInk); err != nil {
			return nil, err
		}
	}
	if dst == nil {
		return g, nil
	}
	return append(dst, g...), nil
}

// decodeSampled decodes the image and at once reduces it to the grid the
// rest works on: as it is for 28×28 without fit, at most workSide on its
// longer side with fit. Only the reduced grid outlives this call.
func decodeSampled(h Header, data []byte, fit bool) (*sampled, error) {
	var img image.Image
	var err error
	canvas := image.Rectangle{}
	switch h.Format {
	case PNG:
		img, err = png.Decode(bytes.NewReader(data))
	case JPEG:
		img, err = jpeg.Decode(bytes.NewReader(data))
	case GIF:
		// gif.Decode stops after the first frame; the frame may cover only
		// part of the logical screen.
		img, err = gif.Decode(bytes.NewReader(data))
		canvas = image.Rect(0, 0, h.Width, h.Height)
	}
	if err != nil {
		return nil, errorf(KindMalformed, "malformed %s: %v", h.Format, err)
	}
	if canvas.Empty() {
		canvas = img.Bounds()
	}
	max := 0
	if fit {
		max = workSide
	}
	s := sample(img, canvas, max)
	s.orient(h.Orientation)
	return s, nil
}

// pngHeader validates the signature and the IHDR chunk and returns the
// declared size.
func pngHeader(data []byte) (w, h uint32, err error) {
	// IHDR must come first and is always 13 bytes: 8+4+4+13+4 bytes from 0.
	const ihdrEnd = 8 + 8 + 13 + 4
	if len(data) < ihdrEnd {
		return 0, 0, errorf(KindMalformed, "malformed PNG: truncated before the end of IHDR")
	}
	if binary.BigEndian.Uint32(data[8:]) != 13 || string(data[12:16]) != "IHDR" {
		return 0, 0, errorf(KindMalformed, "malformed PNG: first chunk is not a 13-byte IHDR")
	}
	// A corrupt header must not be reported as "too large": check its CRC first.
	if crc32.ChecksumIEEE(data[12:29]) != binary.BigEndian.Uint32(data[29:]) {
		return 0, 0, errorf(KindMalformed, "malformed PNG: IHDR checksum mismatch")
	}
	uw, uh := binary.BigEndian.Uint32(data[16:]), binary.BigEndian.Uint32(data[20:])
	if uw == 0 || uh == 0 || uw > 1<<31-1 || uh > 1<<31-1 {
		return 0, 0, errorf(KindMalformed, "malformed PNG: invalid dimensions %d×%d", uw, uh)
	}
	return uw, uh, nil
}

// pngFraming walks the chunks after IHDR only to find where IEND ends, and
// refuses anything after it; CRCs and chunk semantics are left to
// image/png, which reads every chunk up to IEND.
func pngFraming(data []byte) error {
	pos := 8 + 8 + 13 + 4
	for {
		if len(data)-pos < 8 {
			return errorf(KindMalformed, "malformed PNG: truncated (no IEND chunk)")
		}
		n := binary.BigEndian.Uint32(data[pos:])
		if n > 1<<31-1 {
			return errorf(KindMalformed, "malformed PNG: chunk length %d out of range", n)
		}
		end := uint64(pos) + 12 + uint64(n)
		if end > uint64(len(data)) {
			return errorf(KindMalformed, "malformed PNG: truncated %q chunk", data[pos+4:pos+8])
		}
		typ := string(data[pos+4 : pos+8])
		pos = int(end)
		if typ == "IEND" {
			break
		}
	}
	if extra := len(data) - pos; extra > 0 {
		return errorf(KindMalformed, "malformed PNG: trailing %d bytes after IEND", extra)
	}
	return nil
}
