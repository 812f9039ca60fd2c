package model

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// planesOp views a dense layer's output [N, C·H·W] as planes [N, C, H, W]
// for the convolution after it. gorgonia's Reshape fixes the batch size when
// the graph is built; this keeps it from the input, as the other ops do, so
// that a graph built for one batch runs a smaller last batch.
type planesOp struct {
	opBase
	c, h, w int
}

func (op *planesOp) Arity() int            { return 1 }
func (op *planesOp) Type() hm.Type         { return hm.NewFnType(tensorType(2), t4) }
func (op *planesOp) String() string        { return fmt.Sprintf("Planes{%d,%d,%d}", op.c, op.h, op.w) }
func (op *planesOp) Hashcode() uint32      { return hashOf(op) }
func (op *planesOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *planesOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok || len(s) != 2 || s[1] != op.c*op.h*op.w {
		return nil, fmt.Errorf("%s: input shape %v, want [N, %d]", op, in[0], op.c*op.h*op.w)
	}
	return tensor.Shape{s[0], op.c, op.h, op.w}, nil
}
func (op *planesOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *planesOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 1)
	if err != nil {
		return nil, err
	}
	out, y := op.dest(prealloc, tensor.Shape{batchOf(vs[0]), op.c, op.h, op.w})
	copy(y, in[0])
	return out, nil
}
func (op *planesOp) DiffWRT(int) []bool { return []bool{true} }
func (op *planesOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&flatOp{n: op.c * op.h * op.w}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// flatOp is planesOp's inverse, its gradient: [N, C, H, W] to [N, C·H·W].
type flatOp struct {
	opBase
	n int
}

func (op *flatOp) Arity() int            { return 1 }
func (op *flatOp) Type() hm.Type         { return hm.NewFnType(t4, tensorType(2)) }
func (op *flatOp) String() string        { return fmt.Sprintf("Flat{%d}", op.n) }
func (op *flatOp) Hashcode() uint32      { return hashOf(op) }
func (op *flatOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *flatOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok || len(s) != 4 || s[1]*s[2]*s[3] != op.n {
		return nil, fmt.Errorf("%s: input shape %v", op, in[0])
	}
	return tensor.Shape{s[0], op.n}, nil
}
func (op *flatOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *flatOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 1)
	if err != nil {
		return nil, err
	}
	out, y := op.dest(prealloc, tensor.Shape{batchOf(vs[0]), op.n})
	copy(y, in[0])
	return out, nil
}
