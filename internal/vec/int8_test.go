package vec

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// int8Case is one random product: m rows (a multiple of 4), n columns,
// nkb k-blocks, B gathered from shuffled, spaced blocks (stride ≥ 4n).
type int8Case struct{ m, n, nkb, gap int }

func (tc int8Case) operands(rng *rand.Rand) (a8 []int8, au []uint8, b8 []int8, bu []uint8, boff []int32) {
	a8 = make([]int8, PanelLen(tc.m, tc.nkb))
	au = make([]uint8, len(a8))
	for i := range a8 {
		a8[i], au[i] = int8(rng.Intn(256)-128), uint8(rng.Intn(256))
	}
	stride := 4*tc.n + tc.gap
	bl := tc.nkb*stride + tc.gap
	b8, bu = make([]int8, bl), make([]uint8, bl)
	for i := range b8 {
		b8[i], bu[i] = int8(rng.Intn(256)-128), uint8(rng.Intn(256))
	}
	boff = make([]int32, tc.nkb)
	for kb, p := range rng.Perm(tc.nkb) {
		boff[kb] = int32(p*stride + rng.Intn(tc.gap+1)/4*4)
	}
	// Extremes: the largest magnitudes in the first block.
	if tc.m > 0 {
		a8[0], au[0], b8[boff[0]], bu[boff[0]] = -128, 255, -128, 255
	}
	return
}

// refInt8 is the product by definition, from the panel's documented layout.
func refInt8[A, B int8 | uint8](a []A, b []B, boff []int32, m, n int) []int32 {
	nkb := len(boff)
	c := make([]int32, m*n)
	for r := 0; r < m; r++ {
		for j := 0; j < n; j++ {
			var s int32
			for k := 0; k < 4*nkb; k++ {
				s += int32(a[PanelIndex(r, k, nkb)]) * int32(b[int(boff[k/4])+4*j+k%4])
			}
			c[r*n+j] = s
		}
	}
	return c
}

func int8Cases() []int8Case {
	cases := []int8Case{{4, 1, 1, 0}, {4, 16, 1, 0}, {4, 31, 2, 3}, {4, 32, 3, 0}, {4, 33, 3, 8}, {8, 63, 5, 4}, {12, 64, 7, 0}, {4, 65, 9, 12}, {32, 224, 72, 64}}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 30; i++ {
		cases = append(cases, int8Case{4 * (1 + rng.Intn(6)), 1 + rng.Intn(150), 1 + rng.Intn(40), rng.Intn(20)})
	}
	return cases
}

// TestGemmInt8 holds both products, on the assembly (where the CPU has it)
// and on the portable loop, to the definition exactly: integer sums have one
// right answer.
func TestGemmInt8(t *testing.T) {
	paths := []bool{false}
	if hasVNNI {
		paths = append(paths, true)
	} else {
		t.Log("no AVX-512 VNNI: only the portable path is tested")
	}
	defer SetInt8Accelerated(SetInt8Accelerated(true))
	rng := rand.New(rand.NewSource(2))
	for _, tc := range int8Cases() {
		a8, au, b8, bu, boff := tc.operands(rng)
		wantSU, wantUS := refInt8(a8, bu, boff, tc.m, tc.n), refInt8(au, b8, boff, tc.m, tc.n)
		for _, asm := range paths {
			SetInt8Accelerated(asm)
			name := fmt.Sprintf("m=%d/n=%d/nkb=%d/asm=%v", tc.m, tc.n, tc.nkb, asm)
			// C with a wider stride and sentinels: nothing past n is written.
			ldc := tc.n + 5
			scale := make([]float32, tc.m)
			for r := range scale {
				scale[r] = float32(rng.NormFloat64() * 1e-4)
			}
			cf := make([]float32, tc.m*ldc)
			for i := range cf {
				cf[i] = -7
			}
			GemmS8U8Scaled(cf, ldc, a8, bu, boff, tc.m, tc.n, scale)
			for r := 0; r < tc.m; r++ {
				for j := 0; j < ldc; j++ {
					got, want := cf[r*ldc+j], float32(-7)
					if j < tc.n {
						want = float32(wantSU[r*tc.n+j]) * scale[r]
					}
					if math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("%s scaled: C[%d,%d] = %v, want %v", name, r, j, got, want)
					}
				}
			}
			for _, p := range []struct {
				name string
				run  func(c []int32)
				want []int32
			}{
				{"u8s8", func(c []int32) { GemmU8S8(c, ldc, au, b8, boff, tc.m, tc.n) }, wantUS},
			} {
				c := make([]int32, tc.m*ldc)
				for i := range c {
					c[i] = -7
				}
				p.run(c)
				for r := 0; r < tc.m; r++ {
					for j := 0; j < ldc; j++ {
						got, want := c[r*ldc+j], int32(-7)
						if j < tc.n {
							want = p.want[r*tc.n+j]
						}
						if got != want {
							t.Fatalf("%s %s: C[%d,%d] = %d, want %d", name, p.name, r, j, got, want)
						}
					}
				}
			}
		}
	}
}

