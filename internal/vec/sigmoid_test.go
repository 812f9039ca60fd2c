package vec

import (
	"math"
	"testing"
)

// AddSigmoid on every path against float64's σ, over the whole float32 range
// that matters (and far past it), and the assembly bit for bit against
// sigmoidGo, its tails and slack included.
func TestAddSigmoid(t *testing.T) {
	r := newRand()
	src := make([]float32, 0, 200000)
	for x := float32(-100); x <= 100; x += 0.001953125 {
		src = append(src, x)
	}
	for range 50000 {
		src = append(src, float32(r.NormFloat64()*8))
	}
	src = append(src, 0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 1e30, -1e30, math.MaxFloat32, -math.MaxFloat32)
	var worst float64
	for _, b := range []float32{0, 0.25, -3} {
		want := make([]float32, len(src))
		for i, v := range src {
			want[i] = sigmoidGo(v + b)
			exact := 1 / (1 + math.Exp(-float64(v+b)))
			if exact < 1e-37 { // past the clamp: σ is below float32's normal range
				if want[i] > 1e-37 {
					t.Fatalf("σ(%v + %v) = %v, want about 0", v, b, want[i])
				}
				continue
			}
			d := math.Abs(float64(want[i])-exact) / ulp32(exact)
			if d > 3 {
				t.Fatalf("σ(%v + %v) = %v, exactly %v: %.1f ulp off", v, b, want[i], exact, d)
			}
			worst = max(worst, d)
		}
		for _, p := range Supported() {
			usePath(t, p)
			for _, n := range []int{len(src), 1, 7, 8, 9, 15, 17} {
				got := withGuard(n)
				AddSigmoid(got[:n], src[:n], b)
				sameBits(t, "AddSigmoid/"+string(p), n, got, want[:n])
			}
			inPlace := append([]float32(nil), src...)
			AddSigmoid(inPlace, inPlace, b)
			sameBits(t, "AddSigmoid in place/"+string(p), len(src), inPlace, want)
		}
	}
	t.Logf("worst error %.2f ulp", worst)
}

// A NaN stays NaN on every path (the server refuses non-finite outputs, so
// the clamp must not turn one into 0 or 1), and ±Inf give σ's limits.
func TestAddSigmoidSpecialValues(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	src := []float32{nan, 1, -inf, inf, nan, 0, 0, 0, nan}
	for _, p := range Supported() {
		usePath(t, p)
		for _, n := range []int{len(src), 8, 1} {
			got := make([]float32, n)
			AddSigmoid(got, src[:n], 0.5)
			for i, v := range src[:n] {
				switch {
				case v != v:
					if got[i] == got[i] {
						t.Errorf("%s n=%d: σ(NaN) = %v, want NaN", p, n, got[i])
					}
				case math.IsInf(float64(v), 1) && got[i] != 1, math.IsInf(float64(v), -1) && got[i] > 1e-37:
					t.Errorf("%s n=%d: σ(%v) = %v", p, n, v, got[i])
				}
			}
		}
	}
}

// ulp32 is the spacing of float32 values at |x|.
func ulp32(x float64) float64 {
	f := float32(math.Abs(x))
	return float64(math.Nextafter32(f, math.MaxFloat32) - f)
}

func BenchmarkAddSigmoid(b *testing.B) {
	src, dst := randSlice(newRand(), 784), make([]float32, 784)
	for _, p := range Supported() {
		b.Run("path="+string(p), func(b *testing.B) {
			usePath(b, p)
			for b.Loop() {
				AddSigmoid(dst, src, 0.1)
			}
		})
	}
}
