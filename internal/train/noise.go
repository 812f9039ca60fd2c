package train

import (
	"fmt"
	"math/rand"
)

// AddNoise writes clip(src[i] + factor·N(0,1), 0, 1) to dst[i], the corruption used to train
// denoising autoencoders. dst may be src. Draws come from rng only, so a seed reproduces the
// noise exactly. With factor 0 dst becomes an exact copy of src and rng is not used, so noise-free
// runs do not shift the random stream of whatever else shares rng.
func AddNoise(dst, src []float32, factor float64, rng *rand.Rand) {
	if len(dst) < len(src) {
		panic(fmt.Sprintf("train.AddNoise: dst has %d values, src %d", len(dst), len(src)))
	}
	if factor == 0 {
		copy(dst, src)
		return
	}
	for i, x := range src {
		v := float64(x) + factor*rng.NormFloat64()
		dst[i] = float32(min(max(v, 0), 1))
	}
}
