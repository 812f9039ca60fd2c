package model

import "github.com/aeserve/aeserve/internal/vec"

// int8Net runs a stage's layers on the int8 path: a Runner's, so used by
// one goroutine at a time, with buffers grown to the largest batch run and
// then reused (a pass allocates nothing).
type int8Net struct {
	layers []*q8Layer
	state  []q8State    // per layer
	acts   [2][]float32 // layer outputs, alternating
	work   []q8Work     // per worker
	done   chan any
	conv   q8ConvJob
	dense  q8DenseJob
	serial bool // a Runner's lane: one core (see scratch.workers)
}

// q8State is a layer's per-runner buffers: the padded input buffers of a
// convolution, one per worker, whose borders stay zero because only
// interiors are written.
type q8State struct {
	xp [][]uint8
}

// q8Work is one worker's scratch, shared by the layers in turn.
type q8Work struct {
	grid     []int32
	fgrid    []float32
	panel    []uint8
	rowScale []float32
}

func newInt8Net(q map[string]*q8Layer, parts []*Stage) *int8Net {
	net := &int8Net{}
	for _, s := range parts {
		for _, l := range s.Layers {
			net.layers = append(net.layers, q[l.Name])
		}
	}
	net.state = make([]q8State, len(net.layers))
	return net
}

// run computes k ≤ MaxChunk items from in into out.
func (net *int8Net) run(in, out []float32, k int) {
	x := in
	for i, q := range net.layers {
		n := k * prod(q.l.outShape())
		var y []float32
		if i == len(net.layers)-1 {
			y = out
		} else {
			if cap(net.acts[i%2]) < n {
				net.acts[i%2] = make([]float32, n)
			}
			y = net.acts[i%2][:n]
		}
		net.layer(i, x, y, k)
		x = y
	}
}

func (net *int8Net) layer(i int, x, y []float32, k int) {
	q, st := net.layers[i], &net.state[i]
	l := q.l
	switch {
	case q.float:
		denseForwardT(*l.fc, x, q.w32, q.b, y, k, l.Act)
	case l.fc != nil:
		blocks := (k + 3) / 4
		p := net.workers(blocks)
		net.reserve(p)
		net.dense = q8DenseJob{q: q, x: x, y: y, n: k, net: net}
		parallelRun(blocks, p, &net.dense, net.done)
		net.dense = q8DenseJob{}
	default:
		p := net.workers(k)
		net.reserve(p)
		for len(st.xp) < p {
			st.xp = append(st.xp, make([]uint8, q.cp*q.pg.chStride))
		}
		net.conv = q8ConvJob{q: q, st: st, x: x, y: y, net: net}
		parallelRun(k, p, &net.conv, net.done)
		net.conv = q8ConvJob{}
	}
}

func (net *int8Net) workers(n int) int {
	if net.serial {
		return 1
	}
	return workers(n)
}

func (net *int8Net) reserve(p int) {
	for len(net.work) < p {
		net.work = append(net.work, q8Work{})
	}
	if cap(net.done) < p {
		net.done = make(chan any, p)
	}
}

func growI32(b *[]int32, n int) []int32 {
	if cap(*b) < n {
		*b = make([]int32, n)
	}
	return (*b)[:n]
}

func growU8(b *[]uint8, n int) []uint8 {
	if cap(*b) < n {
		*b = make([]uint8, n)
	}
	return (*b)[:n]
}

func growF32(b *[]float32, n int) []float32 {
	if cap(*b) < n {
		*b = make([]float32, n)
	}
	return (*b)[:n]
}

// q8ConvJob runs a convolution's images [lo, hi) as one worker.
type q8ConvJob struct {
	q    *q8Layer
	st   *q8State
	x, y []float32
	net  *int8Net
}

