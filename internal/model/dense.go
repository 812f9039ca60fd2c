package model

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/aeserve/aeserve/internal/vec"
)

// dense is a fully connected layer's geometry: In inputs per item (whatever
// the input's shape: a convolution's [C,H,W] output is taken as C·H·W
// values, so no flatten op is needed), Out outputs. Its weights are
// [Out, In], as PyTorch stores them.
type dense struct{ In, Out int }

func (d dense) wShape() []int { return []int{d.Out, d.In} }

// denseForward computes y = act(x·Wᵀ + b) for n items.
func denseForward(d dense, x, w, b, y []float32, n int, act Activation) {
	wt := make([]float32, len(w))
	transpose(w, wt, d.Out, d.In)
	denseForwardT(d, x, wt, b, y, n, act)
}

// denseForwardT is denseForward from the transposed weights wt [In, Out]:
// an untransposed product, which takes the fast SGEMM kernel (internal/vec)
// and allocates nothing.
func denseForwardT(d dense, x, wt, b, y []float32, n int, act Activation) {
	sgemm(false, false, n, d.Out, d.In, x, d.In, wt, d.Out, 0, y, d.Out)
	for i := 0; i < n; i++ {
		rowAct(y[i*d.Out:(i+1)*d.Out], b, act)
	}
}

// transpose writes the rows×cols matrix src into dst as cols×rows.
func transpose(src, dst []float32, rows, cols int) {
	for r := 0; r < rows; r++ {
		for c, v := range src[r*cols : (r+1)*cols] {
			dst[c*rows+r] = v
		}
	}
}

// rowAct adds the bias vector to one item's outputs and applies act; the
// softmax is over the whole row.
func rowAct(row, b []float32, act Activation) {
	switch act {
	case ActReLU:
		for j, v := range row {
			row[j] = max(v+b[j], 0)
		}
	case ActSigmoid:
		for j := range row {
			row[j] += b[j]
		}
		vec.AddSigmoid(row, row, 0) // + 0 changes nothing σ sees: σ(−0) = σ(+0)
	case ActSoftmax:
		for j := range row {
			row[j] += b[j]
		}
		softmax(row)
	default:
		for j := range row {
			row[j] += b[j]
		}
	}
}

// softmax replaces row by its softmax, computed in float64 from the largest
// value down so that no exp overflows.
func softmax(row []float32) {
	m := row[0]
	for _, v := range row[1:] {
		m = max(m, v)
	}
	var s float64
	for j, v := range row {
		e := math.Exp(float64(v - m))
		row[j] = float32(e)
		s += e
	}
	for j := range row {
		row[j] = float32(float64(row[j]) / s)
	}
}

// denseOp computes act(x·Wᵀ + b) for x [N, …] holding In values per item,
// W [Out, In] and b [Out], giving [N, Out]. ActSoftmax is for inference
// only: training ends in logits and a loss that takes them.
type denseOp struct {
	opBase
	d         dense
	inDims    int // rank of x, for the op's type
	act       Activation
	dataInput bool // x is the graph's data: skip its gradient
	// The weights transposed for the fast path. constW (inference graphs)
	// transposes once; training does it every run, as Adam updates in place.
	constW     bool
	wt         []float32
	packedFrom *float32
}

func tensorType(dims int) G.TensorType { return G.TensorType{Dims: dims, Of: tvA} }

// rankType is the type of a tensor of rank dims, where 0 means 4: the ops
// written for convolutions first take their rank as an option.
func rankType(dims int) G.TensorType {
	if dims == 0 {
		dims = 4
	}
	return tensorType(dims)
}

func (op *denseOp) Arity() int { return 3 }
func (op *denseOp) Type() hm.Type {
	return hm.NewFnType(tensorType(op.inDims), tensorType(2), t1, tensorType(2))
}
func (op *denseOp) String() string        { return fmt.Sprintf("Dense{%d→%d}%s", op.d.In, op.d.Out, op.act) }
func (op *denseOp) Hashcode() uint32      { return hashOf(op) }
func (op *denseOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *denseOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok || len(s) < 2 || s.TotalSize() != s[0]*op.d.In {
		return nil, fmt.Errorf("%s: input shape %v, want [N, …] holding %d values per item", op, in[0], op.d.In)
	}
	return tensor.Shape{s[0], op.d.Out}, nil
}
func (op *denseOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *denseOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 3)
	if err != nil {
		return nil, err
	}
	n := batchOf(vs[0])
	if len(in[0]) != n*op.d.In || len(in[1]) != op.d.In*op.d.Out || len(in[2]) != op.d.Out {
		return nil, fmt.Errorf("%s: input sizes %d/%d/%d do not match the layer", op, len(in[0]), len(in[1]), len(in[2]))
	}
	out, y := op.dest(prealloc, tensor.Shape{n, op.d.Out})
	if w := in[1]; !op.constW || op.packedFrom != &w[0] {
		if op.wt == nil {
			op.wt = make([]float32, len(w))
		}
		transpose(w, op.wt, op.d.Out, op.d.In)
		op.packedFrom = &w[0]
	}
	if op.constW { // inference: the runner shares out the batches
		denseForwardT(op.d, in[0], op.wt, in[2], y, n, op.act)
		return out, nil
	}
	x, wt, b, d := in[0], op.wt, in[2], op.d
	splitRows(n, n*d.In*d.Out, func(lo, hi int) {
		denseForwardT(d, x[lo*d.In:hi*d.In], wt, b, y[lo*d.Out:hi*d.Out], hi-lo, op.act)
	})
	return out, nil
}

