package model

import "github.com/aeserve/aeserve/internal/vec"

// The forward fast path: no im2col and no col2im. The input of each image is
// copied once into a zero-padded buffer; then every 3×3 tap is an ordinary
// strided matrix over that buffer (rows: input channels, columns: positions
// of a grid as wide as the padded row), so a layer is 9 GEMMs accumulating
// into that grid, and one pass adds the bias, applies the activation (and
// pools) while copying the valid columns out.
//
// Convolution (stride 1, pad 1): out[h,w] = Σ_tap W_tap · xpad[h+kh, w+kw].
//
// Transposed convolution (stride 2, pad 0): output pixel (2m+a, 2q+b) only
// receives taps with kh ≡ a and kw ≡ b (mod 2), from input (m−kh/2, q−kw/2).
// Each of the four parity phases is therefore a small convolution over the
// input padded by one zero row and column at the top and left, written
// straight to its pixels: no scatter-add.

// fastForward reports whether the layer has the geometry the fast path covers.
// Narrow inputs (the first layer's single channel) would make K=Cin GEMMs
// too thin to pay; they keep im2col.
func (l layer) fastForward() bool {
	if l.K != 3 || l.Cin < 8 {
		return false
	}
	if l.kind == kindConv {
		return l.S == 1 && l.P == 1
	}
	return l.S == 2 && l.P == 0 && l.OH == 2*l.H && l.OW == 2*l.W
}

// gatherForward reports whether a convolution that fastForward leaves to
// im2col (too few input channels for per-tap products) runs the fast path
// anyway because the kernels gather: all nine taps are then one product
// with k = 9·Cin straight over the padded input, and no im2col copy.
func (l layer) gatherForward() bool {
	return l.K == 3 && l.kind == kindConv && l.S == 1 && l.P == 1 && vec.HasGather()
}

// packTaps lays the weights out as 9 row-major [Cout, Cin] matrices, one per tap.
func (l layer) packTaps(w, dst []float32) {
	for co := 0; co < l.Cout; co++ {
		for ci := 0; ci < l.Cin; ci++ {
			var src []float32
			if l.kind == kindConv {
				src = w[(co*l.Cin+ci)*9:][:9]
			} else {
				src = w[(ci*l.Cout+co)*9:][:9]
			}
			for tap, v := range src {
				dst[(tap*l.Cout+co)*l.Cin+ci] = v
			}
		}
	}
}

// padded geometry of the per-image input buffer and the GEMM output grid.
type padGeom struct {
	pw       int // padded row width, and the grid width
	chStride int // floats per padded channel (with slack for the last tap's overrun)
	top      int // zero rows (and columns) before the data
	gridLen  int // grid positions per output map
}

func (l layer) padGeom() padGeom {
	if l.kind == kindConv {
		pw := l.W + 2
		return padGeom{pw: pw, chStride: (l.H+2)*pw + 2, top: 1, gridLen: l.H * pw}
	}
	pw := l.W + 1
	return padGeom{pw: pw, chStride: (l.H+1)*pw + 1, top: 1, gridLen: l.H * pw}
}

// padInterior copies one image [Cin,H,W] into a padded buffer whose border
// is already zero: see padBufs.
func (l layer) padInterior(x, xp []float32, pg padGeom) {
	for c := 0; c < l.Cin; c++ {
		vec.CopyRows(xp[c*pg.chStride+pg.top*pg.pw+pg.top:], x[c*l.H*l.W:], l.H, l.W, pg.pw, l.W)
	}
}

// padBufs hands each worker a padded input buffer. Only interiors are ever
// written to them (by padInterior), so their borders stay zero from
// allocation on and the forward pass never clears them: that was 185 KB of
// stores per image. It also keeps the layer's weights in the layout of
// vec.SgemmGather.
type padBufs struct {
	s scratch
	g gatherWeights
}

// gatherWeights are a fast layer's weights as vec.SgemmGather takes them:
// per output phase (one for a convolution, four for a transposed one) a
// row-major [Cout, taps·Cin] matrix, and the offset into the padded input
// of each of its columns' rows (tap, ci). All taps then make one product
// whose sums stay in registers, instead of one product per tap
// accumulating in memory.
type gatherWeights struct {
	from  *float32 // the tap-packed weights these were made from; nil: remake
	fixed bool     // those weights never change (inference): make these once
	a     [4][]float32
	off   [4][]int
}

