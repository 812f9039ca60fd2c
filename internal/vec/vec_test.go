package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The assembly must equal the Go reference bit for bit, for every length
// around the 8-lane vectors and their masked tails, and must not write past
// the lengths it was given.

const guard = 12345.5 // sentinel in the slack after each output

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		switch r.IntN(10) {
		case 0:
			s[i] = 0
		case 1:
			s[i] = float32(math.Copysign(0, -1))
		default:
			s[i] = float32(r.NormFloat64())
		}
	}
	return s
}

func withGuard(n int) []float32 {
	s := make([]float32, n+9)
	for i := range s {
		s[i] = guard
	}
	return s
}

func sameBits(t *testing.T, name string, n int, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s n=%d: [%d] = %v (%#x), want %v (%#x)", name, n, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
	for i := len(want); i < len(got); i++ {
		if got[i] != guard {
			t.Fatalf("%s n=%d: wrote past the end at %d", name, n, i)
		}
	}
}

func newRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// On every path this CPU runs, for lengths around the 8- and 16-lane
// vectors and their masked tails.
func TestKernelsMatchReference(t *testing.T) {
	if best < lvlAVX2 {
		t.Log("no AVX2 here: the exported kernels are the Go reference itself")
	}
	for _, p := range Supported() {
		t.Run(string(p), func(t *testing.T) {
			usePath(t, p)
			testKernelsMatchReference(t)
		})
	}
}

func testKernelsMatchReference(t *testing.T) {
	r := newRand()
	for n := 0; n <= 70; n++ {
		for _, b := range []float32{0, 0.37, -0.5} {
			src := randSlice(r, n)
			want, got := make([]float32, n), withGuard(n)
			addReLUGo(want, src, b)
			AddReLU(got[:n], src, b)
			sameBits(t, "AddReLU", n, got, want)

			// One pooled row: input rows 2n apart.
			r01 := randSlice(r, 4*n)
			want, got = make([]float32, n), withGuard(n)
			poolAddReLUGo(want, r01, r01[2*n:], b)
			PoolAddReLURows(got[:n], r01, 1, n, n, 2*n, b)
			sameBits(t, "PoolAddReLURows, one row", n, got, want)

			// Planes of 3 rows with gaps between the rows, as the phase
			// grids and output planes are laid out.
			const rows = 3
			srcStride, dstStride := n+3, 2*n+5
			p0, p1 := randSlice(r, rows*srcStride), randSlice(r, rows*srcStride)
			want, got = withGuard(rows*dstStride), withGuard(rows*dstStride)
			for row := range rows {
				interleaveAddReLUGo(want[row*dstStride:], p0[row*srcStride:][:n], p1[row*srcStride:], b)
			}
			InterleaveAddReLU(got[:rows*dstStride], p0, p1, rows, n, dstStride, srcStride, b)
			sameBits(t, "InterleaveAddReLU", n, got, want[:rows*dstStride])

			// Pooled planes: 3 output rows from 6 input rows, with gaps.
			in := randSlice(r, 2*rows*(2*n+3))
			want, got = withGuard(rows*(n+2)), withGuard(rows*(n+2))
			for row := range rows {
				poolAddReLUGo(want[row*(n+2):][:n], in[2*row*(2*n+3):], in[(2*row+1)*(2*n+3):], b)
			}
			PoolAddReLURows(got[:rows*(n+2)], in, rows, n, n+2, 2*n+3, b)
			sameBits(t, "PoolAddReLURows", n, got, want[:rows*(n+2)])

			want, got = withGuard(rows*dstStride), withGuard(rows*dstStride)
			for row := range rows {
				copy(want[row*dstStride:][:n], p0[row*srcStride:])
			}
			CopyRows(got[:rows*dstStride], p0, rows, n, dstStride, srcStride)
			sameBits(t, "CopyRows", n, got, want[:rows*dstStride])
		}
	}
}

// The references themselves, against the definitions.
func TestReferenceSemantics(t *testing.T) {
	relu := func(v float32) float32 {
		if v > 0 {
			return v
		}
		return 0
	}
	src := []float32{-1, 0, float32(math.Copysign(0, -1)), 0.25, 3}
	dst := make([]float32, len(src))
	addReLUGo(dst, src, 0.5)
	for i, v := range src {
		if dst[i] != relu(v+0.5) || math.Signbit(float64(dst[i])) {
			t.Errorf("addReLU(%v) = %v", v, dst[i])
		}
	}
	out := make([]float32, 2)
	poolAddReLUGo(out, []float32{1, -2, -9, -8}, []float32{-3, 4, -7, -6}, -0.5)
	if out[0] != 3.5 || out[1] != 0 {
		t.Errorf("pool = %v, want [3.5 0]", out)
	}
	il := make([]float32, 4)
	interleaveAddReLUGo(il, []float32{1, -1}, []float32{2, 3}, 1)
	if il[0] != 2 || il[1] != 3 || il[2] != 0 || il[3] != 4 {
		t.Errorf("interleave = %v, want [2 3 0 4]", il)
	}
}

func BenchmarkAddReLU(b *testing.B) {
	src, dst := make([]float32, 784), make([]float32, 784)
	for _, impl := range []struct {
		name string
		fn   func(dst, src []float32, b float32)
	}{{"asm", AddReLU}, {"go", addReLUGo}} {
		b.Run("impl="+impl.name, func(b *testing.B) {
			for b.Loop() {
				impl.fn(dst, src, 0.1)
			}
		})
	}
}
