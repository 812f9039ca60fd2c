package model

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Plain float64 loop references, written from the definitions, not from the
// fast kernels: direct convolution sums and the scatter form of the
// transposed convolution.

func refConv(l layer, x, w, b []float64, n int) []float64 {
	y := make([]float64, n*l.outLen())
	for i := 0; i < n; i++ {
		for co := 0; co < l.Cout; co++ {
			for oh := 0; oh < l.OH; oh++ {
				for ow := 0; ow < l.OW; ow++ {
					s := b[co]
					for ci := 0; ci < l.Cin; ci++ {
						for kh := 0; kh < l.K; kh++ {
							for kw := 0; kw < l.K; kw++ {
								ih, iw := oh*l.S+kh-l.P, ow*l.S+kw-l.P
								if ih < 0 || ih >= l.H || iw < 0 || iw >= l.W {
									continue
								}
								s += x[((i*l.Cin+ci)*l.H+ih)*l.W+iw] * w[((co*l.Cin+ci)*l.K+kh)*l.K+kw]
							}
						}
					}
					y[((i*l.Cout+co)*l.OH+oh)*l.OW+ow] = s
				}
			}
		}
	}
	return y
}

func refConvT(l layer, x, w, b []float64, n int) []float64 {
	y := make([]float64, n*l.outLen())
	for i := 0; i < n; i++ {
		for co := 0; co < l.Cout; co++ {
			for p := 0; p < l.OH*l.OW; p++ {
				y[(i*l.Cout+co)*l.OH*l.OW+p] = b[co]
			}
		}
		for ci := 0; ci < l.Cin; ci++ {
			for ih := 0; ih < l.H; ih++ {
				for iw := 0; iw < l.W; iw++ {
					xv := x[((i*l.Cin+ci)*l.H+ih)*l.W+iw]
					for co := 0; co < l.Cout; co++ {
						for kh := 0; kh < l.K; kh++ {
							for kw := 0; kw < l.K; kw++ {
								oh, ow := ih*l.S+kh-l.P, iw*l.S+kw-l.P
								if oh < 0 || oh >= l.OH || ow < 0 || ow >= l.OW {
									continue
								}
								y[((i*l.Cout+co)*l.OH+oh)*l.OW+ow] += xv * w[((ci*l.Cout+co)*l.K+kh)*l.K+kw]
							}
						}
					}
				}
			}
		}
	}
	return y
}

func refAct(act Activation, y []float64) {
	for i, v := range y {
		switch act {
		case ActReLU:
			y[i] = math.Max(v, 0)
		case ActSigmoid:
			y[i] = 1 / (1 + math.Exp(-v))
		}
	}
}

func refLayer(l layer, act Activation, x, w, b []float64, n int) []float64 {
	var y []float64
	if l.kind == kindConvT {
		y = refConvT(l, x, w, b, n)
	} else {
		y = refConv(l, x, w, b, n)
	}
	refAct(act, y)
	return y
}

func refPool(x []float64, planes, h, w int) []float64 {
	y := make([]float64, planes*h*w/4)
	for p := 0; p < planes; p++ {
		for i := 0; i < h/2; i++ {
			for j := 0; j < w/2; j++ {
				m := math.Inf(-1)
				for di := 0; di < 2; di++ {
					for dj := 0; dj < 2; dj++ {
						m = math.Max(m, x[(p*h+2*i+di)*w+2*j+dj])
					}
				}
				y[(p*h/2+i)*w/2+j] = m
			}
		}
	}
	return y
}

func randVec(rng *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = (rng.Float64()*2 - 1) * scale
	}
	return v
}

func to32(v []float64) []float32 {
	o := make([]float32, len(v))
	for i, x := range v {
		o[i] = float32(x)
	}
	return o
}

func closeEnough(t *testing.T, what string, got []float32, want []float64, atol, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); !(d <= atol+rtol*math.Abs(want[i])) { // NaN fails too
			t.Fatalf("%s[%d] = %v, want %v (|diff| %g)", what, i, got[i], want[i], d)
		}
	}
}

