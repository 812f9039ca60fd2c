package model

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"

	"github.com/aeserve/aeserve/internal/vec"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// refMaxPool2Grad is the window-by-window definition: clear dx, then add
// each dy at the first maximum (row-major) of its window.
func refMaxPool2Grad(x, dy, dx []float32, planes, h, w int) {
	oh, ow := h/2, w/2
	clear(dx[:planes*h*w])
	for p := 0; p < planes; p++ {
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				best := p*h*w + 2*i*w + 2*j
				for _, k := range [3]int{best + 1, best + w, best + w + 1} {
					if x[k] > x[best] {
						best = k
					}
				}
				dx[best] += dy[p*oh*ow+i*ow+j]
			}
		}
	}
}

func TestMaxPool2GradTies(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	const planes, h, w = 5, 6, 8
	x := make([]float32, planes*h*w)
	for i := range x {
		x[i] = float32(rng.Intn(3)) // many ties, some all-equal windows
	}
	dy := to32(randVec(rng, planes*h*w/4, 1))
	got, want := make([]float32, len(x)), make([]float32, len(x))
	for i := range got {
		got[i] = float32(math.NaN()) // every element must be written
	}
	vec.MaxPool2Grad(x, dy, got, planes*h/2, w/2, false)
	refMaxPool2Grad(x, dy, want, planes, h, w)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("dx[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	// With relu (x is then a ReLU's output: here, windows of zeros are
	// common), the result is the ReLU's gradient of the plain one.
	vec.MaxPool2Grad(x, dy, got, planes*h/2, w/2, true)
	actGrad(ActReLU, x, want, want)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("relu: dx[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

// TestElementwiseOpsSplitAcrossCores runs the training graph's elementwise
// ops on inputs large enough to be split across workers and compares each
// with its kernel run over the whole input on one goroutine.
func TestElementwiseOpsSplitAcrossCores(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	shape := tensor.Shape{33, 7, 12, 10} // 27,720 elements: above parElems, odd batch
	size := shape.TotalSize()
	if size < parElems {
		t.Fatalf("%d elements would not be split", size)
	}
	vals := func(scale float64) []float32 { return to32(randVec(rng, size, scale)) }
	tens := func(d []float32, s ...int) G.Value { return tensor.New(tensor.WithShape(s...), tensor.WithBacking(d)) }
	y, dy, z := vals(1), vals(1), vals(4)
	relu := make([]float32, size)
	for i, v := range y {
		relu[i] = max(v, 0)
	}
	sig := make([]float32, size)
	for i, v := range z {
		sig[i] = sigmoid32(v)
	}
	tgt := make([]float32, size)
	for i := range tgt {
		tgt[i] = rng.Float32()
	}
	pooled := shape.Clone()
	pooled[2], pooled[3] = shape[2]/2, shape[3]/2
	dyPool := dy[:size/4]
	planes, hw := shape[0]*shape[1], shape[2]*shape[3]

	for _, tc := range []struct {
		name string
		op   G.Op
		in   []G.Value
		want func() []float32
	}{
		{"actgrad/relu", &actGradOp{act: ActReLU}, []G.Value{tens(relu, shape...), tens(dy, shape...)}, func() []float32 {
			d := make([]float32, size)
			actGrad(ActReLU, relu, dy, d)
			return d
		}},
		{"actgrad/sigmoid", &actGradOp{act: ActSigmoid}, []G.Value{tens(sig, shape...), tens(dy, shape...)}, func() []float32 {
			d := make([]float32, size)
			actGrad(ActSigmoid, sig, dy, d)
			return d
		}},
		{"maxpool", &maxPoolOp{}, []G.Value{tens(y, shape...)}, func() []float32 {
			d := make([]float32, size/4)
			maxPool2(y, d, planes, shape[2], shape[3])
			return d
		}},
		// After a ReLU convolution the pool runs vec's pooling kernel with
		// no bias: the same values as the plain loop, to the bit.
		{"maxpool/after-relu", &maxPoolOp{afterReLU: true}, []G.Value{tens(relu, shape...)}, func() []float32 {
			d := make([]float32, size/4)
			maxPool2(relu, d, planes, shape[2], shape[3])
			return d
		}},
		{"maxpoolgrad", &maxPoolGradOp{}, []G.Value{tens(y, shape...), tens(dyPool, pooled...)}, func() []float32 {
			d := make([]float32, size)
			refMaxPool2Grad(y, dyPool, d, planes, shape[2], shape[3])
			return d
		}},
		{"biasgrad", &biasGradOp{c: shape[1]}, []G.Value{tens(dy, shape...)}, func() []float32 {
			d := make([]float32, shape[1])
			biasGrad(dy, d, shape[0], shape[1], hw)
			return d
		}},
		{"bcegrad", &bceGradOp{}, []G.Value{tens(z, shape...), tens(tgt, shape...), G.NewF32(0.5)}, func() []float32 {
			d := make([]float32, size)
			bceLogitsGrad(z, tgt, d, 0.5/float32(size))
			return d
		}},
		{"bce", &bceOp{}, []G.Value{tens(z, shape...), tens(tgt, shape...)}, func() []float32 {
			return []float32{float32(bceLogits(z, tgt) / float64(size))}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.op.Do(tc.in...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := data32(out)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want()
			if len(got) != len(want) {
				t.Fatalf("%d values, want %d", len(got), len(want))
			}
			for i := range want {
				// Bit for bit, but for the loss, whose float64 partial sums
				// are added in another order.
				if got[i] != want[i] && !(tc.name == "bce" && math.Abs(float64(got[i]-want[i])) <= 1e-6*math.Abs(float64(want[i]))) {
					t.Fatalf("%s[%d] = %v, want %v", fmt.Sprint(tc.name), i, got[i], want[i])
				}
			}
		})
	}
}

// TestPoolTakesOverReLUGradient checks the training graph of the
// convolutional autoencoder: its two pooled ReLU convolutions get their
// activation gradient from the pool's gradient, and no ReLU gradient op of
// their own; the transposed convolutions keep theirs. Both pools know their
// input is a ReLU's (maxPoolOp.afterReLU).
func TestPoolTakesOverReLUGradient(t *testing.T) {
	tg, err := NewTrainGraph(ArchConv, ArchConv.InitParams(1), 2, Objective{})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, n := range tg.G.AllNodes() {
		if n.Op() != nil {
			count[n.Op().String()]++
		}
		if p, ok := n.Op().(*maxPoolOp); ok && !p.afterReLU {
			t.Errorf("%s: pool of a ReLU convolution without afterReLU", n.Name())
		}
	}
	if count["MaxPool2x2Grad+ReLU"] != 2 || count["MaxPool2x2Grad"] != 0 || count["ActGrad:"+ActReLU.String()] != 2 {
		t.Fatalf("gradient ops: %v", count)
	}
}

// TestDenseTrainingOpsSplitAcrossCores runs a training graph's dense
// products (forward, input and weight gradients), large enough to be shared
// out by rows, and compares them with one whole product each.
func TestDenseTrainingOpsSplitAcrossCores(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	const n = 67 // odd: uneven shares
	d := dense{In: 300, Out: 50}
	if n*d.In*d.Out < 1<<17 {
		t.Fatal("too small to be split")
	}
	x, w, b := to32(randVec(rng, n*d.In, 1)), to32(randVec(rng, d.In*d.Out, 1)), to32(randVec(rng, d.Out, 1))
	gz := to32(randVec(rng, n*d.Out, 1))
	tens := func(v []float32, s ...int) G.Value { return tensor.New(tensor.WithShape(s...), tensor.WithBacking(v)) }
	run := func(op G.Op, in ...G.Value) []float32 {
		t.Helper()
		out, err := op.Do(in...)
		if err != nil {
			t.Fatal(err)
		}
		v, err := data32(out)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	toF64 := func(v []float32) []float64 {
		o := make([]float64, len(v))
		for i, x := range v {
			o[i] = float64(x)
		}
		return o
	}

	wt := make([]float32, len(w))
	transpose(w, wt, d.Out, d.In)
	want := make([]float32, n*d.Out)
	denseForwardT(d, x, wt, b, want, n, ActSigmoid)
	got := run(&denseOp{d: d, inDims: 2, act: ActSigmoid}, tens(x, n, d.In), tens(w, d.Out, d.In), tens(b, d.Out))
	closeEnough(t, "y", got, toF64(want), 1e-5, 1e-5)

	want = make([]float32, n*d.In)
	sgemm(false, false, n, d.In, d.Out, gz, d.Out, w, d.In, 0, want, d.In)
	got = run(&denseInputGradOp{d: d, xShape: tensor.Shape{n, d.In}}, tens(gz, n, d.Out), tens(w, d.Out, d.In))
	closeEnough(t, "dx", got, toF64(want), 1e-4, 1e-5)

	want = make([]float32, d.Out*d.In)
	sgemm(true, false, d.Out, d.In, n, gz, d.Out, x, d.In, 0, want, d.In)
	got = run(&denseWeightGradOp{d: d, inDims: 2}, tens(x, n, d.In), tens(gz, n, d.Out))
	closeEnough(t, "dw", got, toF64(want), 1e-4, 1e-5)
}

// TestFilterGradSameOnAnyCoreCount: the filter gradient sums its pieces in
// piece order, so one core and two give the same bits, whichever core
// happens to take which piece.
func TestFilterGradSameOnAnyCoreCount(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for _, l := range []layer{convSame(8, 8, 6, 5), convTSame(8, 8, 3, 4)} {
		const n = 19
		x, gz := to32(randVec(rng, n*l.inLen(), 1)), to32(randVec(rng, n*l.outLen(), 1))
		var want []float32
		for _, procs := range []int{1, 2, 3, 1} {
			prev := runtime.GOMAXPROCS(procs)
			dw := make([]float32, l.wLen())
			var pads padBufs
			var bufs, parts scratch
			l.filterGradFast(x, gz, dw, n, &pads, &bufs, &parts)
			runtime.GOMAXPROCS(prev)
			if want == nil {
				want = dw
				continue
			}
			for i := range want {
				if math.Float32bits(dw[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%+v, %d cores: dw[%d] = %v, with 1 core %v", l, procs, i, dw[i], want[i])
				}
			}
		}
	}
}