// gather makes g from the tap-packed weights unless they are fixed and g was
// made from them already.
func (l layer) gather(packed []float32, pg padGeom, g *gatherWeights) {
	if g.fixed && g.from == &packed[0] {
		return
	}
	phases := convTPhases[:]
	if l.kind == kindConv {
		phases = [][][3]int{convTaps}
	}
	for ph, taps := range phases {
		k := len(taps) * l.Cin
		if len(g.a[ph]) != l.Cout*k {
			g.a[ph] = make([]float32, l.Cout*k)
			g.off[ph] = make([]int, k)
		}
		for ti, t := range taps { // t: tap index, row shift, column shift into xp
			for co := 0; co < l.Cout; co++ {
				copy(g.a[ph][co*k+ti*l.Cin:][:l.Cin], packed[(t[0]*l.Cout+co)*l.Cin:][:l.Cin])
			}
			for ci := 0; ci < l.Cin; ci++ {
				g.off[ph][ti*l.Cin+ci] = ci*pg.chStride + t[1]*pg.pw + t[2]
			}
		}
	}
	g.from = &packed[0]
}

// phaseGEMM computes phase ph's grid from the padded input: one gathered
// product when the kernels have it, else one product per tap.
func (l layer) phaseGEMM(ph int, taps [][3]int, packed, xp, grid []float32, pg padGeom, g *gatherWeights) {
	k := len(taps) * l.Cin
	if vec.SgemmGather(l.Cout, pg.gridLen, k, g.a[ph], k, xp, g.off[ph], grid, pg.gridLen) {
		return
	}
	l.tapGEMM(taps, packed, xp, grid, pg)
}

func (p *padBufs) reserve(workers int) { p.s.reserve(workers) }

func (p *padBufs) get(worker, size int) []float32 {
	if len(p.s.bufs[worker]) != size {
		p.s.bufs[worker] = make([]float32, size)
	}
	return p.s.bufs[worker]
}

// unpad is pad's inverse: it copies the image [Cin,H,W] out of a padded buffer.
func (l layer) unpad(xp, x []float32, pg padGeom) {
	for c := 0; c < l.Cin; c++ {
		for h := 0; h < l.H; h++ {
			copy(x[(c*l.H+h)*l.W:][:l.W], xp[c*pg.chStride+(h+pg.top)*pg.pw+pg.top:][:l.W])
		}
	}
}

// tapGEMM accumulates W_tap · shifted(xp) into grid for the given taps.
func (l layer) tapGEMM(taps [][3]int, packed, xp, grid []float32, pg padGeom) {
	for i, t := range taps { // t: tap index, row shift, column shift into xp
		beta := float32(1)
		if i == 0 {
			beta = 0
		}
		off := t[1]*pg.pw + t[2]
		sgemm(false, false, l.Cout, pg.gridLen, l.Cin, packed[t[0]*l.Cout*l.Cin:], l.Cin, xp[off:], pg.chStride, beta, grid, pg.gridLen)
	}
}

var convTaps = func() [][3]int {
	var t [][3]int
	for kh := 0; kh < 3; kh++ {
		for kw := 0; kw < 3; kw++ {
			t = append(t, [3]int{kh*3 + kw, kh, kw})
		}
	}
	return t
}()

// convTPhases[a*2+b] lists the taps of output parity (a, b): the input for
// tap kh sits kh/2 rows above, i.e. at padded row 1−kh/2 relative to m.
var convTPhases = func() [4][][3]int {
	var ph [4][][3]int
	for kh := 0; kh < 3; kh++ {
		for kw := 0; kw < 3; kw++ {
			p := (kh%2)*2 + kw%2
			ph[p] = append(ph[p], [3]int{kh*3 + kw, 1 - kh/2, 1 - kw/2})
		}
	}
	return ph
}()

// forwardFast is forward for fastForward layers, with weights already packed.
func (l layer) forwardFast(x, packed, b, y []float32, n int, act Activation, pool bool, pads *padBufs, sc *scratch) {
	j := &sc.fast
	*j = fastJob{l: l, x: x, packed: packed, b: b, y: y, act: act, pool: pool, pads: pads, sc: sc,
		pg: l.padGeom(), inL: l.inLen(), outL: l.outLen(), grids: 1}
	if pool {
		j.outL /= 4
	}
	if l.kind == kindConvT {
		j.grids = 4 // all phases first, so that rows are emitted whole
	}
	l.gather(packed, j.pg, &pads.g)
	p := sc.workers(n)
	pads.reserve(p)
	sc.reserve(p)
	parallelRun(n, p, j, sc.doneChan(p))
	*j = fastJob{} // drop the references to this pass's tensors
}