// Small layers of both kinds and geometries the model does not use, so the
// kernels are checked beyond the shapes that happen to be in production.
var testLayers = []struct {
	name string
	l    layer
}{
	{"conv-1to3-5x6", layer{kind: kindConv, Cin: 1, Cout: 3, K: 3, S: 1, P: 1, H: 5, W: 6, OH: 5, OW: 6}},
	{"conv-2to4-same", convSame(2, 4, 6, 6)},
	{"conv-stride2-pad0", layer{kind: kindConv, Cin: 2, Cout: 3, K: 3, S: 2, P: 0, H: 7, W: 7, OH: 3, OW: 3}},
	{"convT-2to3", convTSame(2, 3, 3, 4)},
	{"convT-3to2-pad1", layer{kind: kindConvT, Cin: 3, Cout: 2, K: 3, S: 2, P: 1, H: 3, W: 3, OH: 6, OW: 6}},
	// 8+ channels on both sides: the fast forward and adjoint (input-gradient) paths.
	{"conv-8to8-4x5", convSame(8, 8, 4, 5)},
	{"conv-4to1-4x3", convSame(4, 1, 4, 3)}, // the last layer's shape: a one-channel adjoint
	{"convT-8to8-3x2", convTSame(8, 8, 3, 2)},
}

func TestLayerForwardMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, tc := range testLayers {
		for _, act := range []Activation{ActNone, ActReLU, ActSigmoid} {
			for _, n := range []int{1, 3} {
				t.Run(fmt.Sprintf("%s/%s/n=%d", tc.name, act, n), func(t *testing.T) {
					l := tc.l
					x, w, b := randVec(rng, n*l.inLen(), 1), randVec(rng, l.wLen(), 1), randVec(rng, l.Cout, 1)
					y := make([]float32, n*l.outLen())
					var sc scratch
					l.forward(to32(x), to32(w), to32(b), y, n, act, false, &sc)
					closeEnough(t, "y", y, refLayer(l, act, x, w, b, n), 1e-5, 1e-5)
				})
			}
		}
	}
}

func TestProductionLayersMatchReference(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, lp := range productionConvs() {
		t.Run(lp.name, func(t *testing.T) {
			l, n := lp.l, 2
			x, w, b := randVec(rng, n*l.inLen(), 1), randVec(rng, l.wLen(), 0.2), randVec(rng, l.Cout, 0.1)
			y := make([]float32, n*l.outLen())
			var sc scratch
			l.forward(to32(x), to32(w), to32(b), y, n, ActReLU, false, &sc)
			closeEnough(t, "y", y, refLayer(l, ActReLU, x, w, b, n), 1e-4, 1e-4)
		})
	}
}

// The inference graphs pool before bias and activation; that must equal
// pooling after them.
func TestFusedConvPoolMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	for _, tc := range testLayers {
		l := tc.l
		if l.OH%2 != 0 || l.OW%2 != 0 {
			continue
		}
		for _, act := range []Activation{ActNone, ActReLU} {
			t.Run(tc.name+"/"+act.String(), func(t *testing.T) {
				n := 3
				x, w, b := randVec(rng, n*l.inLen(), 1), randVec(rng, l.wLen(), 1), randVec(rng, l.Cout, 1)
				y := make([]float32, n*l.outLen()/4)
				var sc scratch
				l.forward(to32(x), to32(w), to32(b), y, n, act, true, &sc)
				closeEnough(t, "y", y, refPool(refLayer(l, act, x, w, b, n), n*l.Cout, l.OH, l.OW), 1e-5, 1e-5)
			})
		}
	}
}

// The fast forward path (padded shifted GEMMs, parity phases) against the
// same references, on every production layer and on odd shapes.
func TestFastForwardMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	layers := []struct {
		name string
		l    layer
	}{
		{"conv-8to3-5x6", layer{kind: kindConv, Cin: 8, Cout: 3, K: 3, S: 1, P: 1, H: 5, W: 6, OH: 5, OW: 6}},
		{"convT-8to4-3x4", convTSame(8, 4, 3, 4)},
		{"convT-9to1-1x1", convTSame(9, 1, 1, 1)},
	}
	layers = append(layers, productionConvs()...)
	for _, tc := range layers {
		l := tc.l
		if !l.fastForward() {
			continue
		}
		for _, act := range []Activation{ActNone, ActReLU, ActSigmoid} {
			for _, pool := range []bool{false, true} {
				if pool && (l.kind != kindConv || l.OH%2 != 0 || l.OW%2 != 0 || act == ActSigmoid) {
					continue
				}
				t.Run(fmt.Sprintf("%s/%s/pool=%v", tc.name, act, pool), func(t *testing.T) {
					// Twice with the same buffers: the second pass must not
					// see anything of the first (padBufs keeps borders only).
					var pads padBufs
					var sc scratch
					for round := range 2 {
						n := 3 - round
						x, w, b := randVec(rng, n*l.inLen(), 1), randVec(rng, l.wLen(), 0.5), randVec(rng, l.Cout, 0.5)
						want := refLayer(l, act, x, w, b, n)
						if pool {
							want = refPool(want, n*l.Cout, l.OH, l.OW)
						}
						packed := make([]float32, l.wLen())
						l.packTaps(to32(w), packed)
						y := make([]float32, len(want))
						for i := range y {
							y[i] = float32(math.NaN()) // every output must be written
						}
						l.forwardFast(to32(x), packed, to32(b), y, n, act, pool, &pads, &sc)
						closeEnough(t, fmt.Sprintf("round %d: y", round), y, want, 1e-4, 1e-4)
					}
				})
			}
		}
	}
}

func TestMaxPoolMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	x := randVec(rng, 2*3*6*4, 1)
	y := make([]float32, len(x)/4)
	maxPool2(to32(x), y, 6, 6, 4)
	closeEnough(t, "pool", y, refPool(x, 6, 6, 4), 0, 1e-7) // exact up to float32 rounding
}

func TestBCEMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	z := randVec(rng, 50, 8)
	tv := make([]float64, len(z))
	for i := range tv {
		tv[i] = rng.Float64()
	}
	var want float64
	for i := range z {
		p := 1 / (1 + math.Exp(-z[i]))
		want -= tv[i]*math.Log(p) + (1-tv[i])*math.Log(1-p)
	}
	if got := bceLogits(to32(z), to32(tv)); math.Abs(got-want) > 1e-4*math.Abs(want) {
		t.Fatalf("bce = %v, want %v", got, want)
	}
}

// gradCase builds loss = Σ r ⊙ f(inputs) in a gorgonia graph, so the check
// exercises the ops' SymDiff wiring as training uses it, and compares each
// gradient with central differences of a float64 reference f.
type gradCase struct {
	name   string
	shapes [][]int
	apply  func(in G.Nodes) (*G.Node, error)
	ref    func(in [][]float64) []float64
	// fixed marks inputs the op does not differentiate (a sample's noise):
	// they are held constant, and their gradient is not checked.
	fixed []bool
}

func gradCases() []gradCase {
	var cases []gradCase
	for _, tc := range testLayers {
		for _, act := range []Activation{ActNone, ActReLU, ActSigmoid} {
			l, act := tc.l, act
			n := 2
			cases = append(cases, gradCase{
				name:   tc.name + "/" + act.String(),
				shapes: [][]int{{n, l.Cin, l.H, l.W}, l.wShape(), {l.Cout}},
				apply: func(in G.Nodes) (*G.Node, error) {
					return G.ApplyOp(&convOp{l: l, act: act}, in[0], in[1], in[2])
				},
				ref: func(in [][]float64) []float64 { return refLayer(l, act, in[0], in[1], in[2], n) },
			})
		}
	}
	cases = append(cases, denseGradCases()...)
	cases = append(cases, gaussianGradCases()...)
	for _, tc := range []struct {
		name string
		l    layer
	}{{"conv-2to3-relu-pool", convSame(2, 3, 4, 6)}, {"conv-8to8-relu-pool", convSame(8, 8, 4, 6)}} {
		// A ReLU convolution followed by a pool: the pool's gradient takes
		// the ReLU's over (maxPoolGradOp.reluOf).
		l, n := tc.l, 2
		cases = append(cases, gradCase{
			name:   tc.name,
			shapes: [][]int{{n, l.Cin, l.H, l.W}, l.wShape(), {l.Cout}},
			apply: func(in G.Nodes) (*G.Node, error) {
				y, err := G.ApplyOp(&convOp{l: l, act: ActReLU}, in[0], in[1], in[2])
				if err != nil {
					return nil, err
				}
				return maxPool(y)
			},
			ref: func(in [][]float64) []float64 {
				return refPool(refLayer(l, ActReLU, in[0], in[1], in[2], n), n*l.Cout, l.OH, l.OW)
			},
		})
	}
	cases = append(cases, gradCase{
		name:   "maxpool",
		shapes: [][]int{{2, 3, 4, 6}},
		apply:  func(in G.Nodes) (*G.Node, error) { return G.ApplyOp(&maxPoolOp{}, in[0]) },
		ref:    func(in [][]float64) []float64 { return refPool(in[0], 6, 4, 6) },
	})
	return cases
}

