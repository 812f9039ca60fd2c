package model

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/aeserve/aeserve/internal/vec"
	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Custom gorgonia ops. Each holds static geometry and, for speed, scratch
// buffers; an op value belongs to one graph, and a graph to one VM, so the
// buffers are never shared between goroutines.
//
// Every op implements Do (allocating) and UsePreallocDo (writing into the
// VM's buffer from the previous run), so steady-state inference allocates
// no tensors.

var (
	tvA  = hm.TypeVariable('a')
	t1   = G.TensorType{Dims: 1, Of: tvA}
	t4   = G.TensorType{Dims: 4, Of: tvA}
	scal = hm.Type(tvA)
)

func data32(v G.Value) ([]float32, error) {
	switch t := v.(type) {
	case *tensor.Dense:
		// Float32s, unlike Data, hands out the slice without allocating.
		if t.Dtype() != tensor.Float32 {
			return nil, fmt.Errorf("model: want float32 tensor, got %v", t.Dtype())
		}
		return t.Float32s(), nil
	case tensor.Tensor:
		d, ok := t.Data().([]float32)
		if !ok {
			return nil, fmt.Errorf("model: want float32 tensor, got %v", t.Dtype())
		}
		return d, nil
	case *G.F32:
		return []float32{float32(*t)}, nil
	default:
		return nil, fmt.Errorf("model: unsupported value %T", v)
	}
}

// inputs returns the float32 data of vs, which must number want. The slice
// is the op's own, reused across runs.
func (b *opBase) inputs(vs []G.Value, want int) ([][]float32, error) {
	if len(vs) != want {
		return nil, fmt.Errorf("model: want %d inputs, got %d", want, len(vs))
	}
	b.in = b.in[:0]
	for _, v := range vs {
		d, err := data32(v)
		if err != nil {
			return nil, err
		}
		b.in = append(b.in, d)
	}
	return b.in, nil
}

// dest returns the op's float32 output tensor of shape s. The VM forgets its
// registers on every Reset, so UsePreallocDo rarely gets a buffer; the op
// keeps its own instead and overwrites all of it on every run. That is safe
// because an op value belongs to one node of one graph run by one goroutine.
// An inference graph runs whatever batch it is given (see Runner), so the
// tensor is rebuilt when the shape changes, over the same memory while it
// is large enough. The last two shapes are kept: a Runner's lane takes its
// share of a pass in pieces of one size and a last, smaller one, and must
// not build two tensors a pass for it.
func (b *opBase) dest(prealloc G.Value, s tensor.Shape) (*tensor.Dense, []float32) {
	if d, ok := prealloc.(*tensor.Dense); ok && d.Dtype() == tensor.Float32 && d.Shape().Eq(s) {
		return d, d.Float32s()
	}
	switch {
	case b.out != nil && b.out.Shape().Eq(s):
	case b.prev != nil && b.prev.Shape().Eq(s):
		b.out, b.prev = b.prev, b.out
	default:
		size := s.TotalSize()
		if cap(b.mem) < size {
			b.mem = make([]float32, size)
			b.out = nil // over the old memory: not worth keeping
		}
		b.out, b.prev = tensor.New(tensor.WithShape(s...), tensor.WithBacking(b.mem[:size])), b.out
	}
	return b.out, b.out.Float32s()
}

func batchOf(v G.Value) int { return v.Shape()[0] }

func hashOf(s fmt.Stringer) uint32 {
	h := fnv.New32a()
	fmt.Fprint(h, s.String())
	return h.Sum32()
}

// opBase supplies the methods and output buffer every op here shares.
type opBase struct {
	out  *tensor.Dense
	prev *tensor.Dense // the tensor of the shape before out's, over the same memory
	mem  []float32     // out's memory
	in   [][]float32
}

func (*opBase) ReturnsPtr() bool     { return false }
func (*opBase) CallsExtern() bool    { return false }
func (*opBase) OverwritesInput() int { return -1 }

// ---- convolution and transposed convolution, bias and activation fused ----

