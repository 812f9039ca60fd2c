package model

import (
	"math"

	"github.com/aeserve/aeserve/internal/vec"
)

type layerKind uint8

const (
	kindConv  layerKind = iota // Conv2D, weights [Cout, Cin, K, K]
	kindConvT                  // ConvTranspose2D, weights [Cin, Cout, K, K]
)

// layer is the static geometry of one convolution or transposed
// convolution over a batch of NCHW images.
type layer struct {
	kind      layerKind
	Cin, Cout int
	K, S, P   int
	H, W      int // input plane
	OH, OW    int // output plane
}

// convSame is a 3×3, stride 1, zero-padded convolution keeping the plane size.
func convSame(cin, cout, h, w int) layer {
	return layer{kind: kindConv, Cin: cin, Cout: cout, K: 3, S: 1, P: 1, H: h, W: w, OH: h, OW: w}
}

// convTSame is a 3×3, stride 2 transposed convolution with Keras/TensorFlow
// "same" padding: the output plane is twice the input, and input pixel
// (i,j) spreads over output rows 2i..2i+2 and columns 2j..2j+2 (the last
// row and column of that spread fall outside and are dropped).
func convTSame(cin, cout, h, w int) layer {
	return layer{kind: kindConvT, Cin: cin, Cout: cout, K: 3, S: 2, P: 0, H: h, W: w, OH: 2 * h, OW: 2 * w}
}

func (l layer) inLen() int  { return l.Cin * l.H * l.W }
func (l layer) outLen() int { return l.Cout * l.OH * l.OW }
func (l layer) wLen() int   { return l.Cin * l.Cout * l.K * l.K }

func (l layer) wShape() []int {
	if l.kind == kindConvT {
		return []int{l.Cin, l.Cout, l.K, l.K}
	}
	return []int{l.Cout, l.Cin, l.K, l.K}
}

// geom is the im2col geometry: over the input for a convolution, over the
// output for a transposed convolution (which is a convolution's adjoint).
func (l layer) geom() geom {
	if l.kind == kindConvT {
		return geom{C: l.Cout, H: l.OH, W: l.OW, K: l.K, S: l.S, P: l.P, OH: l.H, OW: l.W}
	}
	return geom{C: l.Cin, H: l.H, W: l.W, K: l.K, S: l.S, P: l.P, OH: l.OH, OW: l.OW}
}

// forward computes y = act(layer(x) + b) for n images. With pool it
// computes act(maxpool2(layer(x)) + b) instead, which equals
// maxpool2(act(layer(x) + b)) for a monotonic act (max commutes with adding
// a per-channel constant and with ReLU) and does the elementwise work on a
// quarter of the values.
func (l layer) forward(x, w, b, y []float32, n int, act Activation, pool bool, sc *scratch) {
	j := &sc.im2co
	*j = im2colJob{l: l, g: l.geom(), x: x, w: w, b: b, y: y, act: act, pool: pool, sc: sc,
		inL: l.inLen(), outL: l.outLen(), planeOut: l.OH * l.OW, p: sc.workers(n)}
	if pool {
		j.outL /= 4
		j.planeOut /= 4
	}
	sc.reserve(2 * j.p)
	parallelRun(n, j.p, j, sc.doneChan(j.p))
	*j = im2colJob{} // drop the references to this pass's tensors
}

// im2colJob is one forward call's parallel body.
type im2colJob struct {
	l           layer
	g           geom
	x, w, b, y  []float32
	act         Activation
	pool        bool
	sc          *scratch
	inL, outL   int
	planeOut, p int
}

func (j *im2colJob) run(worker, lo, hi int) {
	l, g, b := j.l, j.g, j.b
	col := j.sc.get(worker, g.colRows()*g.colCols())
	var pre []float32
	if j.pool {
		pre = j.sc.get(j.p+worker, l.outLen())
	}
	for i := lo; i < hi; i++ {
		xi, yi := j.x[i*j.inL:(i+1)*j.inL], j.y[i*j.outL:(i+1)*j.outL]
		z := yi
		if j.pool {
			z = pre
		}
		if l.kind == kindConv {
			im2col(g, xi, col)
			sgemm(false, false, l.Cout, g.colCols(), g.colRows(), j.w, g.colRows(), col, g.colCols(), 0, z, l.OH*l.OW)
		} else {
			sgemm(true, false, g.colRows(), g.colCols(), l.Cin, j.w, g.colRows(), xi, l.H*l.W, 0, col, g.colCols())
			col2im(g, col, z)
		}
		switch {
		case j.pool && j.act == ActReLU:
			oh, ow := l.OH/2, l.OW/2
			for co := 0; co < l.Cout; co++ {
				vec.PoolAddReLURows(yi[co*oh*ow:], z[co*l.OH*l.OW:], oh, ow, ow, l.OW, b[co])
			}
		case j.pool:
			maxPool2(z, yi, l.Cout, l.OH, l.OW)
			biasAct(yi, b, j.planeOut, j.act)
		default:
			biasAct(yi, b, j.planeOut, j.act)
		}
	}
}

