package model

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"sort"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// MNIST images: what every architecture here takes in, and what every
// autoencoder gives back.
const (
	ImageSide = 28
	ImageLen  = ImageSide * ImageSide
)

// Half names a separately loadable and runnable stage of a model. The name
// is historical: an autoencoder's stored stages are its two halves, encoder
// and decoder, and Full runs both in one graph; a classifier has a single
// stored stage, Classifier.
type Half string

const (
	Encoder    Half = "encoder"
	Decoder    Half = "decoder"
	Full       Half = "full" // encoder then decoder, one graph
	Classifier Half = "classifier"
	// Posterior runs a Gaussian code's encoder (Arch.Gaussian) and gives
	// both its outputs, per item the mean then the log-variance of q(z|x),
	// [2, latent]; Encoder gives the mean alone. It is the encoder's stored
	// stage, run whole.
	Posterior Half = "posterior"
)

// Halves lists an autoencoder's stored stages, in file order.
var Halves = []Half{Encoder, Decoder}

// ParseHalf accepts a stage name.
func ParseHalf(s string) (Half, error) {
	switch h := Half(s); h {
	case Encoder, Decoder, Full, Classifier, Posterior:
		return h, nil
	}
	return "", fmt.Errorf("model: unknown stage %q (want encoder, decoder, full, classifier or posterior)", s)
}

// Task is what an architecture is for.
type Task string

const (
	TaskAutoencoder Task = "autoencoder" // encoder, decoder and full stages
	TaskClassifier  Task = "classifier"  // one stage: image in, class probabilities out
)

// Layer is one layer of a stage: a 3×3 "same" convolution, a 3×3 stride-2
// "same" transposed convolution, or a dense layer, with bias and activation
// fused and, for a convolution, an optional 2×2 max pool after it. Its
// tensors are Name+".weight" and Name+".bias".
type Layer struct {
	Name string
	conv *layer // convolution geometry, or nil
	fc   *dense // dense geometry, or nil
	Act  Activation
	Pool bool
}

// Conv is a 3×3, stride 1, zero-padded convolution over cin×h×w planes.
func Conv(name string, cin, cout, h, w int, act Activation, pool bool) Layer {
	l := convSame(cin, cout, h, w)
	return Layer{Name: name, conv: &l, Act: act, Pool: pool}
}

// ConvT is a 3×3, stride 2 transposed convolution doubling cin×h×w planes.
func ConvT(name string, cin, cout, h, w int, act Activation) Layer {
	l := convTSame(cin, cout, h, w)
	return Layer{Name: name, conv: &l, Act: act}
}

// Dense is a fully connected layer from in to out values per item.
func Dense(name string, in, out int, act Activation) Layer {
	return Layer{Name: name, fc: &dense{In: in, Out: out}, Act: act}
}

func (l Layer) wShape() []int {
	if l.fc != nil {
		return l.fc.wShape()
	}
	return l.conv.wShape()
}

func (l Layer) outChannels() int {
	if l.fc != nil {
		return l.fc.Out
	}
	return l.conv.Cout
}

// outShape is the layer's per-item output shape.
func (l Layer) outShape() []int {
	if l.fc != nil {
		return []int{l.fc.Out}
	}
	c := l.conv
	if l.Pool {
		return []int{c.Cout, c.OH / 2, c.OW / 2}
	}
	return []int{c.Cout, c.OH, c.OW}
}

func (l Layer) inLen() int {
	if l.fc != nil {
		return l.fc.In
	}
	return l.conv.inLen()
}

// flops counts multiply-adds as two operations, as the layer runs here
// (transposed convolutions as GEMM + col2im).
func (l Layer) flops() int {
	if l.fc != nil {
		return 2 * l.fc.In * l.fc.Out
	}
	c := l.conv
	if c.kind == kindConvT {
		return 2 * c.Cin * c.Cout * c.K * c.K * c.H * c.W
	}
	return 2 * c.Cin * c.Cout * c.K * c.K * c.OH * c.OW
}

// Stage is one stored, separately loadable piece of an architecture.
type Stage struct {
	Half   Half
	In     []int // per-item input shape
	Layers []Layer
}

// Out is the stage's per-item output shape.
func (s Stage) Out() []int { return s.Layers[len(s.Layers)-1].outShape() }

