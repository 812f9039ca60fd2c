package digit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"slices"
	"testing"
)

// FuzzDecode: whatever the bytes (PNG, JPEG, GIF or none), Decode returns
// 784 pixels in [0,1] or an *Error of a known Kind, and never panics. The
// limit is small so that the fuzzer explores structure rather than
// inflating big images.
func FuzzDecode(f *testing.F) {
	valid, err := EncodePNG(toFloat(mnistDigits(f, 1)[0]))
	if err != nil {
		f.Fatal(err)
	}
	big := grayImage(56, 56, enlarge(mnistDigits(f, 1)[0], 28, 28, 2, 2))
	pal := image.NewPaletted(image.Rect(0, 0, 28, 28), color.Palette{color.Black, color.White, color.NRGBA{255, 0, 0, 128}})
	pal.SetColorIndex(10, 10, 1)
	pal.SetColorIndex(11, 10, 2)
	rgba := image.NewNRGBA64(image.Rect(0, 0, 28, 28))
	rgba.Set(3, 3, color.NRGBA64{65535, 0, 65535, 30000})
	jpg := encodeJPEG(f, grayImage(28, 28, mnistDigits(f, 1)[0]), 90)
	// An animation whose first frame covers part of the screen.
	partial := encodeGIF(f, &gif.GIF{
		Image:  []*image.Paletted{palettedGrey(10, 12, make([]byte, 120)), palettedGrey(28, 28, mnistDigits(f, 1)[0])},
		Delay:  []int{1, 1},
		Config: image.Config{ColorModel: greyPalette, Width: 28, Height: 28},
	})
	seeds := [][]byte{
		valid,
		jpg,
		withEXIF(jpg, 6, binary.LittleEndian),
		encodeJPEG(f, big, 50),
		encodeGIF(f, &gif.GIF{Image: []*image.Paletted{palettedGrey(28, 28, mnistDigits(f, 1)[0])}, Delay: []int{0}}),
		partial,
		encodeImage(f, big),
		encodeImage(f, pal),
		encodeImage(f, rgba),
		encodeImage(f, image.NewGray(image.Rect(0, 0, 32, 30))),
		bomb(100000, 100000),
		bomb(28, 28),
		append(bytes.Clone(valid), "junk"...),
		valid[:len(valid)/2],
		valid[:33],
		[]byte(pngSignature),
		[]byte("not a png"),
		nil,
	}
	// What the grey PNG fast path takes, and what it leaves to image/png:
	// every filter type, IDAT split, ancillary chunks, transparency.
	grey8 := ihdr(side, side, 8, 0)
	z := zlibOf(f, scanlines(mnistDigits(f, 1)[0], func(y int) byte { return byte(y % 5) }), 1)
	seeds = append(seeds,
		pngOf(grey8, z, nil, nil, nil),
		pngOf(grey8, z, []int{1, 40, 0}, chunk("gAMA", []byte{0, 0, 0xb1, 0x8f}), chunk("IDAT", nil)),
		pngOf(grey8, z, nil, chunk("tRNS", []byte{0, 0}), nil),
		pngOf(append(ihdr(side, side, 8, 0)[:12], 1), zlibOf(f, adam7(mnistDigits(f, 1)[0]), 1), nil, nil, nil),
	)
	for _, s := range seeds {
		f.Add(s, false, false)
		f.Add(s, true, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, fit, fixCRCs bool) {
		if fixCRCs {
			// Mutations nearly always break a CRC, and image/png stops there;
			// repairing them lets the fuzzer reach the pixels, grey and Fit.
			data = withCRCs(data)
		}
		px, err := Decode(data, Limits{MaxPixels: 1 << 16}, Options{Fit: fit})
		// The grey PNG fast path answers exactly as image/png does.
		want, werr := decode(nil, data, Limits{MaxPixels: 1 << 16}, Options{Fit: fit}, false)
		if fmt.Sprint(err) != fmt.Sprint(werr) || !slices.Equal(px, want) {
			t.Fatalf("fast path: %d pixels, err %v; without it: %d pixels, err %v", len(px), err, len(want), werr)
		}
		// DecodeAppend appends the same after what dst holds.
		prefix := []float32{0.25, 0.5}
		app, aerr := DecodeAppend(slices.Clip(prefix), data, Limits{MaxPixels: 1 << 16}, Options{Fit: fit})
		if fmt.Sprint(aerr) != fmt.Sprint(err) || (err == nil) != (app != nil) || app != nil && (!slices.Equal(app[:2], prefix) || !slices.Equal(app[2:], px)) {
			t.Fatalf("DecodeAppend: %d values, err %v; Decode: %d pixels, err %v", len(app), aerr, len(px), err)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind < KindMalformed || e.Kind > KindFormat || e.Msg == "" {
				t.Fatalf("error %T %v is not a *digit.Error of a known Kind", err, err)
			}
			if px != nil {
				t.Fatalf("error %v came with %d pixels", err, len(px))
			}
			return
		}
		if len(px) != pixels {
			t.Fatalf("got %d pixels, want %d", len(px), pixels)
		}
		for i, v := range px {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("pixel %d = %v, outside [0,1]", i, v)
			}
		}
	})
}

