package oip

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Tensor data in binary, as the binary tensor data extension and gRPC's raw
// contents carry it: flat, row-major, little-endian, 4 bytes a value for
// FP32 and 8 for INT64.

// rawBytes is t's data in binary.
func rawBytes(t *Tensor) []byte {
	if t.Datatype == INT64 {
		b := make([]byte, 0, 8*len(t.INT64))
		for _, v := range t.INT64 {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
		return b
	}
	b := make([]byte, 0, 4*len(t.FP32))
	for _, v := range t.FP32 {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// fromRaw sets t's data from binary holding exactly want values of its
// datatype.
func fromRaw(t *Tensor, raw []byte, want int) error {
	switch t.Datatype {
	case FP32:
		if len(raw) != 4*want {
			return fmt.Errorf("%d bytes of binary data, shape %v of FP32 needs %d", len(raw), t.Shape, 4*want)
		}
		t.FP32 = make([]float32, want)
		for i := range t.FP32 {
			t.FP32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case INT64:
		if len(raw) != 8*want {
			return fmt.Errorf("%d bytes of binary data, shape %v of INT64 needs %d", len(raw), t.Shape, 8*want)
		}
		t.INT64 = make([]int64, want)
		for i := range t.INT64 {
			t.INT64[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	default:
		return fmt.Errorf("datatype %q is not supported by this client", t.Datatype)
	}
	return nil
}