// convOp computes act(conv(x, w) + b) for x [N,Cin,H,W], followed by a
// 2×2 max pool when pool is set. The pooled form is for inference graphs
// only: it has no gradient (training pools with maxPoolOp).
type convOp struct {
	opBase
	l    layer
	act  Activation
	pool bool
	sc   scratch
	pads padBufs
	// Weights repacked per tap for the fast path. constW (inference graphs)
	// packs once; training repacks every run, as Adam updates in place.
	constW     bool
	packed     []float32
	packedFrom *float32
	dataInput  bool // x is the graph's data: skip its gradient
}

func (op *convOp) Arity() int       { return 3 }
func (op *convOp) Type() hm.Type    { return hm.NewFnType(t4, t4, t1, t4) }
func (op *convOp) String() string   { return fmt.Sprintf("%s%+v", op.name(), op.l) + op.act.String() }
func (op *convOp) Hashcode() uint32 { return hashOf(op) }
func (op *convOp) WriteHash(h hash.Hash) {
	fmt.Fprint(h, op.String())
}
func (op *convOp) name() string {
	if op.l.kind == kindConvT {
		return "ConvT2D"
	}
	return "Conv2D"
}

func (op *convOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok || len(s) != 4 {
		return nil, fmt.Errorf("%s: input shape %v, want 4-d", op.name(), in[0])
	}
	return op.outShape(s[0]), nil
}

func (op *convOp) outShape(n int) tensor.Shape {
	if op.pool {
		return tensor.Shape{n, op.l.Cout, op.l.OH / 2, op.l.OW / 2}
	}
	return tensor.Shape{n, op.l.Cout, op.l.OH, op.l.OW}
}

func (op *convOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }

func (op *convOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 3)
	if err != nil {
		return nil, err
	}
	n := batchOf(vs[0])
	if len(in[0]) != n*op.l.inLen() || len(in[1]) != op.l.wLen() || len(in[2]) != op.l.Cout {
		return nil, fmt.Errorf("%s: input sizes %d/%d/%d do not match the layer", op.name(), len(in[0]), len(in[1]), len(in[2]))
	}
	out, y := op.dest(prealloc, op.outShape(n))
	if !op.l.fastForward() && !op.l.gatherForward() {
		op.l.forward(in[0], in[1], in[2], y, n, op.act, op.pool, &op.sc)
		return out, nil
	}
	if w := in[1]; !op.constW || op.packedFrom != &w[0] {
		if op.packed == nil {
			op.packed = make([]float32, op.l.wLen())
		}
		op.l.packTaps(w, op.packed)
		op.packedFrom = &w[0]
		op.pads.g.from = nil // remake the gathered layout from the new packing
	}
	op.pads.g.fixed = op.constW
	op.l.forwardFast(in[0], op.packed, in[2], y, n, op.act, op.pool, &op.pads, &op.sc)
	return out, nil
}

func (op *convOp) DiffWRT(int) []bool {
	return []bool{!op.pool && !op.dataInput, !op.pool, !op.pool}
}

func (op *convOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if op.pool {
		return nil, fmt.Errorf("%s: the pooled form is inference-only", op.name())
	}
	x, w := inputs[0], inputs[1]
	gz := grad
	if pg, ok := grad.Op().(*maxPoolGradOp); ok && pg.reluOf == op {
		// The pool's gradient already applied this layer's ReLU.
	} else if op.act != ActNone {
		var err error
		if gz, err = G.ApplyOp(&actGradOp{act: op.act}, output, grad); err != nil {
			return nil, err
		}
	}
	// A layer fed by training data needs no input gradient, and the tape
	// machine would compute one anyway. gorgonia takes a nil gradient for an
	// input nobody differentiates.
	var dx *G.Node
	if !op.dataInput {
		var err error
		if dx, err = G.ApplyOp(&convInputGradOp{l: op.l}, gz, w); err != nil {
			return nil, err
		}
	}
	dw, err := G.ApplyOp(&convFilterGradOp{l: op.l}, x, gz)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&biasGradOp{c: op.l.Cout}, gz)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw, db}, nil
}

// actGradOp maps (y, dy) to the gradient before a fused activation.
type actGradOp struct {
	opBase
	act  Activation
	dims int // rank of y; 0 is 4 (a convolution's)
}