// fastJob is one forwardFast call's parallel body.
type fastJob struct {
	l                layer
	x, packed, b, y  []float32
	act              Activation
	pool             bool
	pads             *padBufs
	sc               *scratch
	pg               padGeom
	inL, outL, grids int
}

func (j *fastJob) run(worker, lo, hi int) {
	l, pg := j.l, j.pg
	xp := j.pads.get(worker, l.Cin*pg.chStride)
	grid := j.sc.get(worker, j.grids*l.Cout*pg.gridLen)
	for i := lo; i < hi; i++ {
		l.padInterior(j.x[i*j.inL:(i+1)*j.inL], xp, pg)
		yi := j.y[i*j.outL : (i+1)*j.outL]
		if l.kind == kindConv {
			l.phaseGEMM(0, convTaps, j.packed, xp, grid, pg, &j.pads.g)
			l.emit(grid, j.b, yi, pg, j.act, j.pool)
			continue
		}
		for ph, taps := range convTPhases {
			l.phaseGEMM(ph, taps, j.packed, xp, grid[ph*l.Cout*pg.gridLen:], pg, &j.pads.g)
		}
		l.emitPhases(grid, j.b, yi, pg, j.act)
	}
}

// emit copies a convolution's grid to y [Cout,OH,OW] (or pooled), adding
// bias and applying act.
func (l layer) emit(grid, bias, y []float32, pg padGeom, act Activation, pool bool) {
	for co, bv := range bias {
		g := grid[co*pg.gridLen:][:pg.gridLen]
		if !pool {
			out := y[co*l.OH*l.OW:][:l.OH*l.OW]
			if act == ActNone && bv == 0 {
				// The adjoint passes of training's input gradients: no bias,
				// no activation, so a copy of the plane (which, unlike
				// v + 0, keeps a −0: the same gradient).
				vec.CopyRows(out, g, l.OH, l.OW, l.OW, pg.pw)
				continue
			}
			for h := 0; h < l.OH; h++ {
				activate(out[h*l.OW:][:l.OW], g[h*pg.pw:][:l.OW], bv, act)
			}
			continue
		}
		oh, ow := l.OH/2, l.OW/2
		out := y[co*oh*ow:][:oh*ow]
		if act == ActReLU {
			vec.PoolAddReLURows(out, g, oh, ow, ow, pg.pw, bv)
			continue
		}
		for h := 0; h < oh; h++ {
			r0, r1 := g[2*h*pg.pw:][:l.OW], g[(2*h+1)*pg.pw:][:l.OW]
			row := out[h*ow:][:ow]
			for j := range row {
				row[j] = max(r0[2*j], r0[2*j+1], r1[2*j], r1[2*j+1])
			}
			activate(row, row, bv, act)
		}
	}
}

// emitPhases writes a transposed convolution's output from its four phase
// grids (phase a·2+b holds the pixels (2m+a, 2q+b)), adding bias and
// applying act.
func (l layer) emitPhases(grids, bias, y []float32, pg padGeom, act Activation) {
	phase := func(ph, co int) []float32 {
		return grids[(ph*l.Cout+co)*pg.gridLen:][:pg.gridLen]
	}
	for co, bv := range bias {
		out := y[co*l.OH*l.OW:][:l.OH*l.OW]
		for a := 0; a < 2; a++ {
			p0, p1 := phase(2*a, co), phase(2*a+1, co)
			if act == ActReLU {
				// Output rows 2m+a, m < H, from phase rows m.
				vec.InterleaveAddReLU(out[a*l.OW:], p0, p1, l.H, l.W, 2*l.OW, pg.pw, bv)
				continue
			}
			for m := 0; m < l.H; m++ {
				row := out[(2*m+a)*l.OW:][:l.OW]
				for q := 0; q < l.W; q++ {
					row[2*q], row[2*q+1] = p0[m*pg.pw+q], p1[m*pg.pw+q]
				}
				activate(row, row, bv, act)
			}
		}
	}
}

// activate writes act(src + bias) to dst (which may be src).
func activate(dst, src []float32, bias float32, act Activation) {
	switch act {
	case ActReLU:
		vec.AddReLU(dst, src, bias)
	case ActSigmoid:
		vec.AddSigmoid(dst, src, bias)
	default:
		for i, v := range src {
			dst[i] = v + bias
		}
	}
}