func TestGemmInt8Checks(t *testing.T) {
	a, b := make([]int8, PanelLen(4, 1)), make([]uint8, 64)
	c, scale := make([]float32, 4*16), make([]float32, 4)
	for name, f := range map[string]func(){
		"m not a multiple of 4": func() { GemmS8U8Scaled(c, 16, a, b, []int32{0}, 3, 16, scale) },
		"B too short":           func() { GemmS8U8Scaled(c, 16, a, b, []int32{4}, 4, 16, scale) },
		"C too short":           func() { GemmS8U8Scaled(c[:60], 16, a, b, []int32{0}, 4, 16, scale) },
		"A too short":           func() { GemmS8U8Scaled(c, 16, a[:8], b, []int32{0}, 4, 16, scale) },
		"scale too short":       func() { GemmS8U8Scaled(c, 16, a, b, []int32{0}, 4, 16, scale[:3]) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
	GemmS8U8Scaled(c, 16, a, b, []int32{0}, 0, 16, scale) // nothing to do
}

func BenchmarkGemmS8U8Scaled(b *testing.B) {
	// A 32→32 3×3 convolution over a 14×14 plane as 9 shifted taps.
	tc := int8Case{32, 224, 72, 0}
	a8, _, _, bu, boff := tc.operands(rand.New(rand.NewSource(3)))
	c, scale := make([]float32, tc.m*tc.n), make([]float32, tc.m)
	for _, asm := range []bool{false, true} {
		if asm && !hasVNNI {
			continue
		}
		b.Run(fmt.Sprintf("asm=%v", asm), func(b *testing.B) {
			defer SetInt8Accelerated(SetInt8Accelerated(asm))
			for b.Loop() {
				GemmS8U8Scaled(c, tc.n, a8, bu, boff, tc.m, tc.n, scale)
			}
			b.ReportMetric(float64(2*tc.m*tc.n*4*tc.nkb)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOPS")
		})
	}
}

// TestInt8Quantisation holds the quantisation kernels'
// assembly to their portable loops bit for bit, on every length up to 70
// (tails), with ties, negatives, NaN, infinities and huge values.
func TestInt8Quantisation(t *testing.T) {
	if !hasVNNI {
		t.Skip("no AVX-512 VNNI: nothing to compare the portable path with")
	}
	defer SetInt8Accelerated(SetInt8Accelerated(true))
	rng := rand.New(rand.NewSource(4))
	special := []float32{0, float32(math.Copysign(0, -1)), 1, 2.5, 3.5, 254.5, 255.5, 256, 1e30, -1e30, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), -3}
	gen := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			if rng.Intn(5) == 0 {
				x[i] = special[rng.Intn(len(special))]
			} else {
				x[i] = float32(rng.NormFloat64() * 100)
			}
		}
		return x
	}
	both := func(f func()) {
		SetInt8Accelerated(true)
		f()
		SetInt8Accelerated(false)
		f()
		SetInt8Accelerated(true)
	}
	for n := 0; n <= 70; n++ {
		x := gen(n)
		var got [2]float32
		k := 0
		both(func() { got[k] = MaxPositive(x); k++ })
		if math.Float32bits(got[0]) != math.Float32bits(got[1]) {
			t.Fatalf("MaxPositive n=%d: assembly %v, portable %v", n, got[0], got[1])
		}
		if n == 0 {
			continue
		}
		stride := n + rng.Intn(5)
		src := gen(3*stride + n)
		var q [2][]uint8
		k = 0
		both(func() {
			q[k] = make([]uint8, 4*n+3)
			QuantU8x4(q[k], src, stride, n, 1)
			k++
		})
		for i := range q[0] {
			if q[0][i] != q[1][i] {
				t.Fatalf("QuantU8x4 n=%d byte %d: assembly %d, portable %d (src %v)", n, i, q[0][i], q[1][i], src[(i%4)*stride+i/4])
			}
		}
	}
	for v, want := range map[float32]uint8{2.5: 2, 3.5: 4, 254.5: 254, 255.5: 255, -1: 0, 1e30: 255} {
		if got := QuantU8(v, 1); got != want {
			t.Errorf("QuantU8(%v) = %d, want %d", v, got, want)
		}
	}
}
