package model

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The dense op against its float64 loop reference, every activation, from
// 2-D and 4-D inputs (a convolution's output feeds it unflattened).
func TestDenseForwardMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	for _, d := range []dense{{In: 7, Out: 3}, {In: 784, Out: 32}, {In: 3136, Out: 10}} {
		for _, act := range []Activation{ActNone, ActReLU, ActSigmoid, ActSoftmax} {
			t.Run(fmt.Sprintf("%d→%d/%s", d.In, d.Out, act), func(t *testing.T) {
				n := 3
				x, w, b := randVec(rng, n*d.In, 1), randVec(rng, d.In*d.Out, 0.1), randVec(rng, d.Out, 0.5)
				y := make([]float32, n*d.Out)
				denseForward(d, to32(x), to32(w), to32(b), y, n, act)
				closeEnough(t, "y", y, refDense(d, act, x, w, b, n), 1e-5, 1e-4)
				if act == ActSoftmax {
					for i := 0; i < n; i++ {
						var s float64
						for _, v := range y[i*d.Out : (i+1)*d.Out] {
							s += float64(v)
						}
						if math.Abs(s-1) > 1e-5 {
							t.Errorf("item %d: probabilities sum to %v", i, s)
						}
					}
				}
			})
		}
	}
}

// denseGradCases are the dense op's gradients, checked like the conv ops'
// (TestGradientsNumerically), from 2-D and 4-D inputs.
func denseGradCases() []gradCase {
	var cases []gradCase
	for _, tc := range []struct {
		name  string
		shape []int
		d     dense
	}{
		{"dense-2d", []int{3, 6}, dense{In: 6, Out: 4}},
		{"dense-4d", []int{2, 2, 2, 3}, dense{In: 12, Out: 5}},
	} {
		for _, act := range []Activation{ActNone, ActReLU, ActSigmoid} {
			tc, act := tc, act
			n := tc.shape[0]
			cases = append(cases, gradCase{
				name:   tc.name + "/" + act.String(),
				shapes: [][]int{tc.shape, tc.d.wShape(), {tc.d.Out}},
				apply: func(in G.Nodes) (*G.Node, error) {
					return G.ApplyOp(&denseOp{d: tc.d, inDims: len(tc.shape), act: act}, in[0], in[1], in[2])
				},
				ref: func(in [][]float64) []float64 { return refDense(tc.d, act, in[0], in[1], in[2], n) },
			})
		}
	}
	return cases
}

// lossCase is a scalar loss term with its float64 reference.
type lossCase struct {
	name   string
	shapes [][]int
	init   func(rng *rand.Rand, i int, v []float64) // fills input i
	op     func() G.Op
	diff   []bool // which inputs have gradients
	ref    func(in [][]float64) float64
}

