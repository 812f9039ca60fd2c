package vec

import "math"

// AddSigmoid sets dst[i] = σ(src[i] + b) = 1 / (1 + e^−(src[i]+b)) for
// i < len(src), in float32 within 3 ulp of the exact value (the tests bound
// it against float64). dst may be src.
//
// The decoders' last layer applies it to every output pixel; through
// float64's math.Exp it had become a sizeable part of a pass. e^t is
// Cephes' expf: t = n·ln 2 + r with |r| ≤ ln 2 / 2, a degree-5 polynomial
// for e^r, and 2^n built in the exponent bits; t is clamped to [−87, 88],
// where σ is 0 or 1 to float32 precision anyway; a NaN stays NaN. The assembly
// (sigmoid_amd64.s) and sigmoidGo round every product and sum on its own
// and so agree bit for bit.
func AddSigmoid(dst, src []float32, b float32) {
	if len(src) == 0 {
		return
	}
	_ = dst[len(src)-1]
	if level >= lvlAVX2 {
		addSigmoidAVX2(&dst[0], &src[0], len(src), b)
		return
	}
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = sigmoidGo(v + b)
	}
}

const (
	sigLog2e = float32(1.44269504088896341)
	sigC1    = float32(0.693359375)
	sigC2    = float32(-2.12194440e-4)
)

// sigmoidGo is the reference of the assembly: the same operations in the same
// order. The float32 conversions keep the compiler from fusing a product and
// a sum into one FMA, which would round differently.
func sigmoidGo(x float32) float32 {
	t := min(max(-x, -87), 88)
	n := float32(math.RoundToEven(float64(float32(t * sigLog2e))))
	r := t - float32(n*sigC1)
	r -= float32(n * sigC2)
	p := float32(float32(1.9875691500e-4)*r) + 1.3981999507e-3
	p = float32(p*r) + 8.3334519073e-3
	p = float32(p*r) + 4.1665795894e-2
	p = float32(p*r) + 1.6666665459e-1
	p = float32(p*r) + 5.0000001201e-1
	y := float32(p*float32(r*r)) + r
	y++
	e := y * math.Float32frombits(uint32(int32(n)+127)<<23)
	return 1 / (1 + e)
}