// withCRCs returns a copy of data with the CRC of every complete chunk
// recomputed, leaving anything that does not parse as chunks alone.
func withCRCs(data []byte) []byte {
	data = bytes.Clone(data)
	for pos := len(pngSignature); pos+12 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[pos:]))
		if n < 0 || n > len(data)-pos-12 {
			break
		}
		end := pos + 8 + n
		binary.BigEndian.PutUint32(data[end:], crc32.ChecksumIEEE(data[pos+4:end]))
		pos = end + 4
	}
	return data
}

// FuzzReadHeader: the header-first check. Whatever the bytes, ReadHeader
// returns a header of positive size within the limit, of the format Sniff
// names and an EXIF orientation of 1 to 8, or an *Error of a known Kind;
// KindTooLarge only when the declared size is over the limit (the same
// bytes read with no practical limit give that size, or for a PNG may fail
// on framing checked only within the limit), and a larger limit never
// refuses what a smaller one took.
func FuzzReadHeader(f *testing.F) {
	valid, err := EncodePNG(toFloat(mnistDigits(f, 1)[0]))
	if err != nil {
		f.Fatal(err)
	}
	jpg := encodeJPEG(f, grayImage(28, 28, mnistDigits(f, 1)[0]), 90)
	for _, s := range [][]byte{
		valid,
		jpg,
		withEXIF(jpg, 6, binary.LittleEndian),
		withEXIF(jpg, 9, binary.BigEndian),
		encodeGIF(f, &gif.GIF{Image: []*image.Paletted{palettedGrey(28, 28, mnistDigits(f, 1)[0])}, Delay: []int{0}}),
		[]byte("GIF89a\xff\xff\xff\xff"),
		bomb(100000, 100000),
		bomb(300, 300),
		append(bytes.Clone(valid), valid...),
		valid[:len(valid)-1],
		[]byte(pngSignature[:5]),
		[]byte("\xff\xd8"),
		nil,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	const limit = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte, fixCRCs bool) {
		if fixCRCs {
			data = withCRCs(data)
		}
		h, err := ReadHeader(data, Limits{MaxPixels: limit})
		big, bigErr := ReadHeader(data, Limits{MaxPixels: 1 << 62})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind < KindMalformed || e.Kind > KindFormat || e.Msg == "" {
				t.Fatalf("error %T %v is not a *digit.Error of a known Kind", err, err)
			}
			// A PNG too large is refused before its chunks are walked, so
			// without the limit its framing may still fail; but no other
			// header passes the limit's check.
			var be *Error
			format, _ := Sniff(data)
			if e.Kind == KindTooLarge && (bigErr == nil && big.Pixels() <= limit ||
				bigErr != nil && (!errors.As(bigErr, &be) || be.Kind != KindMalformed || format != PNG)) {
				t.Fatalf("too large at %d pixels, but unlimited it reads %+v, %v", limit, big, bigErr)
			}
			return
		}
		if bigErr != nil || big != h {
			t.Fatalf("a larger limit changes %+v to %+v, %v", h, big, bigErr)
		}
		if f, _ := Sniff(data); h.Format != f {
			t.Fatalf("format %s, Sniff says %s", h.Format, f)
		}
		if h.Width <= 0 || h.Height <= 0 || h.Pixels() > limit || h.Orientation < 1 || h.Orientation > 8 {
			t.Fatalf("header %+v accepted with limit %d", h, limit)
		}
	})
}
