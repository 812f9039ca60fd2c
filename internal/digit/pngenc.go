package digit

import (
	"encoding/binary"
	"hash/adler32"
	"hash/crc32"
)

// A 28×28 8-bit grey PNG, written directly rather than through image/png and
// compress/flate, whose general machinery (a dynamic Huffman code built per
// block, a 64 KiB hash table cleared per stream, an image.Image walked pixel
// by pixel) costs more than the rest of the encoding for 812 bytes of
// scanlines. The file is what image/png writes in its layout: signature,
// IHDR, one IDAT, IEND. The rows are unfiltered (see filterRows), and the
// zlib stream is one final deflate block with the fixed Huffman code
// (RFC 1951 §3.2.6) over greedy LZ77 matches: valid PNG and zlib any decoder
// reads, and smaller than what image/png's BestSpeed writes for a digit.

const (
	rowLen = 1 + side      // filter byte and one row of pixels
	rawLen = rowLen * side // the scanlines the zlib stream holds
)

// pngHead is the signature and the IHDR chunk of every file encodeGrey
// writes: 28×28, 8-bit greyscale, deflate, adaptive filtering, no interlace.
var pngHead = func() []byte {
	b := []byte(pngSignature)
	b = binary.BigEndian.AppendUint32(b, 13)
	b = append(b, "IHDR"...)
	b = binary.BigEndian.AppendUint32(b, side)
	b = binary.BigEndian.AppendUint32(b, side)
	b = append(b, 8, 0, 0, 0, 0)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[12:]))
}()

// pngTail is the IEND chunk.
var pngTail = []byte{0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82}

// The fixed Huffman code, its bits already reversed for the LSB-first bit
// stream: fixedLit for literal/length symbols 0–287, and lenCode/distCode
// for each match length (3–258) and distance (1–rawLen), code and extra bits
// together.
var (
	fixedLit [288]hcode
	lenCode  [259]hcode
	distCode [rawLen + 1]hcode
)

// hcode is bits to write, LSB first, and how many.
type hcode struct {
	bits uint32
	n    uint8
}

func reverse(v uint32, n uint8) uint32 {
	var r uint32
	for range n {
		r = r<<1 | v&1
		v >>= 1
	}
	return r
}

func init() {
	for s := range fixedLit {
		var c uint32
		var n uint8
		switch {
		case s < 144:
			c, n = 0x30+uint32(s), 8
		case s < 256:
			c, n = 0x190+uint32(s-144), 9
		case s < 280:
			c, n = uint32(s-256), 7
		default:
			c, n = 0xc0+uint32(s-280), 8
		}
		fixedLit[s] = hcode{reverse(c, n), n}
	}
	lenBase := [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra := [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	for l := 3; l <= 258; l++ {
		i := 28
		for lenBase[i] > l {
			i--
		}
		sym := fixedLit[257+i]
		lenCode[l] = hcode{sym.bits | uint32(l-lenBase[i])<<sym.n, sym.n + lenExtra[i]}
	}
	distBase := [20]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769}
	distExtra := [20]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8}
	for d := 1; d <= rawLen; d++ {
		i := len(distBase) - 1
		for distBase[i] > d {
			i--
		}
		c := reverse(uint32(i), 5)
		distCode[d] = hcode{c | uint32(d-distBase[i])<<5, 5 + distExtra[i]}
	}
}

// bitWriter appends an LSB-first bit stream to out.
type bitWriter struct {
	out  []byte
	acc  uint64
	nacc uint
}

func (w *bitWriter) put(c hcode) {
	w.acc |= uint64(c.bits) << w.nacc
	w.nacc += uint(c.n)
	for w.nacc >= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nacc -= 8
	}
}

func (w *bitWriter) flush() {
	if w.nacc > 0 {
		w.out = append(w.out, byte(w.acc))
		w.acc, w.nacc = 0, 0
	}
}

// filterRows writes the 28 scanlines of pix into raw, unfiltered (filter
// type None). For the fixed-code LZ77 below, a digit's raw rows, mostly runs
// of black, compress better than the filters image/png picks (the smallest
// sum of absolute differences, a guess suited to a dynamic code): 339
// against 378 bytes per file for 200 denoise outputs, and the rows cost a
// copy rather than five trial filters.
func filterRows(raw *[rawLen]byte, pix *[pixels]byte) {
	for y := range side {
		raw[y*rowLen] = ftNone
		copy(raw[y*rowLen+1:(y+1)*rowLen], pix[y*side:(y+1)*side])
	}
}

// The PNG filter types.
const (
	ftNone byte = iota
	ftSub
	ftUp
	ftAverage
	ftPaeth
)

// quantise is round(clamp(v,0,1)·255), as uint8(math.Round(…)) gives it:
// v·255 is exact in float64 (24 by 8 significant bits), and so is adding ½
// to it wherever that could round across an integer, so truncating v·255+½
// rounds half away from zero exactly as math.Round does (TestQuantise).
func quantise(v float32) uint8 {
	return uint8(float64(min(max(v, 0), 1))*255 + 0.5)
}

// deflateFixed appends to out raw as a zlib stream: the 2-byte header, one
// final deflate block with the fixed code over greedy LZ77 matches of 3 to
// 258 bytes (a hash of 3 bytes, its last position), and the Adler-32 of raw.
func deflateFixed(out []byte, raw *[rawLen]byte) []byte {
	out = append(out, 0x78, 0x01) // deflate, 32 KiB window, "fastest" level
	w := bitWriter{out: out}
	w.put(hcode{1 | 1<<1, 3}) // BFINAL, BTYPE 01 (fixed Huffman)
	const hashBits = 10
	var head [1 << hashBits]int16
	for i := range head {
		head[i] = -1
	}
	hash := func(p int) uint32 {
		v := uint32(raw[p]) | uint32(raw[p+1])<<8 | uint32(raw[p+2])<<16
		return (v * 0x1e35a7bd) >> (32 - hashBits)
	}
	for p := 0; p < rawLen; {
		if p+3 > rawLen {
			w.put(fixedLit[raw[p]])
			p++
			continue
		}
		h := hash(p)
		cand := int(head[h])
		head[h] = int16(p)
		n := 0
		if cand >= 0 {
			for limit := min(258, rawLen-p); n < limit && raw[cand+n] == raw[p+n]; n++ {
			}
		}
		if n < 3 {
			w.put(fixedLit[raw[p]])
			p++
			continue
		}
		w.put(lenCode[n])
		w.put(distCode[p-cand])
		// Index the positions the match covers, so that later matches find them.
		for q := p + 1; q < p+n && q+3 <= rawLen; q++ {
			head[hash(q)] = int16(q)
		}
		p += n
	}
	w.put(fixedLit[256]) // end of block
	w.flush()
	return binary.BigEndian.AppendUint32(w.out, adler32.Checksum(raw[:]))
}

// appendGreyPNG appends to dst the PNG file of the 28×28 grey image pix.
func appendGreyPNG(dst []byte, pix *[pixels]byte, raw *[rawLen]byte) []byte {
	filterRows(raw, pix)
	dst = append(dst, pngHead...)
	lenAt := len(dst)
	dst = append(dst, 0, 0, 0, 0, 'I', 'D', 'A', 'T')
	dst = deflateFixed(dst, raw)
	binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-8))
	dst = binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[lenAt+4:]))
	return append(dst, pngTail...)
}