// Arch is an architecture: its task and its stored stages' layers. The
// manifest's "architecture" names one (see Lookup); everything that needs
// a shape asks the model's Arch.
type Arch struct {
	Name    string
	Summary string // one line, for people
	Task    Task
	// Int8 says an autoencoder's code keeps its quality quantised to int8
	// with one scale per latent (measured by cmd/eval's transmission
	// section): a linear code of a few dozen numbers does. Every
	// autoencoder's code keeps it at float16.
	Int8 bool
	// Gaussian marks a variational autoencoder's code: the encoder's last
	// (dense) layer computes a diagonal Gaussian q(z|x), each item's row
	// holding its mean then its log-variance, 2×latent numbers. The latent
	// is the mean: Encoder serves it and Full decodes it, Posterior serves
	// both halves of the row, and training decodes a sample z = μ + ε·σ
	// (gaussian.go). Such a code can be sampled from the prior N(0, I) and
	// interpolated: see Generative.
	Gaussian bool
	stages   []Stage // stored stages, in file order
}

// The element types a latent can be sent in (api's dtype names).
const (
	QuantFloat32 = "float32"
	QuantFloat16 = "float16"
	QuantInt8    = "int8"
)

// Quantizations are the element types an autoencoder's latents can be
// sent in, float32 first; a classifier has none.
func (a *Arch) Quantizations() []string {
	if a.Task != TaskAutoencoder {
		return nil
	}
	q := []string{QuantFloat32, QuantFloat16}
	if a.Int8 {
		q = append(q, QuantInt8)
	}
	return q
}

var registry = map[string]*Arch{}

// register adds an architecture, checking that its stages chain: each
// layer takes what the one before gives, and the decoder takes what the
// encoder gives.
func register(a *Arch) *Arch {
	if _, dup := registry[a.Name]; dup {
		panic("model: architecture registered twice: " + a.Name)
	}
	for _, s := range a.stages {
		in := prod(s.In)
		for _, l := range s.Layers {
			if l.inLen() != in {
				panic(fmt.Sprintf("model: %s %s: layer %s takes %d values, gets %d", a.Name, s.Half, l.Name, l.inLen(), in))
			}
			in = prod(l.outShape())
		}
	}
	if a.Task == TaskAutoencoder {
		enc, dec := a.stage(Encoder), a.stage(Decoder)
		code := 0
		if enc != nil {
			code = prod(enc.Out())
			if a.Gaussian {
				if last := enc.Layers[len(enc.Layers)-1]; last.fc == nil || last.Act != ActNone || code%2 != 0 {
					panic("model: " + a.Name + ": a Gaussian code needs a dense encoder head without activation and an even width")
				}
				code /= 2
			}
		}
		if enc == nil || dec == nil || code != prod(dec.In) || prod(dec.Out()) != prod(enc.In) {
			panic("model: " + a.Name + ": encoder and decoder do not fit together")
		}
	} else if a.Gaussian {
		panic("model: " + a.Name + ": only an autoencoder has a Gaussian code")
	}
	registry[a.Name] = a
	return a
}

// Lookup finds an architecture by its manifest name.
func Lookup(name string) (*Arch, error) {
	if a, ok := registry[name]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("model: unknown architecture %q (this build has %v)", name, Architectures())
}

// Architectures lists the registered architectures' names, sorted.
func Architectures() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (a *Arch) stage(h Half) *Stage {
	for i := range a.stages {
		if a.stages[i].Half == h {
			return &a.stages[i]
		}
	}
	return nil
}

// Stored lists the stages kept in files of their own, in file order.
func (a *Arch) Stored() []Half {
	hs := make([]Half, len(a.stages))
	for i, s := range a.stages {
		hs[i] = s.Half
	}
	return hs
}

// Runnable lists what can run: the stored stages, Full for an autoencoder,
// and Posterior for a Gaussian code.
func (a *Arch) Runnable() []Half {
	hs := a.Stored()
	if a.Task == TaskAutoencoder {
		hs = append(hs, Full)
	}
	if a.Gaussian {
		hs = append(hs, Posterior)
	}
	return hs
}

// Generative reports whether new items can be drawn from the model: its
// code is Gaussian, so that decoding draws from the prior N(0, I) gives new
// digits, and the means of two digits can be interpolated between.
func (a *Arch) Generative() bool { return a.Gaussian }

