package model

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Loss terms beyond the reconstruction's BCE (ops.go): the classifier's
// cross-entropy and the penalties on an autoencoder's code. Each is a
// scalar op with its own gradient op, checked numerically in the tests like
// the layers.

// lossOp is the part every scalar loss op shares: inputs of fixed ranks, a
// scalar out, and a name that is also its hash.
type lossOp struct {
	opBase
	name  string
	ranks []int
}

func (op *lossOp) Arity() int { return len(op.ranks) }
func (op *lossOp) Type() hm.Type {
	ts := make([]hm.Type, 0, len(op.ranks)+1)
	for _, r := range op.ranks {
		ts = append(ts, tensorType(r))
	}
	return hm.NewFnType(append(ts, scal)...)
}
func (op *lossOp) String() string                                 { return op.name }
func (op *lossOp) Hashcode() uint32                               { return hashOf(op) }
func (op *lossOp) WriteHash(h hash.Hash)                          { fmt.Fprint(h, op.String()) }
func (op *lossOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }

// gradOp is the gradient op of a loss term: it maps the term's inputs and
// the scalar gradient to the gradient of input `of`, in that input's shape.
type gradOp struct {
	opBase
	name  string
	ranks []int // of the loss's inputs
	of    int
	shape tensor.Shape
	fn    func(in [][]float32, n int, g float32, dst []float32)
}

func (op *gradOp) Arity() int { return len(op.ranks) + 1 }
func (op *gradOp) Type() hm.Type {
	ts := make([]hm.Type, 0, len(op.ranks)+2)
	for _, r := range op.ranks {
		ts = append(ts, tensorType(r))
	}
	return hm.NewFnType(append(ts, scal, tensorType(op.ranks[op.of]))...)
}
func (op *gradOp) String() string        { return fmt.Sprintf("%sGrad%d%v", op.name, op.of, op.shape) }
func (op *gradOp) Hashcode() uint32      { return hashOf(op) }
func (op *gradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *gradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}
func (op *gradOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *gradOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, len(op.ranks)+1)
	if err != nil {
		return nil, err
	}
	s := vs[op.of].Shape().Clone()
	out, dst := op.dest(prealloc, s)
	op.fn(in[:len(op.ranks)], batchOf(vs[0]), in[len(op.ranks)][0], dst)
	return out, nil
}

// ---- softmax cross-entropy on logits ----

// softmaxCEOp is the mean over items of −Σ_k t_k·log softmax(z)_k, from
// logits z [N, K] and targets t [N, K] (one-hot, or any distribution).
type softmaxCEOp struct{ lossOp }

func newSoftmaxCE() *softmaxCEOp {
	return &softmaxCEOp{lossOp{name: "SoftmaxCrossEntropy", ranks: []int{2, 2}}}
}

func (op *softmaxCEOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 2)
	if err != nil {
		return nil, err
	}
	n := batchOf(vs[0])
	if len(in[0]) != len(in[1]) || n == 0 {
		return nil, fmt.Errorf("%s: %d logits, %d targets", op, len(in[0]), len(in[1]))
	}
	return G.NewF32(float32(softmaxCE(in[0], in[1], n) / float64(n))), nil
}

// softmaxCE sums the cross-entropy over n items, with log-sum-exp taken
// from each row's largest logit.
func softmaxCE(z, t []float32, n int) float64 {
	k := len(z) / n
	var s float64
	for i := 0; i < n; i++ {
		zr, tr := z[i*k:(i+1)*k], t[i*k:(i+1)*k]
		m := float64(zr[0])
		for _, v := range zr[1:] {
			m = math.Max(m, float64(v))
		}
		var se float64
		for _, v := range zr {
			se += math.Exp(float64(v) - m)
		}
		lse := m + math.Log(se)
		for j, v := range zr {
			s -= float64(tr[j]) * (float64(v) - lse)
		}
	}
	return s
}

func (op *softmaxCEOp) DiffWRT(int) []bool { return []bool{true, false} }
func (op *softmaxCEOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dz, err := G.ApplyOp(&gradOp{name: op.name, ranks: op.ranks, of: 0, shape: inputs[0].Shape().Clone(),
		fn: func(in [][]float32, n int, g float32, dst []float32) {
			// (softmax(z) − t·Σt) / N; Σt is 1 for a distribution.
			k := len(in[0]) / n
			for i := 0; i < n; i++ {
				row := dst[i*k : (i+1)*k]
				copy(row, in[0][i*k:(i+1)*k])
				softmax(row)
				var ts float32
				for _, v := range in[1][i*k : (i+1)*k] {
					ts += v
				}
				for j := range row {
					row[j] = g * (row[j]*ts - in[1][i*k+j]) / float32(n)
				}
			}
		}}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dz, nil}, nil
}

// ---- KL sparsity on a sigmoid code ----

// klSparsityOp is scale·Σ_j KL(ρ ‖ ρ̂_j) for a code h [N, H] of sigmoid
// units, where ρ̂_j is unit j's mean activation over the batch: the classic
// sparse autoencoder's penalty, which pushes every unit's average towards
// ρ without letting any unit die (a dead unit's KL is large).
type klSparsityOp struct {
	lossOp
	rho, scale float64
}

func newKLSparsity(rho, scale float64) *klSparsityOp {
	return &klSparsityOp{lossOp{name: fmt.Sprintf("KLSparsity{ρ=%g,×%g}", rho, scale), ranks: []int{2}}, rho, scale}
}

// klMeans returns each unit's mean activation, clamped away from 0 and 1 so
// that the logarithms stay finite.
func klMeans(h []float32, n int) []float64 {
	k := len(h) / n
	m := make([]float64, k)
	for i := 0; i < n; i++ {
		for j, v := range h[i*k : (i+1)*k] {
			m[j] += float64(v)
		}
	}
	for j := range m {
		m[j] = math.Min(math.Max(m[j]/float64(n), 1e-6), 1-1e-6)
	}
	return m
}