func (op *actGradOp) Arity() int { return 2 }
func (op *actGradOp) Type() hm.Type {
	t := rankType(op.dims)
	return hm.NewFnType(t, t, t)
}
func (op *actGradOp) String() string {
	if op.dims == 0 {
		return "ActGrad:" + op.act.String()
	}
	return fmt.Sprintf("ActGrad%d:%s", op.dims, op.act)
}
func (op *actGradOp) Hashcode() uint32                  { return hashOf(op) }
func (op *actGradOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op *actGradOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *actGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%s: bad input shape", op)
	}
	return s.Clone(), nil
}
func (op *actGradOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 2)
	if err != nil {
		return nil, err
	}
	out, d := op.dest(prealloc, vs[0].Shape())
	y, dy := in[0], in[1]
	parallelFrom(len(y), parElems, func(_, lo, hi int) { actGrad(op.act, y[lo:hi], dy[lo:hi], d[lo:hi]) })
	return out, nil
}

type convInputGradOp struct {
	opBase
	l      layer
	sc     scratch
	pads   padBufs
	packed []float32
	zero   []float32 // the adjoint has no bias
}

func (op *convInputGradOp) Arity() int            { return 2 }
func (op *convInputGradOp) Type() hm.Type         { return hm.NewFnType(t4, t4, t4) }
func (op *convInputGradOp) String() string        { return fmt.Sprintf("ConvInputGrad%+v", op.l) }
func (op *convInputGradOp) Hashcode() uint32      { return hashOf(op) }
func (op *convInputGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *convInputGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok || len(s) != 4 {
		return nil, fmt.Errorf("%s: bad input shape", op)
	}
	return tensor.Shape{s[0], op.l.Cin, op.l.H, op.l.W}, nil
}
func (op *convInputGradOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *convInputGradOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 2)
	if err != nil {
		return nil, err
	}
	n := batchOf(vs[0])
	out, dx := op.dest(prealloc, tensor.Shape{n, op.l.Cin, op.l.H, op.l.W})
	if op.l.kind == kindConvT && op.l.fastGrad() {
		if op.packed == nil {
			op.packed = make([]float32, op.l.wLen())
		}
		op.l.packTapsT(in[1], op.packed)
		op.l.inputGradFastT(in[0], op.packed, dx, n, &op.sc)
		return out, nil
	}
	if adj, ok := op.l.adjoint(); ok {
		if op.packed == nil {
			op.packed = make([]float32, op.l.wLen())
		}
		op.l.packAdjoint(in[1], op.packed)
		if op.zero == nil {
			op.zero = make([]float32, op.l.Cin)
		}
		adj.forwardFast(in[0], op.packed, op.zero, dx, n, ActNone, false, &op.pads, &op.sc)
		return out, nil
	}
	op.l.inputGrad(in[0], in[1], dx, n, &op.sc)
	return out, nil
}

type convFilterGradOp struct {
	opBase
	l           layer
	pads        padBufs
	cols, parts scratch
}

func (op *convFilterGradOp) Arity() int            { return 2 }
func (op *convFilterGradOp) Type() hm.Type         { return hm.NewFnType(t4, t4, t4) }
func (op *convFilterGradOp) String() string        { return fmt.Sprintf("ConvFilterGrad%+v", op.l) }
func (op *convFilterGradOp) Hashcode() uint32      { return hashOf(op) }
func (op *convFilterGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *convFilterGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape(op.l.wShape()), nil
}
func (op *convFilterGradOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *convFilterGradOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 2)
	if err != nil {
		return nil, err
	}
	out, dw := op.dest(prealloc, tensor.Shape(op.l.wShape()))
	if op.l.fastGrad() {
		op.l.filterGradFast(in[0], in[1], dw, batchOf(vs[0]), &op.pads, &op.cols, &op.parts)
		return out, nil
	}
	op.l.filterGrad(in[0], in[1], dw, batchOf(vs[0]), &op.cols, &op.parts)
	return out, nil
}

type biasGradOp struct {
	opBase
	c int
}