func (j *q8ConvJob) run(worker, lo, hi int) {
	q, l := j.q, *j.q.l.conv
	pg := q.pg
	inL, outL := l.inLen(), prod(j.q.l.outShape())
	xp := j.st.xp[worker]
	phases := len(q.panels)
	cout4 := round4(l.Cout)
	wk := &j.net.work[worker]
	fgrid := growF32(&wk.fgrid, (phases*l.Cout+cout4-l.Cout)*pg.gridLen)
	rs := growF32(&wk.rowScale, cout4) // sx·sw per output channel, 0 for padding
	clear(rs)
	for i := lo; i < hi; i++ {
		xi := j.x[i*inL:][:inL]
		sx := actScale(xi)
		var inv float32
		if sx > 0 {
			inv = 1 / sx
		}
		// Quantise into the interior: channel c at lane c%4 of group c/4.
		hw := l.H * l.W
		for c := 0; c < l.Cin; c += 4 {
			g := xp[(c/4*pg.chStride+pg.top*pg.pw+pg.top)*4:]
			if c+4 <= l.Cin {
				for h := 0; h < l.H; h++ {
					vec.QuantU8x4(g[h*pg.pw*4:], xi[c*hw+h*l.W:], hw, l.W, inv)
				}
				continue
			}
			for cc := c; cc < l.Cin; cc++ { // the last channels of fewer than 4
				plane := xi[cc*hw:][:hw]
				for h := 0; h < l.H; h++ {
					row, dst := plane[h*l.W:][:l.W], g[h*pg.pw*4+cc%4:]
					for w, v := range row {
						dst[4*w] = vec.QuantU8(v, inv)
					}
				}
			}
		}
		for co := range l.Cout {
			rs[co] = sx * q.sw[co]
		}
		// Phase ph's rows at ph·Cout: its padding rows (Cout to a multiple
		// of 4) land on the next phase's first rows, which that phase then
		// writes, or past the last phase's.
		for ph := 0; ph < phases; ph++ {
			vec.GemmS8U8Scaled(fgrid[ph*l.Cout*pg.gridLen:], pg.gridLen, q.panels[ph], xp, q.boffs[ph], cout4, pg.gridLen, rs)
		}
		yi := j.y[i*outL:][:outL]
		if l.kind == kindConv {
			l.emit(fgrid, q.b, yi, pg, q.l.Act, q.l.Pool)
		} else {
			l.emitPhases(fgrid, q.b, yi, pg, q.l.Act)
		}
	}
}

// q8DenseJob runs a dense layer's blocks of 4 items [lo, hi) as one worker.
type q8DenseJob struct {
	q    *q8Layer
	x, y []float32
	n    int
	net  *int8Net
}

func (j *q8DenseJob) run(worker, lo, hi int) {
	q, d := j.q, *j.q.l.fc
	nkb := len(q.boff)
	wk := &j.net.work[worker]
	rows := (hi - lo) * 4
	panel := growU8(&wk.panel, vec.PanelLen(rows, nkb))
	c := growI32(&wk.grid, rows*d.Out)
	scales := growF32(&wk.fgrid, rows)
	if lo*4+rows > j.n { // a last block with padding rows: all zero
		clear(panel[(rows-4)*nkb*4:])
	}
	for r := 0; r < rows && lo*4+r < j.n; r++ {
		xi := j.x[(lo*4+r)*d.In:][:d.In]
		sx := actScale(xi)
		var inv float32
		if sx > 0 {
			inv = 1 / sx
		}
		scales[r] = sx
		// Row r's k-values 4kb…4kb+3 at base + 16·kb (vec.PanelIndex).
		dst := panel[(r/4*nkb*4+r%4)*4:]
		kb := 0
		for ; 4*kb+4 <= d.In; kb++ {
			g, x := dst[16*kb:][:4], xi[4*kb:][:4]
			g[0], g[1], g[2], g[3] = vec.QuantU8(x[0], inv), vec.QuantU8(x[1], inv), vec.QuantU8(x[2], inv), vec.QuantU8(x[3], inv)
		}
		if kb < nkb { // In not a multiple of 4: the last group's tail is zero
			g := dst[16*kb:][:4]
			for t := range g {
				g[t] = 0
				if 4*kb+t < d.In {
					g[t] = vec.QuantU8(xi[4*kb+t], inv)
				}
			}
		}
	}
	vec.GemmU8S8(c, d.Out, panel, q.wq, q.boff, rows, d.Out)
	for r := 0; r < rows; r++ {
		item := lo*4 + r
		if item >= j.n {
			break
		}
		row := j.y[item*d.Out:][:d.Out]
		for o, v := range c[r*d.Out:][:d.Out] {
			row[o] = float32(v) * (scales[r] * q.sw[o])
		}
		rowAct(row, q.b, q.l.Act)
	}
}