// adjoint returns the layer whose forward pass computes this layer's input
// gradient, when the grid path covers it: for a 3×3, stride 1, pad 1
// convolution that is the same convolution from Cout to Cin channels with
// the kernel flipped.
func (l layer) adjoint() (layer, bool) {
	if l.kind != kindConv || l.S != 1 || l.P != 1 || l.K != 3 {
		return layer{}, false
	}
	// Unlike the forward pass, even a single-channel adjoint (the last
	// layer's, 1 → 32) pays: the alternative scatter-adds a 9×-expanded
	// column matrix back into the image.
	return convSame(l.Cout, l.Cin, l.H, l.W), true
}

// packAdjoint packs w [Cout,Cin,3,3] as the adjoint's taps: tap (kh,kw) of
// the adjoint is w[·,·,2−kh,2−kw] transposed to [Cin, Cout].
func (l layer) packAdjoint(w, dst []float32) {
	for co := 0; co < l.Cout; co++ {
		for ci := 0; ci < l.Cin; ci++ {
			src := w[(co*l.Cin+ci)*9:][:9]
			for tap, v := range src {
				dst[((8-tap)*l.Cin+ci)*l.Cout+co] = v
			}
		}
	}
}

// Gradients on the padded grid. With gg the output gradient laid out on the
// grid (junk columns zero), the filter gradient of tap t is
// Σ_p gg[co,p]·xpad[ci,off_t+p]: one GEMM per tap over the whole grid, no
// im2col. A transposed convolution's input gradient is the adjoint of its
// forward: each tap's W_tapᵀ·gg is added into the padded input gradient at
// the tap's offset.

// fastGrad reports whether the padded-grid gradients cover the layer.
func (l layer) fastGrad() bool {
	if l.K != 3 {
		return false
	}
	if l.kind == kindConv {
		return l.S == 1 && l.P == 1
	}
	return l.S == 2 && l.P == 0 && l.OH == 2*l.H && l.OW == 2*l.W
}

// gridOf lays out rows [0,rows) of width w of each of c planes of src
// (plane size rows·w, or for a phase: every other row and column starting at
// (a,b) of planes OH×OW) on the grid, zeroing the junk columns.
func (l layer) gridOf(gz, gg []float32, pg padGeom, phase int) {
	clear(gg[:l.Cout*pg.gridLen])
	for co := 0; co < l.Cout; co++ {
		plane := gz[co*l.OH*l.OW:][:l.OH*l.OW]
		g := gg[co*pg.gridLen:][:pg.gridLen]
		if l.kind == kindConv {
			for h := 0; h < l.OH; h++ {
				copy(g[h*pg.pw:][:l.OW], plane[h*l.OW:][:l.OW])
			}
			continue
		}
		a, b := phase/2, phase%2
		vec.CopyRowsStride2(g, plane[a*l.OW+b:], l.H, l.W, pg.pw, 2*l.OW)
	}
}

// phases returns the tap lists of the layer: one list for a convolution,
// four (by output parity) for a transposed convolution.
func (l layer) phases() [][][3]int {
	if l.kind == kindConv {
		return [][][3]int{convTaps}
	}
	return convTPhases[:]
}

// gridOfT is gridOf transposed: the grid laid out position-major,
// ggT[pos·Cout+co], junk columns zero. With it each tap's filter gradient
// xpad_tap · ggT is an untransposed product.
func (l layer) gridOfT(gz, ggT []float32, pg padGeom, phase int) {
	c, plane := l.Cout, l.OH*l.OW
	rows, cols, step, at := l.OH, l.OW, 1, 0
	if l.kind != kindConv {
		a, b := phase/2, phase%2
		rows, cols, step, at = l.H, l.W, 2, a*l.OW+b
	}
	for h := 0; h < rows; h++ {
		row := ggT[h*pg.pw*c:][:pg.pw*c]
		// Row h of every plane (or of a phase: every other column of row
		// 2h+a), channels becoming the fast axis.
		vec.Transpose(row, c, gz[at+h*step*l.OW:], plane, c, cols, step)
		clear(row[cols*c:])
	}
}

