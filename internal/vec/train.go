package vec

import "math"

// Kernels of the training graph's backward pass. As scalar Go the pooling
// gradient, the bias gradient's sums and the ReLU gradient took a fifth of
// a conv training step between them.

// MaxPool2Grad is the gradient of a 2×2, stride 2 max pool over planes of
// rows·2 × n·2 (x, dx) and rows × n (dy), the planes one after another:
// each dy goes to the first maximum of its window in row-major order (the
// element the forward max pool reads as the maximum on ties), and the
// window's three other elements get +0, so dx needs no clearing first.
// With relu, x is a ReLU's output and nothing is routed where the maximum
// is 0: the ReLU's gradient applied too. For NaN-free x every path agrees
// bit for bit.
func MaxPool2Grad(x, dy, dx []float32, rows, n int, relu bool) {
	if rows <= 0 || n <= 0 {
		return
	}
	_, _, _ = x[4*rows*n-1], dx[4*rows*n-1], dy[rows*n-1]
	if level >= lvlAVX2 {
		maxPool2GradAVX2(&x[0], &dy[0], &dx[0], rows, n, relu)
		return
	}
	maxPool2GradGo(x, dy, dx, rows, n, relu)
}

// maxPool2GradGo picks the slot with bit masks: a branch on which element
// is largest mispredicts on half the windows.
func maxPool2GradGo(x, dy, dx []float32, rows, n int, relu bool) {
	w := 2 * n
	for r := 0; r < rows; r++ {
		x0, x1 := x[2*r*w:][:w], x[(2*r+1)*w:][:w]
		d0, d1 := dx[2*r*w:][:w], dx[(2*r+1)*w:][:w]
		for j, g := range dy[r*n:][:n] {
			a, b, c, d := x0[2*j], x0[2*j+1], x1[2*j], x1[2*j+1]
			m := max(a, b, c, d)
			gb := math.Float32bits(g)
			if relu {
				gb &= -b2u(m > 0)
			}
			ua := b2u(a == m)
			ub := b2u(b == m) &^ ua
			uc := b2u(c == m) &^ (ua | ub)
			ud := 1 &^ (ua | ub | uc)
			d0[2*j], d0[2*j+1] = math.Float32frombits(gb&-ua), math.Float32frombits(gb&-ub)
			d1[2*j], d1[2*j+1] = math.Float32frombits(gb&-uc), math.Float32frombits(gb&-ud)
		}
	}
}

// b2u is 1 for true and 0 for false, without a branch.
func b2u(b bool) uint32 {
	var u uint32
	if b {
		u = 1
	}
	return u
}

// Sum returns the sum of v. The paths add in different orders (the
// assembly in four vectors of partial sums, the Go loop in eight scalar
// ones), so they agree to rounding, not to the bit; each path is
// deterministic.
func Sum(v []float32) float32 {
	if len(v) == 0 {
		return 0
	}
	if level >= lvlAVX2 {
		return sumAVX2(&v[0], len(v))
	}
	return sumGo(v)
}

// sumGo adds in eight interleaved partial sums: one running sum would wait
// on each addition's latency.
func sumGo(v []float32) float32 {
	var s [8]float32
	i := 0
	for ; i+8 <= len(v); i += 8 {
		w := v[i : i+8 : i+8]
		s[0] += w[0]
		s[1] += w[1]
		s[2] += w[2]
		s[3] += w[3]
		s[4] += w[4]
		s[5] += w[5]
		s[6] += w[6]
		s[7] += w[7]
	}
	t := ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
	for _, x := range v[i:] {
		t += x
	}
	return t
}

// ReLUGrad sets dst[i] = dy[i] where y[i], a ReLU's output (≥ +0), is not
// +0, and +0 elsewhere, for i < len(y). dst may be dy.
func ReLUGrad(dst, y, dy []float32) {
	if len(y) == 0 {
		return
	}
	_, _ = dst[len(y)-1], dy[len(y)-1]
	if level >= lvlAVX2 {
		reluGradAVX2(&dst[0], &y[0], &dy[0], len(y))
		return
	}
	reluGradGo(dst, y, dy)
}

// reluGradGo masks with y's bits rather than branching on y > 0, which
// would mispredict on half the elements.
func reluGradGo(dst, y, dy []float32) {
	dy, dst = dy[:len(y)], dst[:len(y)]
	for i, v := range y {
		mask := uint32(-int64(math.Float32bits(v)) >> 63)
		dst[i] = math.Float32frombits(math.Float32bits(dy[i]) & mask)
	}
}
