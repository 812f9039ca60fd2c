package model

import (
	"fmt"
	"hash"
	"math"
	"math/rand"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// A Gaussian code (Arch.Gaussian): the encoder's last layer computes, per
// item, the mean μ and the log-variance log σ² of a diagonal Gaussian
// q(z|x), side by side in one row [μ ‖ log σ²] of 2×L numbers. These ops
// turn that row into what each graph needs: the mean alone for inference
// (meanOp), a sample z = μ + ε·σ for training (stdNormalOp draws ε,
// reparamOp adds it so that the gradient reaches μ and log σ²), and the
// KL divergence from the prior N(0, I) as a loss term (klPriorOp).

const gaussianRank = 2 // a Gaussian code is dense: [N, 2L]

// halfOf returns L of a posterior tensor of shape [N, 2L].
func halfOf(s tensor.Shape, what string) (int, error) {
	if len(s) != gaussianRank || s[1]%2 != 0 {
		return 0, fmt.Errorf("%s: input shape %v, want [N, 2L] (mean ‖ log-variance)", what, s)
	}
	return s[1] / 2, nil
}

// ---- the mean, for inference ----

// meanOp keeps the first half of each row of [N, 2L]: the posterior's mean,
// which is what an inference graph serves as the latent and decodes.
type meanOp struct{ opBase }

func (op *meanOp) Arity() int            { return 1 }
func (op *meanOp) Type() hm.Type         { return hm.NewFnType(tensorType(2), tensorType(2)) }
func (op *meanOp) String() string        { return "GaussianMean" }
func (op *meanOp) Hashcode() uint32      { return hashOf(op) }
func (op *meanOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *meanOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%s: bad input shape", op)
	}
	l, err := halfOf(s, op.String())
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0], l}, nil
}
func (op *meanOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *meanOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 1)
	if err != nil {
		return nil, err
	}
	n := batchOf(vs[0])
	l, err := halfOf(vs[0].Shape(), op.String())
	if err != nil {
		return nil, err
	}
	out, y := op.dest(prealloc, tensor.Shape{n, l})
	for i := 0; i < n; i++ {
		copy(y[i*l:(i+1)*l], in[0][i*2*l:i*2*l+l])
	}
	return out, nil
}

// ---- ε ~ N(0, I), for training ----

// stdNormalOp draws ε [N, L] from N(0, 1), afresh on every run, from its
// own seeded source: a training step's noise, reproducible from the seed.
// Its input, the posterior [N, 2L], gives only the shape; ε carries no
// gradient back to it (that is the point of the reparameterisation).
type stdNormalOp struct {
	opBase
	rng *rand.Rand
}

func newStdNormal(seed int64) *stdNormalOp {
	return &stdNormalOp{rng: rand.New(rand.NewSource(seed))}
}

func (op *stdNormalOp) Arity() int            { return 1 }
func (op *stdNormalOp) Type() hm.Type         { return hm.NewFnType(tensorType(2), tensorType(2)) }
func (op *stdNormalOp) String() string        { return "StdNormal" }
func (op *stdNormalOp) Hashcode() uint32      { return hashOf(op) }
func (op *stdNormalOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *stdNormalOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return (&meanOp{}).InferShape(in...)
}
func (op *stdNormalOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *stdNormalOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	if len(vs) != 1 {
		return nil, fmt.Errorf("%s: want 1 input, got %d", op, len(vs))
	}
	l, err := halfOf(vs[0].Shape(), op.String())
	if err != nil {
		return nil, err
	}
	out, eps := op.dest(prealloc, tensor.Shape{batchOf(vs[0]), l})
	for i := range eps {
		eps[i] = float32(op.rng.NormFloat64())
	}
	return out, nil
}
func (op *stdNormalOp) DiffWRT(int) []bool { return []bool{false} }
func (op *stdNormalOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("%s has no gradient", op) // never asked: DiffWRT is false
}

// ---- z = μ + ε·exp(½·log σ²) ----

// reparamOp samples the code from posterior p [N, 2L] and noise ε [N, L]
// as z = μ + ε·exp(½·log σ²), a differentiable function of μ and log σ²
// (Kingma and Welling's reparameterisation trick).
type reparamOp struct{ opBase }

func (op *reparamOp) Arity() int { return 2 }
func (op *reparamOp) Type() hm.Type {
	return hm.NewFnType(tensorType(2), tensorType(2), tensorType(2))
}
func (op *reparamOp) String() string        { return "Reparameterise" }
func (op *reparamOp) Hashcode() uint32      { return hashOf(op) }
func (op *reparamOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *reparamOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return (&meanOp{}).InferShape(in[0])
}
func (op *reparamOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *reparamOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 2)
	if err != nil {
		return nil, err
	}
	n := batchOf(vs[0])
	l, err := halfOf(vs[0].Shape(), op.String())
	if err != nil {
		return nil, err
	}
	if len(in[1]) != n*l {
		return nil, fmt.Errorf("%s: %d noise values for [%d, %d]", op, len(in[1]), n, l)
	}
	out, z := op.dest(prealloc, tensor.Shape{n, l})
	for i := 0; i < n; i++ {
		row := in[0][i*2*l : (i+1)*2*l]
		for j := 0; j < l; j++ {
			z[i*l+j] = row[j] + in[1][i*l+j]*float32(math.Exp(0.5*float64(row[l+j])))
		}
	}
	return out, nil
}
func (op *reparamOp) DiffWRT(int) []bool { return []bool{true, false} }
func (op *reparamOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dp, err := G.ApplyOp(&reparamGradOp{}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dp, nil}, nil
}