// filterGradFast computes dw (the layer's weight layout) from x and gz:
// per tap, dW_tapᵀ [Cin, Cout] = xpad_tap [Cin, grid] · ggT [grid, Cout],
// untransposed for vec's kernel; with a BLAS that reads transposed operands
// itself (sgemmTransposes), dW_tap = gg · xpad_tapᵀ instead, which spares
// the transposition of gz.
func (l layer) filterGradFast(x, gz, dw []float32, n int, pads *padBufs, bufs, parts *scratch) {
	pg := l.padGeom()
	inL, outL, wL := l.inLen(), l.outLen(), l.wLen()
	p, chunks := workers(n), min(n, trainChunks)
	pads.reserve(p)
	bufs.reserve(p)
	parts.reserve(chunks)
	for c := 0; c < chunks; c++ {
		parts.get(c, wL) // allocated here: the workers only write
	}
	parallelChunks(n, chunks, p, func(worker, chunk, lo, hi int) {
		xp := pads.get(worker, l.Cin*pg.chStride)
		gg := bufs.get(worker, l.Cout*pg.gridLen)
		pt := parts.get(chunk, wL) // per tap [Cin, Cout], or [Cout, Cin] with sgemmTransposes
		clear(pt)
		for i := lo; i < hi; i++ {
			l.padInterior(x[i*inL:(i+1)*inL], xp, pg)
			for ph, taps := range l.phases() {
				if sgemmTransposes {
					l.gridOf(gz[i*outL:(i+1)*outL], gg, pg, ph)
				} else {
					l.gridOfT(gz[i*outL:(i+1)*outL], gg, pg, ph)
				}
				for _, t := range taps {
					off := t[1]*pg.pw + t[2]
					if sgemmTransposes {
						sgemm(false, true, l.Cout, l.Cin, pg.gridLen, gg, pg.gridLen, xp[off:], pg.chStride, 1, pt[t[0]*l.Cout*l.Cin:], l.Cin)
						continue
					}
					sgemm(false, false, l.Cin, l.Cout, pg.gridLen, xp[off:], pg.chStride, gg, l.Cout, 1, pt[t[0]*l.Cout*l.Cin:], l.Cout)
				}
			}
		}
	})
	// Sum the pieces' parts in order, then unpack taps to the weight layout.
	sum := parts.get(0, wL)
	for c := 1; c < chunks; c++ {
		for i, v := range parts.get(c, wL) {
			sum[i] += v
		}
	}
	for tap := 0; tap < 9; tap++ {
		for ci := 0; ci < l.Cin; ci++ {
			for co := 0; co < l.Cout; co++ {
				v := sum[(tap*l.Cin+ci)*l.Cout+co]
				if sgemmTransposes {
					v = sum[(tap*l.Cout+co)*l.Cin+ci]
				}
				if l.kind == kindConv {
					dw[(co*l.Cin+ci)*9+tap] = v
				} else {
					dw[(ci*l.Cout+co)*9+tap] = v
				}
			}
		}
	}
}

// packTapsT is packTaps transposed: 9 row-major [Cin, Cout] matrices.
func (l layer) packTapsT(w, dst []float32) {
	for co := 0; co < l.Cout; co++ {
		for ci := 0; ci < l.Cin; ci++ {
			var src []float32
			if l.kind == kindConv {
				src = w[(co*l.Cin+ci)*9:][:9]
			} else {
				src = w[(ci*l.Cout+co)*9:][:9]
			}
			for tap, v := range src {
				dst[(tap*l.Cin+ci)*l.Cout+co] = v
			}
		}
	}
}

// inputGradFastT computes a transposed convolution's input gradient, with
// the weights packed by packTapsT.
func (l layer) inputGradFastT(gz, packedT, dx []float32, n int, bufs *scratch) {
	pg := l.padGeom()
	inL, outL := l.inLen(), l.outLen()
	p := workers(n)
	bufs.reserve(2 * p)
	parallelChunks(n, trainChunks, p, func(worker, _, lo, hi int) {
		dxp := bufs.get(worker, l.Cin*pg.chStride)
		gg := bufs.get(p+worker, l.Cout*pg.gridLen)
		for i := lo; i < hi; i++ {
			clear(dxp)
			for ph, taps := range convTPhases {
				l.gridOf(gz[i*outL:(i+1)*outL], gg, pg, ph)
				for _, t := range taps {
					off := t[1]*pg.pw + t[2]
					sgemm(false, false, l.Cin, pg.gridLen, l.Cout, packedT[t[0]*l.Cout*l.Cin:], l.Cout, gg, pg.gridLen, 1, dxp[off:], pg.chStride)
				}
			}
			l.unpad(dxp, dx[i*inL:(i+1)*inL], pg)
		}
	})
}