func TestGradientsNumerically(t *testing.T) {
	for ci, tc := range gradCases() {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(int64(10 + ci)))
			g := G.NewGraph()
			vals := make([][]float64, len(tc.shapes))
			nodes := make(G.Nodes, len(tc.shapes))
			for i, s := range tc.shapes {
				vals[i] = randVec(rng, prod(s), 1)
				nodes[i] = G.NewTensor(g, tensor.Float32, len(s), G.WithShape(s...), G.WithName(fmt.Sprint("in", i)),
					G.WithValue(tensor.New(tensor.WithShape(s...), tensor.WithBacking(to32(vals[i])))))
			}
			y, err := tc.apply(nodes)
			if err != nil {
				t.Fatal(err)
			}
			ys := y.Shape()
			r := randVec(rng, ys.TotalSize(), 1)
			rn := G.NewTensor(g, tensor.Float32, ys.Dims(), G.WithShape(ys...), G.WithName("r"),
				G.WithValue(tensor.New(tensor.WithShape(ys...), tensor.WithBacking(to32(r)))))
			loss := G.Must(G.Sum(G.Must(G.HadamardProd(y, rn))))
			var wrt G.Nodes
			var which []int
			for i, n := range nodes {
				if i >= len(tc.fixed) || !tc.fixed[i] {
					wrt, which = append(wrt, n), append(which, i)
				}
			}
			grads, err := G.Grad(loss, wrt...)
			if err != nil {
				t.Fatal(err)
			}
			vm := G.NewTapeMachine(g)
			defer vm.Close()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			lossAt := func() float64 {
				var s float64
				for i, v := range tc.ref(vals) {
					s += v * r[i]
				}
				return s
			}
			const h = 1e-4
			for k, i := range which {
				got := grads[k].Value().Data().([]float32)
				want := make([]float64, len(vals[i]))
				for j := range vals[i] {
					orig := vals[i][j]
					vals[i][j] = orig + h
					up := lossAt()
					vals[i][j] = orig - h
					down := lossAt()
					vals[i][j] = orig
					want[j] = (up - down) / (2 * h)
				}
				closeEnough(t, fmt.Sprint("d/din", i), got, want, 2e-3, 2e-3)
			}
		})
	}
}

func TestBCEGradientNumerically(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	shape := []int{2, 1, 3, 3}
	z, tv := randVec(rng, 18, 3), randVec(rng, 18, 0.5)
	for i := range tv {
		tv[i] += 0.5
	}
	g := G.NewGraph()
	zn := G.NewTensor(g, tensor.Float32, 4, G.WithShape(shape...), G.WithName("z"), G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(to32(z)))))
	tn := G.NewTensor(g, tensor.Float32, 4, G.WithShape(shape...), G.WithName("t"), G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(to32(tv)))))
	loss, err := bceWithLogits(zn, tn)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(loss, zn)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	mean := func() float64 { return bceLogits(to32(z), to32(tv)) / float64(len(z)) }
	if got, want := float64(*loss.Value().(*G.F32)), mean(); math.Abs(got-want) > 1e-6 {
		t.Fatalf("loss %v, want %v", got, want)
	}
	want := make([]float64, len(z))
	for j := range z {
		want[j] = (1/(1+math.Exp(-z[j])) - tv[j]) / float64(len(z))
	}
	closeEnough(t, "dz", grads[0].Value().Data().([]float32), want, 1e-6, 1e-4)
}

// productionConvs lists every convolution of every registered architecture.
func productionConvs() []struct {
	name string
	l    layer
} {
	var out []struct {
		name string
		l    layer
	}
	for _, name := range Architectures() {
		a, _ := Lookup(name)
		for _, s := range a.stages {
			for _, l := range s.Layers {
				if l.conv != nil {
					out = append(out, struct {
						name string
						l    layer
					}{name + "/" + l.Name, *l.conv})
				}
			}
		}
	}
	return out
}

// refDense is a dense layer in float64 loops: act(x·Wᵀ + b) per item.
func refDense(d dense, act Activation, x, w, b []float64, n int) []float64 {
	y := make([]float64, n*d.Out)
	for i := 0; i < n; i++ {
		row := y[i*d.Out : (i+1)*d.Out]
		for j := range row {
			s := b[j]
			for k := 0; k < d.In; k++ {
				s += x[i*d.In+k] * w[j*d.In+k]
			}
			row[j] = s
		}
		if act == ActSoftmax {
			m := row[0]
			for _, v := range row {
				m = math.Max(m, v)
			}
			var s float64
			for j, v := range row {
				row[j] = math.Exp(v - m)
				s += row[j]
			}
			for j := range row {
				row[j] /= s
			}
			continue
		}
		refAct(act, row)
	}
	return y
}
