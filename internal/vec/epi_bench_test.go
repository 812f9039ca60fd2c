package vec

import "testing"

// The epilogues at the shapes of the conv model's layers, per image.
func BenchmarkEpilogues(b *testing.B) {
	src := randSlice(newRand(), 32*30*30)
	dst := make([]float32, 32*30*30+64)
	for _, p := range Supported() {
		b.Run("path="+string(p)+"/copyrows-32x28x28", func(b *testing.B) {
			usePath(b, p)
			for b.Loop() {
				for c := 0; c < 32; c++ {
					CopyRows(dst[c*902+31:], src[c*784:], 28, 28, 30, 28)
				}
			}
		})
		b.Run("path="+string(p)+"/interleave-32x(2x14x14)", func(b *testing.B) {
			usePath(b, p)
			for b.Loop() {
				for c := 0; c < 32; c++ {
					for a := 0; a < 2; a++ {
						InterleaveAddReLU(dst[c*784+a*28:], src[c*210:], src[6720+c*210:], 14, 14, 56, 15, 0.1)
					}
				}
			}
		})
		b.Run("path="+string(p)+"/pool-32x14x14", func(b *testing.B) {
			usePath(b, p)
			for b.Loop() {
				for c := 0; c < 32; c++ {
					PoolAddReLURows(dst[c*196:], src[c*840:], 14, 14, 14, 30, 0.1)
				}
			}
		})
	}
}
