package model

import (
	"fmt"
	"math"
	"math/rand"
	"sort"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Shapes shared by every architecture served today: MNIST in and out, and
// the 7×7×32 code of the convolutional autoencoder.
const (
	ImageSide = 28
	ImageLen  = ImageSide * ImageSide
	LatentC   = 32
	LatentH   = 7
	LatentW   = 7
	LatentLen = LatentC * LatentH * LatentW
)

// Half names a separately loadable and runnable piece of a model.
type Half string

const (
	Encoder Half = "encoder"
	Decoder Half = "decoder"
	Full    Half = "full" // encoder then decoder, one graph
)

// Halves lists the pieces stored on disk; Full is made of both.
var Halves = []Half{Encoder, Decoder}

// ParseHalf accepts "encoder", "decoder" or "full".
func ParseHalf(s string) (Half, error) {
	switch h := Half(s); h {
	case Encoder, Decoder, Full:
		return h, nil
	}
	return "", fmt.Errorf("model: unknown half %q (want encoder, decoder or full)", s)
}

// InShape is the per-item input shape (without the batch dimension).
func (h Half) InShape() []int {
	if h == Decoder {
		return []int{LatentC, LatentH, LatentW}
	}
	return []int{1, ImageSide, ImageSide}
}

// OutShape is the per-item output shape.
func (h Half) OutShape() []int {
	if h == Encoder {
		return []int{LatentC, LatentH, LatentW}
	}
	return []int{1, ImageSide, ImageSide}
}

func (h Half) InLen() int  { return prod(h.InShape()) }
func (h Half) OutLen() int { return prod(h.OutShape()) }

func prod(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}

// ArchConv is the convolutional autoencoder of the classic MNIST tutorials:
//
//	encoder Conv(1→32,3×3,same) ReLU MaxPool2 Conv(32→32,3×3,same) ReLU MaxPool2 → 32×7×7
//	decoder ConvT(32→32,3×3,s2,same) ReLU ConvT(32→32,3×3,s2,same) ReLU Conv(32→1,3×3,same) sigmoid
const ArchConv = "conv-ae/v1"

// TensorSpec names one stored tensor and its shape.
type TensorSpec struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
}

var (
	encConv1 = convSame(1, 32, 28, 28)
	encConv2 = convSame(32, 32, 14, 14)
	decT1    = convTSame(32, 32, 7, 7)
	decT2    = convTSame(32, 32, 14, 14)
	decConv  = convSame(32, 1, 28, 28)
)

type layerParam struct {
	prefix string
	l      layer
}

var convLayers = map[Half][]layerParam{
	Encoder: {{"encoder.conv1", encConv1}, {"encoder.conv2", encConv2}},
	Decoder: {{"decoder.deconv1", decT1}, {"decoder.deconv2", decT2}, {"decoder.conv3", decConv}},
}

// Specs lists the tensors of one stored half of an architecture, in file order.
func Specs(arch string, h Half) ([]TensorSpec, error) {
	if arch != ArchConv {
		return nil, fmt.Errorf("model: unknown architecture %q", arch)
	}
	lps, ok := convLayers[h]
	if !ok {
		return nil, fmt.Errorf("model: architecture %s has no stored half %q", arch, h)
	}
	var specs []TensorSpec
	for _, lp := range lps {
		specs = append(specs,
			TensorSpec{Name: lp.prefix + ".weight", Shape: lp.l.wShape()},
			TensorSpec{Name: lp.prefix + ".bias", Shape: []int{lp.l.Cout}})
	}
	return specs, nil
}

// Params are named float32 tensors of one or both halves.
type Params map[string]*tensor.Dense

// InitParams draws Glorot-uniform weights and zero biases, as Keras does,
// from a seeded source so that training runs are reproducible.
func InitParams(arch string, seed int64) (Params, error) {
	rng := rand.New(rand.NewSource(seed))
	p := Params{}
	for _, h := range Halves {
		specs, err := Specs(arch, h)
		if err != nil {
			return nil, err
		}
		for _, s := range specs {
			d := make([]float32, prod(s.Shape))
			if len(s.Shape) == 4 {
				// fan_in/fan_out as Keras computes them for both conv kinds:
				// receptive field × (in, out) channels, whichever axis holds them.
				rf := s.Shape[2] * s.Shape[3]
				limit := math.Sqrt(6 / float64(rf*(s.Shape[0]+s.Shape[1])))
				for i := range d {
					d[i] = float32((rng.Float64()*2 - 1) * limit)
				}
			}
			p[s.Name] = tensor.New(tensor.WithShape(s.Shape...), tensor.WithBacking(d))
		}
	}
	return p, nil
}

