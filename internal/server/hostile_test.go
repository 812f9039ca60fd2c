package server

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"testing"
)

// TestHostileInputs holds issue 19's named regressions that no other test
// covered, each with its status. The others live beside the code they
// exercise, under these names:
//
//   - huge dimension claims, 413: TestErrors "pixel bomb", "pixel bomb in
//     batch"; TestImageFormatErrors for JPEG and GIF
//   - truncated PNG, 400: TestErrors "truncated png", "bad image in batch"
//   - NaN and infinite latents, 422: TestErrors "NaN latent", "infinite
//     latent"; TestLatentJSONStatus for JSON beyond the float32 range
//   - wrong latent shapes, 422: TestErrors "wrong-shape latent", "flat
//     binary latent", "latent data shorter than shape"
//   - mismatched fingerprints, 409: TestErrors "latent from other weights",
//     "latent model and fingerprint disagree"
//   - /v2's 400s: TestV2BadRequests
//
// FuzzSplitImages, FuzzParseLatent, FuzzV2REST and FuzzGRPCCall explore
// around all of them.
func TestHostileInputs(t *testing.T) {
	e := newEnv(t)
	img := mustPNG(t, 7)
	px, _ := mnistDigit(t, 7)
	gray16 := image.NewGray16(image.Rect(0, 0, 28, 28))
	pal := image.NewPaletted(image.Rect(0, 0, 28, 28), color.Palette{color.Black, color.Gray{128}, color.White})
	for i, v := range px {
		gray16.SetGray16(i%28, i/28, color.Gray16{Y: uint16(v * 65535)})
		pal.SetColorIndex(i%28, i/28, uint8(v*2+0.5))
	}
	for _, tc := range []struct {
		name   string
		path   string
		ctype  string
		body   []byte
		status int
		kind   string
	}{
		// A valid PNG whose small IDAT inflates to 64 Mpx: refused from
		// its header, before a byte is inflated.
		{"decompression bomb", "/v1/reconstruct?fit=true", ctPNG, deflateBomb(t, 8000, 8000), http.StatusRequestEntityTooLarge, kindTooLarge},
		{"decompression bomb in a batch", "/v1/encode?fit=true", ctMultipartTest, multipartOf(t, img, deflateBomb(t, 8000, 8000)), http.StatusRequestEntityTooLarge, kindTooLarge},
		// Two files in one body would otherwise be read as the first.
		{"concatenated PNGs", "/v1/encode", ctPNG, append(bytes.Clone(img), img...), http.StatusBadRequest, kindMalformed},
		{"concatenated PNGs in one part", "/v1/encode", ctMultipartTest, multipartOf(t, img, append(bytes.Clone(img), img...)), http.StatusBadRequest, kindMalformed},
		// Converted to 8-bit grey rather than refused.
		{"16-bit PNG", "/v1/reconstruct", ctPNG, encodePNG(t, gray16), http.StatusOK, ""},
		{"palette PNG", "/v1/reconstruct", ctPNG, encodePNG(t, pal), http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(tc.path, tc.ctype, tc.body)
			wantStatus(t, r, tc.status)
			if tc.status == http.StatusOK {
				if r.mediaType() != ctPNG {
					t.Errorf("Content-Type %q, want %s", r.Header.Get("Content-Type"), ctPNG)
				}
				return
			}
			if p := r.problem(t); p.Type != ProblemTypeBase+tc.kind {
				t.Errorf("type %q, want %q", p.Type, ProblemTypeBase+tc.kind)
			}
		})
	}
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// deflateBomb is a complete, valid w×h 8-bit grey PNG of zeros: its IDAT
// is real zlib that inflates to w×h bytes, so only a header-first check
// keeps it from costing that much memory.
func deflateBomb(t *testing.T, w, h int) []byte {
	t.Helper()
	var idat bytes.Buffer
	zw, err := zlib.NewWriterLevel(&idat, zlib.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]byte, 1+w) // filter byte 0, then the pixels
	for range h {
		if _, err := zw.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 8, 0, 0, 0, 0)
	b := []byte("\x89PNG\r\n\x1a\n")
	b = append(b, chunk("IHDR", ihdr)...)
	b = append(b, chunk("IDAT", idat.Bytes())...)
	return append(b, chunk("IEND", nil)...)
}
