package digit

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/adler32"
	"hash/crc32"
	"io"
	"slices"
	"strconv"
	"sync"
)

// decodeGrey is Decode's fast path for what nearly every request sends: a
// 28×28 8-bit greyscale PNG without interlacing or transparency. It returns
// the pixels appended to dst (a new slice if dst is nil), exactly v/255 as
// the general path gives them, or false for
// anything else, and for anything image/png would refuse or read otherwise,
// so that the general path answers those as it always has, with its own
// errors. It is a strict subset of image/png: it takes a file only when
// every chunk's CRC is right, the chunks are IHDR, ancillary chunks (a
// lowercase first letter) other than tRNS, one run of IDAT chunks (with
// trailing IDATs, which image/png ignores, allowed after it), and IEND,
// empty and last; the IDATs hold exactly one zlib stream (no preset
// dictionary) and its Adler-32, inflating to exactly 28 rows of a known
// filter type each.
//
// What it saves is image/png's per-call allocations (the decoder, a zlib
// and flate reader with their windows, a bufio.Reader, two row buffers and
// the image) and its per-pixel image.Image interface: the flate reader is
// pooled and reset, and the pixels are unfiltered in a pooled buffer.
func decodeGrey(dst []float32, data []byte) ([]float32, bool) {
	const ihdrEnd = 8 + 8 + 13 + 4
	if len(data) < ihdrEnd || string(data[:8]) != pngSignature ||
		binary.BigEndian.Uint32(data[8:]) != 13 || string(data[12:16]) != "IHDR" ||
		binary.BigEndian.Uint32(data[16:]) != side || binary.BigEndian.Uint32(data[20:]) != side ||
		data[24] != 8 || data[25] != 0 || data[26] != 0 || data[27] != 0 || data[28] != 0 ||
		crc32.ChecksumIEEE(data[12:29]) != binary.BigEndian.Uint32(data[29:]) {
		return nil, false
	}
	g := greyPool.Get().(*greyDecoder)
	defer greyPool.Put(g)
	idat, ok := g.idat(data[ihdrEnd:])
	if !ok || !g.inflate(idat) || !g.unfilter() {
		return nil, false
	}
	n := len(dst)
	dst = slices.Grow(dst, pixels)[:n+pixels]
	px := (*[pixels]float32)(dst[n:])
	for i, v := range g.pix {
		px[i] = float32(v) / 255
	}
	return dst, true
}

// greyDecoder is decodeGrey's reusable state.
type greyDecoder struct {
	fr   io.ReadCloser // a flate reader, Reset for each file
	br   bytes.Reader
	buf  []byte // the IDAT data, when it is split over several chunks
	raw  [rawLen + 1]byte
	pix  [pixels]byte
	tail [4]byte
}

var greyPool = sync.Pool{New: func() any { return new(greyDecoder) }}

// idat walks the chunks after IHDR and returns the IDAT data, or false for
// any file decodeGrey leaves to image/png.
func (g *greyDecoder) idat(rest []byte) ([]byte, bool) {
	var first []byte
	parts := 0 // IDAT chunks in the first run
	const (
		before = iota // no IDAT yet
		in            // in the first run of IDATs
		after         // after it
	)
	stage := before
	g.buf = g.buf[:0]
	for {
		if len(rest) < 12 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(rest)
		if n > 1<<31-1 || uint64(len(rest)) < 12+uint64(n) {
			return nil, false
		}
		typ, body := string(rest[4:8]), rest[8:8+n]
		if crc32.ChecksumIEEE(rest[4:8+n]) != binary.BigEndian.Uint32(rest[8+n:]) {
			return nil, false
		}
		rest = rest[12+n:]
		switch {
		case typ == "IDAT" && stage == before:
			stage, first, parts = in, body, 1
		case typ == "IDAT" && stage == in:
			if parts == 1 {
				g.buf = append(g.buf, first...)
			}
			g.buf = append(g.buf, body...)
			parts++
		case typ == "IDAT": // after the run: image/png ignores it
		case typ == "IEND":
			if stage == before || n != 0 || len(rest) != 0 {
				return nil, false
			}
			if parts > 1 {
				return g.buf, true
			}
			return first, true
		case typ == "tRNS" || typ[0] < 'a' || typ[0] > 'z':
			return nil, false // transparency, or a critical chunk (PLTE, a second IHDR, unknown)
		default: // an ancillary chunk image/png skips
			if stage == in {
				stage = after
			}
		}
	}
}