// parts returns the stored stages that make up h, in running order.
func (a *Arch) parts(h Half) ([]*Stage, error) {
	if h == Full && a.Task == TaskAutoencoder {
		return []*Stage{a.stage(Encoder), a.stage(Decoder)}, nil
	}
	if h == Posterior && a.Gaussian {
		return []*Stage{a.stage(Encoder)}, nil
	}
	if s := a.stage(h); s != nil {
		return []*Stage{s}, nil
	}
	return nil, fmt.Errorf("model: architecture %s has no %s stage (it has %v)", a.Name, h, a.Runnable())
}

// InShape is stage h's per-item input shape (nil if there is no such stage).
func (a *Arch) InShape(h Half) []int {
	ps, err := a.parts(h)
	if err != nil {
		return nil
	}
	return slices.Clone(ps[0].In)
}

// OutShape is stage h's per-item output shape as served: an autoencoder's
// output is an image, whatever shape its last layer computes it in.
func (a *Arch) OutShape(h Half) []int {
	ps, err := a.parts(h)
	if err != nil {
		return nil
	}
	last := ps[len(ps)-1]
	switch {
	case last.Half == Decoder:
		return slices.Clone(a.stage(Encoder).In)
	case a.Gaussian && h == Encoder:
		return a.LatentShape()
	case a.Gaussian && h == Posterior:
		return append([]int{2}, a.LatentShape()...)
	}
	return last.Out()
}

// InLen and OutLen are the per-item sizes of InShape and OutShape.
func (a *Arch) InLen(h Half) int  { return prod(a.InShape(h)) }
func (a *Arch) OutLen(h Half) int { return prod(a.OutShape(h)) }

// LatentShape is an autoencoder's code shape (nil for a classifier): what
// the encoder serves and the decoder takes. A Gaussian code's is the mean's,
// half of what the encoder's last layer computes.
func (a *Arch) LatentShape() []int {
	if a.Task != TaskAutoencoder {
		return nil
	}
	if a.Gaussian {
		return []int{prod(a.stage(Encoder).Out()) / 2}
	}
	return a.OutShape(Encoder)
}

// Classes is a classifier's number of classes (0 for an autoencoder).
func (a *Arch) Classes() int {
	if a.Task != TaskClassifier {
		return 0
	}
	return a.OutLen(Classifier)
}

// FLOPs per item of stage h, multiply-adds counted as two.
func (a *Arch) FLOPs(h Half) int {
	ps, _ := a.parts(h)
	var f int
	for _, s := range ps {
		for _, l := range s.Layers {
			f += l.flops()
		}
	}
	return f
}

func prod(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}

// TensorSpec names one stored tensor and its shape.
type TensorSpec struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
}

// Specs lists the tensors of one stored stage, in file order.
func (a *Arch) Specs(h Half) ([]TensorSpec, error) {
	s := a.stage(h)
	if s == nil {
		return nil, fmt.Errorf("model: architecture %s has no stored stage %q", a.Name, h)
	}
	var specs []TensorSpec
	for _, l := range s.Layers {
		specs = append(specs,
			TensorSpec{Name: l.Name + ".weight", Shape: l.wShape()},
			TensorSpec{Name: l.Name + ".bias", Shape: []int{l.outChannels()}})
	}
	return specs, nil
}

// Params are named float32 tensors of one or more stages.
type Params map[string]*tensor.Dense