func (op *biasGradOp) Arity() int            { return 1 }
func (op *biasGradOp) Type() hm.Type         { return hm.NewFnType(t4, t1) }
func (op *biasGradOp) String() string        { return fmt.Sprintf("BiasGrad{%d}", op.c) }
func (op *biasGradOp) Hashcode() uint32      { return hashOf(op) }
func (op *biasGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *biasGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.c}, nil
}
func (op *biasGradOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *biasGradOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 1)
	if err != nil {
		return nil, err
	}
	s := vs[0].Shape()
	out, db := op.dest(prealloc, tensor.Shape{op.c})
	gz, n, hw := in[0], s[0], s[2]*s[3]
	if len(gz) < parElems {
		biasGrad(gz, db, n, op.c, hw)
		return out, nil
	}
	parallel(op.c, workers(op.c), func(_, lo, hi int) { biasGradChannels(gz, db, n, op.c, hw, lo, hi) })
	return out, nil
}

// ---- 2×2 max pooling ----

// maxPoolOp is the training graph's 2×2 max pool. afterReLU says its
// input is a ReLU convolution's output (≥ +0, no NaN: vec's ReLU makes NaN
// +0), where relu(max + 0) is max to the bit, so the epilogues' vector
// pooling kernel serves.
type maxPoolOp struct {
	opBase
	afterReLU bool
}

func (op *maxPoolOp) Arity() int            { return 1 }
func (op *maxPoolOp) Type() hm.Type         { return hm.NewFnType(t4, t4) }
func (op *maxPoolOp) String() string        { return "MaxPool2x2" }
func (op *maxPoolOp) Hashcode() uint32      { return hashOf(op) }
func (op *maxPoolOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *maxPoolOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok || len(s) != 4 || s[2]%2 != 0 || s[3]%2 != 0 {
		return nil, fmt.Errorf("%s: input shape %v, want 4-d with even H and W", op, in[0])
	}
	return tensor.Shape{s[0], s[1], s[2] / 2, s[3] / 2}, nil
}
func (op *maxPoolOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *maxPoolOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 1)
	if err != nil {
		return nil, err
	}
	s := vs[0].Shape()
	out, y := op.dest(prealloc, tensor.Shape{s[0], s[1], s[2] / 2, s[3] / 2})
	x, planes, h, w := in[0], s[0]*s[1], s[2], s[3]
	parallelFrom(planes, parElems/(h*w), func(_, lo, hi int) {
		if op.afterReLU { // the planes' row pairs follow one another: one call
			vec.PoolAddReLURows(y[lo*h*w/4:hi*h*w/4], x[lo*h*w:hi*h*w], (hi-lo)*h/2, w/2, w/2, w, 0)
			return
		}
		maxPool2(x[lo*h*w:hi*h*w], y[lo*h*w/4:hi*h*w/4], hi-lo, h, w)
	})
	return out, nil
}
func (op *maxPoolOp) DiffWRT(int) []bool { return []bool{true} }
func (op *maxPoolOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	pg := &maxPoolGradOp{}
	if c, ok := inputs[0].Op().(*convOp); ok && c.act == ActReLU && !c.pool {
		// Pooling a ReLU convolution: fold the ReLU's gradient into the
		// pool's, and the convolution skips its own activation gradient (a
		// whole pass over the unpooled maps).
		pg.reluOf = c
	}
	dx, err := G.ApplyOp(pg, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// maxPoolGradOp routes the pooled gradient to each window's maximum. With
// reluOf, x is that convolution's ReLU output and the gradient is routed
// only where the maximum is positive: the ReLU's gradient too, which the
// convolution then leaves out (see convOp.SymDiff).
type maxPoolGradOp struct {
	opBase
	reluOf *convOp
}

func (op *maxPoolGradOp) Arity() int    { return 2 }
func (op *maxPoolGradOp) Type() hm.Type { return hm.NewFnType(t4, t4, t4) }
func (op *maxPoolGradOp) String() string {
	if op.reluOf != nil {
		return "MaxPool2x2Grad+ReLU"
	}
	return "MaxPool2x2Grad"
}
func (op *maxPoolGradOp) Hashcode() uint32      { return hashOf(op) }
func (op *maxPoolGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *maxPoolGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%s: bad input shape", op)
	}
	return s.Clone(), nil
}
func (op *maxPoolGradOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *maxPoolGradOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 2)
	if err != nil {
		return nil, err
	}
	s := vs[0].Shape()
	out, dx := op.dest(prealloc, s)
	x, dy, planes, h, w := in[0], in[1], s[0]*s[1], s[2], s[3]
	parallelFrom(planes, parElems/(h*w), func(_, lo, hi int) {
		vec.MaxPool2Grad(x[lo*h*w:hi*h*w], dy[lo*h*w/4:hi*h*w/4], dx[lo*h*w:hi*h*w], (hi-lo)*h/2, w/2, op.reluOf != nil)
	})
	return out, nil
}