// splitRows runs fn over rows [0,n) shared out across the cores, when the
// product (work multiply-adds) pays for the hand-off. The training graph's
// dense products were one GEMM on one core each; each worker computes its
// own rows of the product.
func splitRows(n, work int, fn func(lo, hi int)) {
	p := 1
	if work >= 1<<17 {
		p = workers(n)
	}
	parallelChunks(n, p*trainChunks/2, p, func(_, _, lo, hi int) { fn(lo, hi) })
}
func (op *denseOp) DiffWRT(int) []bool { return []bool{!op.dataInput, true, true} }
func (op *denseOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if op.act == ActSoftmax {
		return nil, fmt.Errorf("%s: the softmax form is inference-only", op)
	}
	x, w := inputs[0], inputs[1]
	gz := grad
	if op.act != ActNone {
		var err error
		if gz, err = G.ApplyOp(&actGradOp{act: op.act, dims: 2}, output, grad); err != nil {
			return nil, err
		}
	}
	var dx *G.Node
	if !op.dataInput {
		var err error
		if dx, err = G.ApplyOp(&denseInputGradOp{d: op.d, xShape: x.Shape().Clone()}, gz, w); err != nil {
			return nil, err
		}
	}
	dw, err := G.ApplyOp(&denseWeightGradOp{d: op.d, inDims: op.inDims}, x, gz)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&denseBiasGradOp{d: op.d}, gz)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw, db}, nil
}

// denseInputGradOp computes dx = gz·W in x's shape.
type denseInputGradOp struct {
	opBase
	d      dense
	xShape tensor.Shape
}

func (op *denseInputGradOp) Arity() int { return 2 }
func (op *denseInputGradOp) Type() hm.Type {
	return hm.NewFnType(tensorType(2), tensorType(2), tensorType(len(op.xShape)))
}
func (op *denseInputGradOp) String() string {
	return fmt.Sprintf("DenseInputGrad{%d→%d}%v", op.d.In, op.d.Out, op.xShape)
}
func (op *denseInputGradOp) Hashcode() uint32      { return hashOf(op) }
func (op *denseInputGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *denseInputGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.xShape.Clone(), nil
}
func (op *denseInputGradOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *denseInputGradOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 2)
	if err != nil {
		return nil, err
	}
	n := batchOf(vs[0])
	s := op.xShape.Clone()
	s[0] = n
	out, dx := op.dest(prealloc, s)
	gz, w, d := in[0], in[1], op.d
	splitRows(n, n*d.In*d.Out, func(lo, hi int) {
		sgemm(false, false, hi-lo, d.In, d.Out, gz[lo*d.Out:], d.Out, w, d.In, 0, dx[lo*d.In:], d.In)
	})
	return out, nil
}

// denseWeightGradOp computes dW = gzᵀ·x.
type denseWeightGradOp struct {
	opBase
	d      dense
	inDims int
}

func (op *denseWeightGradOp) Arity() int { return 2 }
func (op *denseWeightGradOp) Type() hm.Type {
	return hm.NewFnType(tensorType(op.inDims), tensorType(2), tensorType(2))
}
func (op *denseWeightGradOp) String() string {
	return fmt.Sprintf("DenseWeightGrad{%d→%d}", op.d.In, op.d.Out)
}
func (op *denseWeightGradOp) Hashcode() uint32      { return hashOf(op) }
func (op *denseWeightGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *denseWeightGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape(op.d.wShape()), nil
}
func (op *denseWeightGradOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *denseWeightGradOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 2)
	if err != nil {
		return nil, err
	}
	n := batchOf(vs[0])
	out, dw := op.dest(prealloc, tensor.Shape(op.d.wShape()))
	x, gz, d := in[0], in[1], op.d
	// Rows of dW: output units, columns of gz.
	splitRows(d.Out, n*d.In*d.Out, func(lo, hi int) {
		sgemm(true, false, hi-lo, d.In, n, gz[lo:], d.Out, x, d.In, 0, dw[lo*d.In:], d.In)
	})
	return out, nil
}

// denseBiasGradOp sums gz over the batch.
type denseBiasGradOp struct {
	opBase
	d dense
}

func (op *denseBiasGradOp) Arity() int            { return 1 }
func (op *denseBiasGradOp) Type() hm.Type         { return hm.NewFnType(tensorType(2), t1) }
func (op *denseBiasGradOp) String() string        { return fmt.Sprintf("DenseBiasGrad{%d}", op.d.Out) }
func (op *denseBiasGradOp) Hashcode() uint32      { return hashOf(op) }
func (op *denseBiasGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *denseBiasGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.d.Out}, nil
}
func (op *denseBiasGradOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *denseBiasGradOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 1)
	if err != nil {
		return nil, err
	}
	n := batchOf(vs[0])
	out, db := op.dest(prealloc, tensor.Shape{op.d.Out})
	clear(db)
	for i := 0; i < n; i++ {
		for j, v := range in[0][i*op.d.Out : (i+1)*op.d.Out] {
			db[j] += v
		}
	}
	return out, nil
}