// reparamGradOp maps (p, ε, dz) to dp: dμ = dz, d log σ² = dz·ε·½·σ.
type reparamGradOp struct{ opBase }

func (op *reparamGradOp) Arity() int { return 3 }
func (op *reparamGradOp) Type() hm.Type {
	return hm.NewFnType(tensorType(2), tensorType(2), tensorType(2), tensorType(2))
}
func (op *reparamGradOp) String() string        { return "ReparameteriseGrad" }
func (op *reparamGradOp) Hashcode() uint32      { return hashOf(op) }
func (op *reparamGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *reparamGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%s: bad input shape", op)
	}
	return s.Clone(), nil
}
func (op *reparamGradOp) Do(vs ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, vs...) }
func (op *reparamGradOp) UsePreallocDo(prealloc G.Value, vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 3)
	if err != nil {
		return nil, err
	}
	n := batchOf(vs[0])
	l, err := halfOf(vs[0].Shape(), op.String())
	if err != nil {
		return nil, err
	}
	out, dp := op.dest(prealloc, vs[0].Shape())
	p, eps, dz := in[0], in[1], in[2]
	for i := 0; i < n; i++ {
		for j := 0; j < l; j++ {
			g := dz[i*l+j]
			dp[i*2*l+j] = g
			dp[i*2*l+l+j] = g * eps[i*l+j] * 0.5 * float32(math.Exp(0.5*float64(p[i*2*l+l+j])))
		}
	}
	return out, nil
}

// PriorSample draws n codes of l numbers from the prior N(0, I), from seed:
// what a generative model decodes into new items. The same seed gives the
// same codes, whoever draws them (the server's /v1/sample, the evaluation).
func PriorSample(n, l int, seed int64) []float32 {
	rng := rand.New(rand.NewSource(seed))
	z := make([]float32, n*l)
	for i := range z {
		z[i] = float32(rng.NormFloat64())
	}
	return z
}

// ---- KL(q(z|x) ‖ N(0, I)) ----

// klPriorOp is scale·mean over items of KL(N(μ, σ²) ‖ N(0, I)), in closed
// form −½·Σ_j (1 + log σ²_j − μ_j² − σ²_j), from the posterior [N, 2L]:
// the variational autoencoder's regulariser, which keeps the codes where
// the decoder will be sampled (the prior).
type klPriorOp struct {
	lossOp
	scale float64
}

func newKLPrior(scale float64) *klPriorOp {
	return &klPriorOp{lossOp{name: fmt.Sprintf("KLPrior{×%g}", scale), ranks: []int{gaussianRank}}, scale}
}

// KLToPrior is KL(N(μ, σ²) ‖ N(0, I)) in nats for one item's mean and
// log-variance.
func KLToPrior(mean, logvar []float32) float64 {
	var s float64
	for j, m := range mean {
		lv := float64(logvar[j])
		s += 1 + lv - float64(m)*float64(m) - math.Exp(lv)
	}
	return -0.5 * s
}

func (op *klPriorOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := op.inputs(vs, 1)
	if err != nil {
		return nil, err
	}
	n := batchOf(vs[0])
	l, err := halfOf(vs[0].Shape(), op.String())
	if err != nil {
		return nil, err
	}
	var s float64
	for i := 0; i < n; i++ {
		row := in[0][i*2*l : (i+1)*2*l]
		s += KLToPrior(row[:l], row[l:])
	}
	return G.NewF32(float32(op.scale * s / float64(n))), nil
}

func (op *klPriorOp) DiffWRT(int) []bool { return []bool{true} }
func (op *klPriorOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	scale := op.scale
	dp, err := G.ApplyOp(&gradOp{name: op.name, ranks: op.ranks, of: 0, shape: inputs[0].Shape().Clone(),
		fn: func(in [][]float32, n int, g float32, dst []float32) {
			l := len(in[0]) / n / 2
			c := float64(g) * scale / float64(n)
			for i := 0; i < n; i++ {
				row, d := in[0][i*2*l:(i+1)*2*l], dst[i*2*l:(i+1)*2*l]
				for j := 0; j < l; j++ {
					d[j] = float32(c * float64(row[j]))                           // ∂/∂μ: μ
					d[l+j] = float32(c * 0.5 * (math.Exp(float64(row[l+j])) - 1)) // ∂/∂log σ²: ½(σ² − 1)
				}
			}
		}}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dp}, nil
}