// ---- mean binary cross-entropy on logits ----

// bceOp is mean(BCE(sigmoid(z), t)) computed from logits z, so training
// never takes log(0) however saturated the sigmoid is.
type bceOp struct {
	opBase
	dims int // rank of z and t; 0 is 4
}

func (op *bceOp) Arity() int { return 2 }
func (op *bceOp) Type() hm.Type {
	t := rankType(op.dims)
	return hm.NewFnType(t, t, scal)
}
func (op *bceOp) String() string        { return "BCEWithLogits" }
func (op *bceOp) Hashcode() uint32      { return hashOf(op) }
func (op *bceOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *bceOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}
func (op *bceOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 2)
	if err != nil {
		return nil, err
	}
	if len(in[0]) != len(in[1]) {
		return nil, fmt.Errorf("%s: %d logits, %d targets", op, len(in[0]), len(in[1]))
	}
	z, t := in[0], in[1]
	p := 1
	if len(z) >= parElems {
		p = workers(len(z))
	}
	parts := make([]float64, trainChunks)
	parallelChunks(len(z), trainChunks, p, func(_, c, lo, hi int) { parts[c] = bceLogits(z[lo:hi], t[lo:hi]) })
	var sum float64
	for _, v := range parts { // in piece order: reproducible
		sum += v
	}
	return G.NewF32(float32(sum / float64(len(z)))), nil
}
func (op *bceOp) DiffWRT(int) []bool { return []bool{true, false} }
func (op *bceOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dz, err := G.ApplyOp(&bceGradOp{dims: op.dims}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dz, nil}, nil
}

type bceGradOp struct {
	opBase
	dims int
}

func (op *bceGradOp) Arity() int { return 3 }
func (op *bceGradOp) Type() hm.Type {
	t := rankType(op.dims)
	return hm.NewFnType(t, t, scal, t)
}
func (op *bceGradOp) String() string        { return "BCEWithLogitsGrad" }
func (op *bceGradOp) Hashcode() uint32      { return hashOf(op) }
func (op *bceGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *bceGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%s: bad input shape", op)
	}
	return s.Clone(), nil
}
func (op *bceGradOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *bceGradOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 3)
	if err != nil {
		return nil, err
	}
	out, dz := op.dest(prealloc, vs[0].Shape())
	z, t, scale := in[0], in[1], in[2][0]/float32(len(in[0]))
	parallelFrom(len(z), parElems, func(_, lo, hi int) { bceLogitsGrad(z[lo:hi], t[lo:hi], dz[lo:hi], scale) })
	return out, nil
}

// Graph-building helpers.

func conv(op *convOp, x, w, b *G.Node) (*G.Node, error) {
	return G.ApplyOp(op, x, w, b)
}

func maxPool(x *G.Node) (*G.Node, error) {
	c, ok := x.Op().(*convOp)
	return G.ApplyOp(&maxPoolOp{afterReLU: ok && c.act == ActReLU && !c.pool}, x)
}

// bceWithLogits adds mean binary cross-entropy between sigmoid(z) and t.
func bceWithLogits(z, t *G.Node) (*G.Node, error) {
	op := &bceOp{}
	if d := z.Dims(); d != 4 {
		op.dims = d
	}
	return G.ApplyOp(op, z, t)
}