// InitParams draws every weight from Glorot's uniform distribution, as
// Keras does for both layer kinds, and sets biases to zero, from a seeded
// source so that training runs are reproducible. Fan-in and fan-out are
// per layer kind: a convolution's are its receptive field times its input
// and output channels, a dense layer's its inputs and outputs.
func (a *Arch) InitParams(seed int64) Params {
	rng := rand.New(rand.NewSource(seed))
	p := Params{}
	for _, s := range a.stages {
		for _, l := range s.Layers {
			ws := l.wShape()
			w := make([]float32, prod(ws))
			var fanIn, fanOut int
			if l.fc != nil {
				fanIn, fanOut = l.fc.In, l.fc.Out
			} else {
				// Both conv kinds: receptive field × (in, out) channels,
				// whichever axis holds them.
				rf := ws[2] * ws[3]
				fanIn, fanOut = rf*ws[1], rf*ws[0]
			}
			limit := math.Sqrt(6 / float64(fanIn+fanOut))
			for i := range w {
				w[i] = float32((rng.Float64()*2 - 1) * limit)
			}
			p[l.Name+".weight"] = tensor.New(tensor.WithShape(ws...), tensor.WithBacking(w))
			p[l.Name+".bias"] = tensor.New(tensor.WithShape(l.outChannels()), tensor.WithBacking(make([]float32, l.outChannels())))
		}
	}
	return p
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

// graph is a built graph and the nodes training needs from it.
type graph struct {
	g      *G.ExprGraph
	x, y   *G.Node
	params map[string]*G.Node
	// code is the encoder's output, and codeLayer the encoder's last
	// layer, when the graph runs the encoder (for the code's penalties);
	// for a Gaussian code, the posterior [N, 2L] before sampling.
	code      *G.Node
	codeLayer Layer
	// noise draws a training graph's ε for a Gaussian code (nil otherwise).
	noise *stdNormalOp
}

// build makes the graph of stage h for a fixed batch size: for inference
// (fused pooling, final activation, constant weights) or for training
// (logits out, pooling as its own op, whose gradient is defined).
func (a *Arch) build(p Params, h Half, batch int, train bool) (*graph, error) {
	parts, err := a.parts(h)
	if err != nil {
		return nil, err
	}
	gr := &graph{g: G.NewGraph(), params: map[string]*G.Node{}}
	for _, s := range parts {
		specs, _ := a.Specs(s.Half)
		for _, sp := range specs {
			t, ok := p[sp.Name]
			if !ok {
				return nil, fmt.Errorf("model: parameter %s not loaded", sp.Name)
			}
			gr.params[sp.Name] = G.NewTensor(gr.g, tensor.Float32, len(sp.Shape), G.WithShape(sp.Shape...), G.WithName(sp.Name), G.WithValue(t))
		}
	}
	in := append([]int{batch}, parts[0].In...)
	gr.x = G.NewTensor(gr.g, tensor.Float32, len(in), G.WithShape(in...), G.WithName("x"))
	y := gr.x
	for si, s := range parts {
		final := si == len(parts)-1
		for i, l := range s.Layers {
			act := l.Act
			if train && final && i == len(s.Layers)-1 {
				act = ActNone // the loss takes logits, for stability
			}
			w, b := gr.params[l.Name+".weight"], gr.params[l.Name+".bias"]
			if y, err = a.apply(l, y, w, b, act, train); err != nil {
				return nil, fmt.Errorf("model: %s: %w", l.Name, err)
			}
		}
		if s.Half == Encoder {
			gr.code, gr.codeLayer = y, s.Layers[len(s.Layers)-1]
			if a.Gaussian {
				if y, err = a.gaussianCode(gr, y, h, train); err != nil {
					return nil, err
				}
			}
		}
	}
	gr.y = y
	return gr, nil
}

// gaussianCode turns a Gaussian code's posterior p [N, 2L] into what stage
// h goes on with: a training graph samples z = μ + ε·σ with ε drawn on
// every run (seeded by TrainGraph.SeedNoise), an inference graph takes the
// mean, and Posterior keeps both.
func (a *Arch) gaussianCode(gr *graph, p *G.Node, h Half, train bool) (*G.Node, error) {
	switch {
	case train:
		gr.noise = newStdNormal(1)
		eps, err := G.ApplyOp(gr.noise, p)
		if err != nil {
			return nil, err
		}
		return G.ApplyOp(&reparamOp{}, p, eps)
	case h == Posterior:
		return p, nil
	}
	return G.ApplyOp(&meanOp{}, p)
}

// apply adds one layer to the graph.
func (a *Arch) apply(l Layer, x, w, b *G.Node, act Activation, train bool) (*G.Node, error) {
	dataInput := train && x.Op() == nil // the first layer of a training graph
	if l.fc != nil {
		return G.ApplyOp(&denseOp{d: *l.fc, inDims: x.Dims(), act: act, dataInput: dataInput, constW: !train}, x, w, b)
	}
	if x.Dims() != 4 {
		// A convolution after a dense layer: the same values, as planes.
		var err error
		if x, err = G.ApplyOp(&planesOp{c: l.conv.Cin, h: l.conv.H, w: l.conv.W}, x); err != nil {
			return nil, err
		}
	}
	op := &convOp{l: *l.conv, act: act,
		pool:      l.Pool && !train, // inference fuses the pool
		constW:    !train,
		dataInput: dataInput,
	}
	y, err := conv(op, x, w, b)
	if err != nil || !l.Pool || !train {
		return y, err
	}
	return maxPool(y)
}
