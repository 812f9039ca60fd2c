package digit

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/png"
)

const pngSignature = "\x89PNG\r\n\x1a\n"

// Decode reads one PNG and returns its 784 pixels.
//
// The header is checked before the standard decoder sees the data, so that a
// PNG declaring 100000×100000 costs nothing but a *Error of KindTooLarge. The
// file must end exactly after IEND: bytes smuggled after it would otherwise be
// ignored silently, and a batch of concatenated files would be read as one.
//
// Colour is reduced to grey by luminance (ITU-R BT.601, as color.GrayModel)
// with alpha composited over black, which is MNIST's background; 8-bit grey
// comes back as exactly v/255, so Decode(EncodePNG(px)) == px for such px.
func Decode(data []byte, lim Limits, opt Options) ([]float32, error) {
	w, h, err := checkHeader(data, lim)
	if err != nil {
		return nil, err
	}
	img, derr := png.Decode(bytes.NewReader(data))
	if derr != nil {
		return nil, errorf(KindMalformed, "malformed PNG: %v", derr)
	}
	if opt.Fit {
		return Fit(img)
	}
	if w != side || h != side {
		return nil, errorf(KindSize, "image is %d×%d, want %d×%d (send fit=true to resize)", w, h, side, side)
	}
	g, _, _ := grey(img)
	return g, nil
}

// checkHeader validates the signature, the IHDR chunk and the chunk framing up
// to IEND without inflating anything, and returns the declared size.
func checkHeader(data []byte, lim Limits) (w, h int, err error) {
	if len(data) < len(pngSignature) || string(data[:len(pngSignature)]) != pngSignature {
		return 0, 0, errorf(KindMalformed, "not a PNG (bad signature)")
	}
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
	maxPx := uint64(lim.MaxPixels)
	if lim.MaxPixels <= 0 {
		maxPx = defaultMaxPixels
	}
	if uint64(uw)*uint64(uh) > maxPx {
		return 0, 0, errorf(KindTooLarge, "image is %d×%d = %d pixels, limit is %d", uw, uh, uint64(uw)*uint64(uh), maxPx)
	}

	// Walk the remaining chunks only to find where IEND ends; CRCs and chunk
	// semantics are left to image/png, which reads every chunk up to IEND.
	pos := ihdrEnd
	for {
		if len(data)-pos < 8 {
			return 0, 0, errorf(KindMalformed, "malformed PNG: truncated (no IEND chunk)")
		}
		n := binary.BigEndian.Uint32(data[pos:])
		if n > 1<<31-1 {
			return 0, 0, errorf(KindMalformed, "malformed PNG: chunk length %d out of range", n)
		}
		end := uint64(pos) + 12 + uint64(n)
		if end > uint64(len(data)) {
			return 0, 0, errorf(KindMalformed, "malformed PNG: truncated %q chunk", data[pos+4:pos+8])
		}
		typ := string(data[pos+4 : pos+8])
		pos = int(end)
		if typ == "IEND" {
			break
		}
	}
	if extra := len(data) - pos; extra > 0 {
		return 0, 0, errorf(KindMalformed, "malformed PNG: trailing %d bytes after IEND", extra)
	}
	return int(uw), int(uh), nil
}

// lum is color.Gray16Model's formula on premultiplied 16-bit channels, so that
// transparent pixels count as black and the weights are BT.601's.
func lum(r, g, b, _ uint32) float32 {
	return float32((19595*r+38470*g+7471*b+1<<15)>>16) / 0xffff
}

// grey converts img to row-major luminance in [0,1]. The concrete cases avoid
// the per-pixel allocation of image.Image.At on inputs of up to MaxPixels; each
// gives the same value as the generic path.
func grey(img image.Image) (g []float32, w, h int) {
	b := img.Bounds()
	w, h = b.Dx(), b.Dy()
	g = make([]float32, w*h)
	i := 0
	switch m := img.(type) {
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for _, v := range m.Pix[m.PixOffset(b.Min.X, y):][:w] {
				// Equal to lum(v*0x101, …) since 257/65535 == 1/255, and exact k/255.
				g[i] = float32(v) / 255
				i++
			}
		}
	case *image.Gray16:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				g[i] = float32(m.Gray16At(x, y).Y) / 0xffff
				i++
			}
		}
	case *image.RGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				g[i] = lum(m.RGBAAt(x, y).RGBA())
				i++
			}
		}
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				g[i] = lum(m.NRGBAAt(x, y).RGBA())
				i++
			}
		}
	case *image.RGBA64:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				g[i] = lum(m.RGBA64At(x, y).RGBA())
				i++
			}
		}
	case *image.NRGBA64:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				g[i] = lum(m.NRGBA64At(x, y).RGBA())
				i++
			}
		}
	case *image.Paletted:
		pal := make([]float32, len(m.Palette))
		for j, c := range m.Palette {
			if c != nil {
				pal[j] = lum(c.RGBA())
			}
		}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for _, ci := range m.Pix[m.PixOffset(b.Min.X, y):][:w] {
				// image/png pads short palettes with opaque black; images built
				// elsewhere may not, and an index past the palette counts as black.
				if int(ci) < len(pal) {
					g[i] = pal[ci]
				}
				i++
			}
		}
	default:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				g[i] = lum(m.At(x, y).RGBA())
				i++
			}
		}
	}
	return g, w, h
}