// Names returns the parameter names in sorted order.
func (p Params) Names() []string {
	names := make([]string, 0, len(p))
	for n := range p {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Clone deep-copies the parameters.
func (p Params) Clone() Params {
	c := make(Params, len(p))
	for n, t := range p {
		c[n] = t.Clone().(*tensor.Dense)
	}
	return c
}

// graphParams adds each needed parameter to g as a node bound to its tensor.
// The tensors' backing arrays are shared, read-only, between graphs.
func graphParams(g *G.ExprGraph, p Params, halves ...Half) (map[string]*G.Node, error) {
	nodes := map[string]*G.Node{}
	for _, h := range halves {
		specs, err := Specs(ArchConv, h)
		if err != nil {
			return nil, err
		}
		for _, s := range specs {
			t, ok := p[s.Name]
			if !ok {
				return nil, fmt.Errorf("model: parameter %s not loaded", s.Name)
			}
			nodes[s.Name] = G.NewTensor(g, tensor.Float32, len(s.Shape), G.WithShape(s.Shape...), G.WithName(s.Name), G.WithValue(t))
		}
	}
	return nodes, nil
}

// buildHalf appends one stored half's layers to x. For training (train set)
// the decoder stops before its sigmoid, for the numerically stable loss, and
// pooling is its own op, whose gradient is defined; inference fuses each
// pool into its convolution.
func buildHalf(h Half, x *G.Node, nodes map[string]*G.Node, train bool) (*G.Node, error) {
	var err error
	for i, lp := range convLayers[h] {
		act := ActReLU
		last := i == len(convLayers[h])-1
		if h == Decoder && last {
			act = ActSigmoid
			if train {
				act = ActNone
			}
		}
		op := &convOp{l: lp.l, act: act,
			pool:      h == Encoder && !train, // inference fuses the pool
			constW:    !train,
			dataInput: train && x.Op() == nil, // the first layer of the training graph
		}
		if x, err = conv(op, x, nodes[lp.prefix+".weight"], nodes[lp.prefix+".bias"]); err != nil {
			return nil, fmt.Errorf("model: %s: %w", lp.prefix, err)
		}
		if h == Encoder && train {
			if x, err = maxPool(x); err != nil {
				return nil, fmt.Errorf("model: %s pool: %w", lp.prefix, err)
			}
		}
	}
	return x, nil
}

func stored(h Half) []Half {
	if h == Full {
		return Halves
	}
	return []Half{h}
}

// build makes the graph of half h for a fixed batch size: for inference, or
// for training (logits out, unfused pooling).
func build(p Params, h Half, batch int, train bool) (*G.ExprGraph, *G.Node, *G.Node, map[string]*G.Node, error) {
	g := G.NewGraph()
	nodes, err := graphParams(g, p, stored(h)...)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(append([]int{batch}, h.InShape()...)...), G.WithName("x"))
	y := x
	for _, s := range stored(h) {
		if y, err = buildHalf(s, y, nodes, train); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	return g, x, y, nodes, nil
}

// TrainGraph is the full model wired for training at a fixed batch size:
// input X (noisy or clean), target T, logits, and the mean BCE loss.
type TrainGraph struct {
	G          *G.ExprGraph
	X, T       *G.Node
	Logits     *G.Node
	Loss       *G.Node
	Learnables G.Nodes
}

// NewTrainGraph builds the training graph and its symbolic gradients.
func NewTrainGraph(p Params, batch int) (*TrainGraph, error) {
	g, x, logits, nodes, err := build(p, Full, batch, true)
	if err != nil {
		return nil, err
	}
	t := G.NewTensor(g, tensor.Float32, 4, G.WithShape(batch, 1, ImageSide, ImageSide), G.WithName("target"))
	loss, err := bceWithLogits(logits, t)
	if err != nil {
		return nil, err
	}
	tg := &TrainGraph{G: g, X: x, T: t, Logits: logits, Loss: loss}
	for _, n := range sortedKeys(nodes) {
		tg.Learnables = append(tg.Learnables, nodes[n])
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
	sort.Strings(keys)
	return keys
}