// inputGrad computes dx from gz, the gradient at the layer's pre-activation output.
func (l layer) inputGrad(gz, w, dx []float32, n int, sc *scratch) {
	g := l.geom()
	inL, outL := l.inLen(), l.outLen()
	p := workers(n)
	sc.reserve(p)
	parallel(n, p, func(worker, lo, hi int) {
		col := sc.get(worker, g.colRows()*g.colCols())
		for i := lo; i < hi; i++ {
			gi, dxi := gz[i*outL:(i+1)*outL], dx[i*inL:(i+1)*inL]
			if l.kind == kindConv {
				sgemm(true, false, g.colRows(), g.colCols(), l.Cout, w, g.colRows(), gi, l.OH*l.OW, 0, col, g.colCols())
				col2im(g, col, dxi)
			} else {
				im2col(g, gi, col)
				sgemm(false, false, l.Cin, g.colCols(), g.colRows(), w, g.colRows(), col, g.colCols(), 0, dxi, l.H*l.W)
			}
		}
	})
}

// filterGrad computes dw from x and gz. Each worker sums its images into
// its own buffer; the buffers are added in worker order for reproducibility.
func (l layer) filterGrad(x, gz, dw []float32, n int, cols, parts *scratch) {
	g := l.geom()
	inL, outL, wL := l.inLen(), l.outLen(), l.wLen()
	p := workers(n)
	cols.reserve(p)
	parts.reserve(p)
	for w := 0; w < p; w++ {
		clear(parts.get(w, wL))
	}
	parallel(n, p, func(worker, lo, hi int) {
		col := cols.get(worker, g.colRows()*g.colCols())
		pw := parts.get(worker, wL)
		for i := lo; i < hi; i++ {
			xi, gi := x[i*inL:(i+1)*inL], gz[i*outL:(i+1)*outL]
			if l.kind == kindConv {
				im2col(g, xi, col)
				sgemm(false, true, l.Cout, g.colRows(), g.colCols(), gi, g.colCols(), col, g.colCols(), 1, pw, g.colRows())
			} else {
				im2col(g, gi, col)
				sgemm(false, true, l.Cin, g.colRows(), g.colCols(), xi, g.colCols(), col, g.colCols(), 1, pw, g.colRows())
			}
		}
	})
	copy(dw, parts.get(0, wL))
	for w := 1; w < p; w++ {
		for i, v := range parts.get(w, wL) {
			dw[i] += v
		}
	}
}

// biasGrad sums gz over images and positions for each output channel.
func biasGrad(gz, db []float32, n, c, hw int) { biasGradChannels(gz, db, n, c, hw, 0, c) }

// biasGradChannels is biasGrad for channels [lo, hi) only, so that
// workers can share the channels out.
func biasGradChannels(gz, db []float32, n, c, hw, lo, hi int) {
	clear(db[lo:hi])
	for i := 0; i < n; i++ {
		for k := lo; k < hi; k++ {
			db[k] += vec.Sum(gz[(i*c+k)*hw : (i*c+k+1)*hw])
		}
	}
}

// maxPool2 is a 2×2, stride 2 max pool over n·c planes of h×w (h, w even).
func maxPool2(x, y []float32, planes, h, w int) {
	oh, ow := h/2, w/2
	for p := 0; p < planes; p++ {
		xp, yp := x[p*h*w:(p+1)*h*w], y[p*oh*ow:(p+1)*oh*ow]
		for i := 0; i < oh; i++ {
			r0, r1 := xp[2*i*w:][:w], xp[(2*i+1)*w:][:w]
			out := yp[i*ow:][:ow]
			for j := range out {
				out[j] = max(r0[2*j], r0[2*j+1], r1[2*j], r1[2*j+1])
			}
		}
	}
}

// bceLogits returns the sum over elements of the binary cross-entropy
// between sigmoid(z) and t, computed from the logits for stability:
// max(z,0) − z·t + log(1 + e^−|z|).
func bceLogits(z, t []float32) float64 {
	var s float64
	for i, zv := range z {
		v := float64(zv)
		s += math.Max(v, 0) - v*float64(t[i]) + math.Log1p(math.Exp(-math.Abs(v)))
	}
	return s
}

// bceLogitsGrad writes scale·(sigmoid(z) − t) into dz.
func bceLogitsGrad(z, t, dz []float32, scale float32) {
	for i, zv := range z {
		dz[i] = scale * (sigmoid32(zv) - t[i])
	}
}