func lossCases() []lossCase {
	sigmoidCode := func(rng *rand.Rand, i int, v []float64) {
		for j := range v {
			v[j] = 0.05 + 0.9*rng.Float64() // sigmoid outputs, away from 0 and 1
		}
	}
	return []lossCase{
		{
			name:   "softmax cross-entropy",
			shapes: [][]int{{4, 5}, {4, 5}},
			init: func(rng *rand.Rand, i int, v []float64) {
				if i == 0 {
					for j := range v {
						v[j] = rng.NormFloat64() * 2
					}
					return
				}
				clear(v)
				for r := 0; r < 4; r++ {
					v[r*5+rng.Intn(5)] = 1
				}
			},
			op:   func() G.Op { return newSoftmaxCE() },
			diff: []bool{true, false},
			ref: func(in [][]float64) float64 {
				var s float64
				for r := 0; r < 4; r++ {
					z, tv := in[0][r*5:(r+1)*5], in[1][r*5:(r+1)*5]
					m := math.Inf(-1)
					for _, x := range z {
						m = math.Max(m, x)
					}
					var se float64
					for _, x := range z {
						se += math.Exp(x - m)
					}
					for j := range z {
						s -= tv[j] * (z[j] - m - math.Log(se))
					}
				}
				return s / 4
			},
		},
		{
			name:   "KL sparsity",
			shapes: [][]int{{5, 6}},
			init:   sigmoidCode,
			op:     func() G.Op { return newKLSparsity(0.05, 0.7) },
			diff:   []bool{true},
			ref: func(in [][]float64) float64 {
				var s float64
				for j := 0; j < 6; j++ {
					var p float64
					for i := 0; i < 5; i++ {
						p += in[0][i*6+j]
					}
					p /= 5
					s += 0.05*math.Log(0.05/p) + 0.95*math.Log(0.95/(1-p))
				}
				return 0.7 * s
			},
		},
		{
			name:   "L1",
			shapes: [][]int{{3, 4}},
			init: func(rng *rand.Rand, _ int, v []float64) {
				for j := range v {
					v[j] = rng.NormFloat64() // away from the kink with probability 1
				}
			},
			op:   func() G.Op { return newL1(0.3) },
			diff: []bool{true},
			ref: func(in [][]float64) float64 {
				var s float64
				for _, v := range in[0] {
					s += math.Abs(v)
				}
				return 0.3 * s / 3
			},
		},
		{
			name:   "KL to the prior",
			shapes: [][]int{{3, 8}}, // [μ ‖ log σ²] of 4 numbers
			init: func(rng *rand.Rand, _ int, v []float64) {
				for j := range v {
					v[j] = rng.NormFloat64()
				}
			},
			op:   func() G.Op { return newKLPrior(0.6) },
			diff: []bool{true},
			ref: func(in [][]float64) float64 {
				var s float64
				for i := 0; i < 3; i++ {
					for j := 0; j < 4; j++ {
						mu, lv := in[0][i*8+j], in[0][i*8+4+j]
						s += -0.5 * (1 + lv - mu*mu - math.Exp(lv))
					}
				}
				return 0.6 * s / 3
			},
		},
		{
			name:   "contractive",
			shapes: [][]int{{3, 4}, {4, 5}},
			init: func(rng *rand.Rand, i int, v []float64) {
				if i == 0 {
					sigmoidCode(rng, i, v)
					return
				}
				for j := range v {
					v[j] = rng.NormFloat64()
				}
			},
			op:   func() G.Op { return newContractive(0.4) },
			diff: []bool{true, true},
			ref: func(in [][]float64) float64 {
				var s float64
				for i := 0; i < 3; i++ {
					for j := 0; j < 4; j++ {
						h := in[0][i*4+j]
						var w2 float64
						for _, w := range in[1][j*5 : (j+1)*5] {
							w2 += w * w
						}
						s += h * (1 - h) * h * (1 - h) * w2
					}
				}
				return 0.4 * s / 3
			},
		},
	}
}

// Every loss term's value equals its reference and its gradients equal
// central differences of the reference, through a real gorgonia graph.
func TestLossTermsNumerically(t *testing.T) {
	for ci, tc := range lossCases() {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(int64(40 + ci)))
			g := G.NewGraph()
			vals := make([][]float64, len(tc.shapes))
			nodes := make(G.Nodes, len(tc.shapes))
			for i, s := range tc.shapes {
				vals[i] = make([]float64, prod(s))
				tc.init(rng, i, vals[i])
				for j, v := range vals[i] { // what the op will see
					vals[i][j] = float64(float32(v))
				}
				nodes[i] = G.NewTensor(g, tensor.Float32, len(s), G.WithShape(s...), G.WithName(fmt.Sprint("in", i)),
					G.WithValue(tensor.New(tensor.WithShape(s...), tensor.WithBacking(to32(vals[i])))))
			}
			loss, err := G.ApplyOp(tc.op(), nodes...)
			if err != nil {
				t.Fatal(err)
			}
			var wrt G.Nodes
			for i, d := range tc.diff {
				if d {
					wrt = append(wrt, nodes[i])
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
			got := float64(*loss.Value().(*G.F32))
			if want := tc.ref(vals); math.Abs(got-want) > 1e-5+1e-5*math.Abs(want) {
				t.Fatalf("loss %v, reference %v", got, want)
			}
			const h = 1e-5
			k := 0
			for i, d := range tc.diff {
				if !d {
					continue
				}
				want := make([]float64, len(vals[i]))
				for j := range vals[i] {
					orig := vals[i][j]
					vals[i][j] = orig + h
					up := tc.ref(vals)
					vals[i][j] = orig - h
					down := tc.ref(vals)
					vals[i][j] = orig
					want[j] = (up - down) / (2 * h)
				}
				closeEnough(t, fmt.Sprint("d/din", i), grads[k].Value().Data().([]float32), want, 1e-4, 1e-3)
				k++
			}
		})
	}
}

