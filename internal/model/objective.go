package model

import (
	"fmt"
	"slices"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Objective is what training minimises, apart from the network: the task's
// loss (an autoencoder's binary cross-entropy on its reconstruction, mean
// per pixel; a classifier's cross-entropy, mean per image) plus optional
// penalties on an autoencoder's code. Each penalty's weight is relative to
// the BCE summed over an image's pixels, the scale the classic papers use,
// so a weight means the same whatever the image size. The presets that
// pick these per model are internal/train's.
type Objective struct {
	// SparsityRho and SparsityBeta: β·Σ_j KL(ρ ‖ ρ̂_j) over the code's units,
	// ρ̂_j the unit's mean activation over the batch (a sigmoid code).
	SparsityRho, SparsityBeta float64
	// L1: the mean over images of Σ_j |code_j|.
	L1 float64
	// Contractive: λ·‖J‖²_F of the code layer's Jacobian with respect to
	// its input (a dense sigmoid code layer), mean over images.
	Contractive float64
	// KL: β·KL(q(z|x) ‖ N(0, I)) of a Gaussian code (Arch.Gaussian), in
	// closed form, mean over images. With β = 1 the loss is the variational
	// autoencoder's negative ELBO (the summed BCE at a sampled z plus the
	// KL), divided by the pixels.
	KL float64
}

// Describe says what the objective is, for manifests and logs.
func (o Objective) Describe(t Task) string {
	parts := []string{"binary cross-entropy (mean per pixel)"}
	if t == TaskClassifier {
		parts = []string{"softmax cross-entropy (mean per image)"}
	}
	if o.SparsityBeta > 0 {
		parts = append(parts, fmt.Sprintf("%g·Σ KL(%g ‖ mean code activation) per pixel-summed BCE", o.SparsityBeta, o.SparsityRho))
	}
	if o.L1 > 0 {
		parts = append(parts, fmt.Sprintf("%g·Σ|code| per pixel-summed BCE", o.L1))
	}
	if o.Contractive > 0 {
		parts = append(parts, fmt.Sprintf("%g·‖J‖²_F of the code per pixel-summed BCE", o.Contractive))
	}
	if o.KL > 0 {
		// Square brackets: "KL(" names the sparsity penalty in reports.
		parts = append(parts, fmt.Sprintf("%g·KL[q(z|x) ‖ N(0, I)] per pixel-summed BCE, z = μ + ε·σ sampled", o.KL))
	}
	return strings.Join(parts, " + ")
}

// TrainGraph is a model wired for training at a fixed batch size: input X
// (noisy or clean images), target T (clean images, or one-hot labels for a
// classifier), the network's logits, and the loss to minimise.
type TrainGraph struct {
	G          *G.ExprGraph
	X, T       *G.Node
	Logits     *G.Node
	Loss       *G.Node
	Learnables G.Nodes
	noise      *stdNormalOp // a Gaussian code's ε, or nil
}

// SeedNoise seeds the ε a Gaussian code's sample is drawn with (a fresh
// N(0, 1) value per item and code number on every run), so that a training
// run is reproducible from its seed. NewTrainGraph seeds it with 1; a graph
// without a Gaussian code draws nothing and ignores it.
func (tg *TrainGraph) SeedNoise(seed int64) {
	if tg.noise != nil {
		tg.noise.rng.Seed(seed)
	}
}

// NewTrainGraph builds the training graph of architecture a with objective
// obj, and its symbolic gradients.
func NewTrainGraph(a *Arch, p Params, batch int, obj Objective) (*TrainGraph, error) {
	h := Full
	if a.Task == TaskClassifier {
		h = Classifier
	}
	gr, err := a.build(p, h, batch, true)
	if err != nil {
		return nil, err
	}
	ys := gr.y.Shape().Clone()
	t := G.NewTensor(gr.g, tensor.Float32, len(ys), G.WithShape(ys...), G.WithName("target"))
	var loss *G.Node
	if a.Task == TaskClassifier {
		if obj != (Objective{}) {
			return nil, fmt.Errorf("model: %s: a classifier takes no code penalties", a.Name)
		}
		loss, err = G.ApplyOp(newSoftmaxCE(), gr.y, t)
	} else {
		loss, err = bceWithLogits(gr.y, t)
	}
	if err != nil {
		return nil, err
	}
	pixels := float64(a.InLen(h))
	var terms []G.Op
	if obj.SparsityBeta > 0 {
		terms = append(terms, newKLSparsity(obj.SparsityRho, obj.SparsityBeta/pixels))
	}
	if obj.L1 > 0 {
		terms = append(terms, newL1(obj.L1/pixels))
	}
	for _, op := range terms {
		if gr.code == nil || gr.code.Dims() != 2 {
			return nil, fmt.Errorf("model: %s: code penalties need a dense code", a.Name)
		}
		term, err := G.ApplyOp(op, gr.code)
		if err != nil {
			return nil, err
		}
		if loss, err = G.Add(loss, term); err != nil {
			return nil, err
		}
	}
	if obj.KL > 0 {
		if !a.Gaussian || gr.code == nil {
			return nil, fmt.Errorf("model: %s: the KL to the prior needs a Gaussian code", a.Name)
		}
		term, err := G.ApplyOp(newKLPrior(obj.KL/pixels), gr.code)
		if err != nil {
			return nil, err
		}
		if loss, err = G.Add(loss, term); err != nil {
			return nil, err
		}
	}
	if obj.Contractive > 0 {
		l := gr.codeLayer
		if gr.code == nil || l.fc == nil || l.Act != ActSigmoid {
			return nil, fmt.Errorf("model: %s: the contractive penalty needs a dense sigmoid code layer", a.Name)
		}
		term, err := G.ApplyOp(newContractive(obj.Contractive/pixels), gr.code, gr.params[l.Name+".weight"])
		if err != nil {
			return nil, err
		}
		if loss, err = G.Add(loss, term); err != nil {
			return nil, err
		}
	}
	tg := &TrainGraph{G: gr.g, X: gr.x, T: t, Logits: gr.y, Loss: loss, noise: gr.noise}
	for _, n := range sortedKeys(gr.params) {
		tg.Learnables = append(tg.Learnables, gr.params[n])
	}
	if _, err := G.Grad(loss, tg.Learnables...); err != nil {
		return nil, fmt.Errorf("model: gradients: %w", err)
	}
	return tg, nil
}

func sortedKeys(m map[string]*G.Node) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