func (op *klSparsityOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 1)
	if err != nil {
		return nil, err
	}
	var s float64
	for _, p := range klMeans(in[0], batchOf(vs[0])) {
		s += op.rho*math.Log(op.rho/p) + (1-op.rho)*math.Log((1-op.rho)/(1-p))
	}
	return G.NewF32(float32(op.scale * s)), nil
}

func (op *klSparsityOp) DiffWRT(int) []bool { return []bool{true} }
func (op *klSparsityOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	rho, scale := op.rho, op.scale
	dh, err := G.ApplyOp(&gradOp{name: op.name, ranks: op.ranks, of: 0, shape: inputs[0].Shape().Clone(),
		fn: func(in [][]float32, n int, g float32, dst []float32) {
			m := klMeans(in[0], n)
			k := len(m)
			for j, p := range m {
				d := float32(float64(g) * scale * (-rho/p + (1-rho)/(1-p)) / float64(n))
				for i := 0; i < n; i++ {
					dst[i*k+j] = d
				}
			}
		}}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dh}, nil
}

// ---- L1 activity on the code ----

// l1Op is scale·mean over items of Σ_j |h_j|.
type l1Op struct {
	lossOp
	scale float64
}

func newL1(scale float64) *l1Op {
	return &l1Op{lossOp{name: fmt.Sprintf("L1{×%g}", scale), ranks: []int{2}}, scale}
}

func (op *l1Op) Do(vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 1)
	if err != nil {
		return nil, err
	}
	var s float64
	for _, v := range in[0] {
		s += math.Abs(float64(v))
	}
	return G.NewF32(float32(op.scale * s / float64(batchOf(vs[0])))), nil
}

func (op *l1Op) DiffWRT(int) []bool { return []bool{true} }
func (op *l1Op) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	scale := op.scale
	dh, err := G.ApplyOp(&gradOp{name: op.name, ranks: op.ranks, of: 0, shape: inputs[0].Shape().Clone(),
		fn: func(in [][]float32, n int, g float32, dst []float32) {
			c := float32(float64(g) * scale / float64(n))
			for i, v := range in[0] {
				switch {
				case v > 0:
					dst[i] = c
				case v < 0:
					dst[i] = -c
				default:
					dst[i] = 0
				}
			}
		}}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dh}, nil
}

// ---- the contractive penalty ----

// contractiveOp is scale·mean over items of ‖J‖²_F, the squared Frobenius
// norm of the Jacobian of a sigmoid layer h = σ(W·x + b) with respect to
// its input x, in closed form: Σ_j (h_j(1−h_j))² · Σ_i W_ji². Inputs: the
// layer's output h [N, H] and its weights W [H, In].
type contractiveOp struct {
	lossOp
	scale float64
}

func newContractive(scale float64) *contractiveOp {
	return &contractiveOp{lossOp{name: fmt.Sprintf("Contractive{×%g}", scale), ranks: []int{2, 2}}, scale}
}

// rowNorms2 returns Σ_i W_ji² for each row j of W, which holds k rows.
func rowNorms2(w []float32, k int) []float64 {
	in := len(w) / k
	s := make([]float64, k)
	for j := range s {
		for _, v := range w[j*in : (j+1)*in] {
			s[j] += float64(v) * float64(v)
		}
	}
	return s
}

// JacobianNorm2 is ‖J‖²_F of a sigmoid layer for one item's outputs h,
// given its weights' squared row norms (see contractiveOp).
func jacobianNorm2(h []float32, rows []float64) float64 {
	var s float64
	for j, v := range h {
		d := float64(v) * (1 - float64(v))
		s += d * d * rows[j]
	}
	return s
}

func (op *contractiveOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 2)
	if err != nil {
		return nil, err
	}
	n := batchOf(vs[0])
	k := len(in[0]) / n
	rows := rowNorms2(in[1], k)
	var s float64
	for i := 0; i < n; i++ {
		s += jacobianNorm2(in[0][i*k:(i+1)*k], rows)
	}
	return G.NewF32(float32(op.scale * s / float64(n))), nil
}

func (op *contractiveOp) DiffWRT(int) []bool { return []bool{true, true} }
func (op *contractiveOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	scale := op.scale
	dh, err := G.ApplyOp(&gradOp{name: op.name, ranks: op.ranks, of: 0, shape: inputs[0].Shape().Clone(),
		fn: func(in [][]float32, n int, g float32, dst []float32) {
			k := len(in[0]) / n
			rows := rowNorms2(in[1], k)
			c := float64(g) * scale / float64(n)
			for i, v := range in[0] {
				h := float64(v)
				// d/dh (h(1−h))² = 2·h(1−h)·(1−2h)
				dst[i] = float32(c * 2 * h * (1 - h) * (1 - 2*h) * rows[i%k])
			}
		}}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(&gradOp{name: op.name, ranks: op.ranks, of: 1, shape: inputs[1].Shape().Clone(),
		fn: func(in [][]float32, n int, g float32, dst []float32) {
			k := len(in[0]) / n
			d2 := make([]float64, k) // Σ over items of (h(1−h))² per unit
			for i, v := range in[0] {
				d := float64(v) * (1 - float64(v))
				d2[i%k] += d * d
			}
			c := float64(g) * scale / float64(n)
			cols := len(in[1]) / k
			for j := 0; j < k; j++ {
				for i, w := range in[1][j*cols : (j+1)*cols] {
					dst[j*cols+i] = float32(c * 2 * float64(w) * d2[j])
				}
			}
		}}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dh, dw}, nil
}