// No layer of any architecture starts at zero (or constant): each weight
// tensor is drawn per layer kind with a spread close to Glorot's, and every
// bias starts at zero, as Keras does.
func TestInitialisationPerLayerKind(t *testing.T) {
	for _, name := range Architectures() {
		a, _ := Lookup(name)
		p := a.InitParams(1)
		for _, s := range a.stages {
			for _, l := range s.Layers {
				w := p[l.Name+".weight"].Data().([]float32)
				var sum, sq float64
				for _, v := range w {
					sum += float64(v)
					sq += float64(v) * float64(v)
				}
				mean := sum / float64(len(w))
				sd := math.Sqrt(sq/float64(len(w)) - mean*mean)
				ws := l.wShape()
				fanIn, fanOut := ws[1], ws[0]
				if l.conv != nil {
					fanIn, fanOut = ws[1]*ws[2]*ws[3], ws[0]*ws[2]*ws[3]
				}
				want := math.Sqrt(2 / float64(fanIn+fanOut)) // the sd of U(±sqrt(6/(in+out)))
				if math.Abs(sd-want) > 0.1*want+0.02 {
					t.Errorf("%s %s: weights have sd %.4g, want about %.4g", name, l.Name, sd, want)
				}
				for _, v := range p[l.Name+".bias"].Data().([]float32) {
					if v != 0 {
						t.Errorf("%s %s: bias starts at %v", name, l.Name, v)
						break
					}
				}
			}
		}
	}
}

// Every registered architecture builds and runs both its inference and its
// training graphs, with the shapes it declares.
func TestArchitecturesBuildAndRun(t *testing.T) {
	for _, name := range Architectures() {
		a, _ := Lookup(name)
		t.Run(name, func(t *testing.T) {
			p := a.InitParams(2)
			m, err := FromParams("m", Manifest{Architecture: a.Name}, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range a.Runnable() {
				r, err := m.NewRunner(h)
				if err != nil {
					t.Fatal(err)
				}
				n := 3
				out, err := r.Run(make([]float32, n*a.InLen(h)), n)
				if err != nil {
					t.Fatalf("%s: %v", h, err)
				}
				if len(out) != n*a.OutLen(h) {
					t.Errorf("%s: %d values out, want %d", h, len(out), n*a.OutLen(h))
				}
			}
			obj := Objective{}
			if a == ArchSigmoid64 {
				obj = Objective{Contractive: 0.1, SparsityRho: 0.05, SparsityBeta: 3, L1: 0.01}
			}
			if a.Gaussian {
				obj = Objective{KL: 1}
			}
			tg, err := NewTrainGraph(a, p, 4, obj)
			if err != nil {
				t.Fatal(err)
			}
			vm := G.NewTapeMachine(tg.G, G.BindDualValues(tg.Learnables...))
			defer vm.Close()
			for _, n := range []*G.Node{tg.X, tg.T} {
				v := tensor.New(tensor.WithShape(n.Shape()...), tensor.Of(tensor.Float32))
				for i, d := 0, v.Float32s(); i < len(d); i++ {
					d[i] = 0.1
				}
				if err := G.Let(n, v); err != nil {
					t.Fatal(err)
				}
			}
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			if loss := float64(*tg.Loss.Value().(*G.F32)); math.IsNaN(loss) || loss <= 0 {
				t.Errorf("loss %v", loss)
			}
			for _, l := range tg.Learnables {
				if g, err := l.Grad(); err != nil || g == nil {
					t.Errorf("%s: no gradient (%v)", l.Name(), err)
				}
			}
		})
	}
}

// Penalties that need a code refuse architectures without one.
func TestObjectiveChecksTheCode(t *testing.T) {
	for _, tc := range []struct {
		a   *Arch
		obj Objective
	}{
		{ArchConv, Objective{SparsityRho: 0.05, SparsityBeta: 3}}, // a 4-D code
		{ArchDense, Objective{Contractive: 0.1}},                  // a ReLU code
		{ArchCNN, Objective{L1: 0.1}},                             // no code at all
		{ArchDense, Objective{KL: 1}},                             // not a Gaussian code
	} {
		if _, err := NewTrainGraph(tc.a, tc.a.InitParams(1), 2, tc.obj); err == nil {
			t.Errorf("%s with %+v: accepted", tc.a.Name, tc.obj)
		}
	}
}
