package digit

import "encoding/binary"

// jpegOrientation returns a JPEG's EXIF orientation, 1 to 8: the Orientation
// tag (0x0112) of IFD0 in the first APP1 "Exif" segment before the image
// data. It is 1 when there is none and whenever the EXIF cannot be read: a
// corrupt tag must not fail an image that decodes, and every offset is
// bounded by the segment, so no input can make it read out of range.
func jpegOrientation(data []byte) int {
	if len(data) < 4 || data[0] != 0xff || data[1] != 0xd8 {
		return 1
	}
	pos := 2
	for pos+4 <= len(data) {
		if data[pos] != 0xff {
			return 1 // not a marker: lost, give up
		}
		m := data[pos+1]
		if m == 0xff { // fill byte before a marker
			pos++
			continue
		}
		pos += 2
		switch {
		case m == 0x01, m >= 0xd0 && m <= 0xd8: // TEM, RSTn, SOI: no length
			continue
		case m == 0xd9, m == 0xda: // EOI, SOS: no EXIF after the image data begins
			return 1
		}
		n := int(binary.BigEndian.Uint16(data[pos:]))
		if n < 2 || n > len(data)-pos {
			return 1
		}
		if seg := data[pos+2 : pos+n]; m == 0xe1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			return exifOrientation(seg[6:])
		}
		pos += n
	}
	return 1
}

// exifOrientation reads the Orientation tag from a TIFF structure (the body
// of an Exif segment), or 1.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 1
	}
	off := uint64(bo.Uint32(t[4:]))
	if off < 8 || off+2 > uint64(len(t)) {
		return 1
	}
	n := int(bo.Uint16(t[off:]))
	p := int(off) + 2
	for range n {
		if p+12 > len(t) {
			return 1
		}
		e := t[p : p+12]
		p += 12
		if bo.Uint16(e) != 0x0112 {
			continue
		}
		// One SHORT (type 3), stored in the entry itself; LONG (4) is
		// tolerated, as some writers use it.
		var v uint32
		switch typ, count := bo.Uint16(e[2:]), bo.Uint32(e[4:]); {
		case typ == 3 && count == 1:
			v = uint32(bo.Uint16(e[8:]))
		case typ == 4 && count == 1:
			v = bo.Uint32(e[8:])
		default:
			return 1
		}
		if v < 1 || v > 8 {
			return 1
		}
		return int(v)
	}
	return 1
}