// inflate reads idat as a zlib stream of exactly rawLen bytes into g.raw.
func (g *greyDecoder) inflate(idat []byte) bool {
	// The zlib header as compress/zlib checks it: deflate, a window of at
	// most 32 KiB, the check bits; and no preset dictionary.
	if len(idat) < 2+4 || idat[0]&0x0f != 8 || idat[0]>>4 > 7 ||
		binary.BigEndian.Uint16(idat)%31 != 0 || idat[1]&0x20 != 0 {
		return false
	}
	// bytes.Reader is an io.ByteReader, so flate reads no further than the
	// end of the deflate stream: what is left is the Adler-32.
	g.br.Reset(idat[2:])
	if g.fr == nil {
		g.fr = flate.NewReader(&g.br)
	} else if g.fr.(flate.Resetter).Reset(&g.br, nil) != nil {
		return false
	}
	if _, err := io.ReadFull(g.fr, g.raw[:rawLen]); err != nil {
		return false
	}
	// The stream must end here, as image/png checks (too much pixel data).
	n, err := 0, error(nil)
	for i := 0; n == 0 && err == nil; i++ {
		if i == 100 {
			return false
		}
		n, err = g.fr.Read(g.raw[rawLen:])
	}
	if n != 0 || err != io.EOF {
		return false
	}
	if g.br.Len() != 4 {
		return false // a truncated checksum, or bytes after it
	}
	_, _ = g.br.Read(g.tail[:])
	return binary.BigEndian.Uint32(g.tail[:]) == adler32.Checksum(g.raw[:rawLen])
}

// unfilter undoes each row's filter (bpp 1) from g.raw into g.pix.
func (g *greyDecoder) unfilter() bool {
	var zero [side]byte
	prev := &zero
	for y := range side {
		row := (*[rowLen]byte)(g.raw[y*rowLen:])
		cur := (*[side]byte)(g.pix[y*side:])
		in := (*[side]byte)(row[1:])
		switch row[0] {
		case ftNone:
			*cur = *in
		case ftSub:
			cur[0] = in[0]
			for x := 1; x < side; x++ {
				cur[x] = in[x] + cur[x-1]
			}
		case ftUp:
			for x := range side {
				cur[x] = in[x] + prev[x]
			}
		case ftAverage:
			cur[0] = in[0] + prev[0]/2
			for x := 1; x < side; x++ {
				cur[x] = in[x] + byte((int(cur[x-1])+int(prev[x]))/2)
			}
		case ftPaeth:
			cur[0] = in[0] + prev[0]
			for x := 1; x < side; x++ {
				cur[x] = in[x] + paeth(cur[x-1], prev[x], prev[x-1])
			}
		default:
			return false
		}
		prev = cur
	}
	return true
}

// paeth is the PNG Paeth predictor of a (left), b (up) and c (up-left), in
// image/png's form: pa = |b-c|, pb = |a-c|, pc = |a+b-2c|.
func paeth(a, b, c byte) byte {
	pa := int(b) - int(c)
	pb := int(a) - int(c)
	pc := abs(pa + pb)
	pa, pb = abs(pa), abs(pb)
	if pa <= pb && pa <= pc {
		return a
	}
	if pb <= pc {
		return b
	}
	return c
}

// abs is |x| without a branch.
func abs(x int) int {
	m := x >> (strconv.IntSize - 1)
	return (x ^ m) - m
}
