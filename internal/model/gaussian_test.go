package model

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// refReparam is z = μ + ε·exp(½·log σ²) in float64, from [μ ‖ log σ²] rows.
func refReparam(p, eps []float64, n int) []float64 {
	l := len(eps) / n
	z := make([]float64, n*l)
	for i := 0; i < n; i++ {
		for j := 0; j < l; j++ {
			z[i*l+j] = p[i*2*l+j] + eps[i*l+j]*math.Exp(0.5*p[i*2*l+l+j])
		}
	}
	return z
}

// gaussianGradCases check the sample's gradient with respect to the
// posterior, the noise held fixed (TestGradientsNumerically).
func gaussianGradCases() []gradCase {
	n, l := 3, 4
	return []gradCase{{
		name:   "reparameterise",
		shapes: [][]int{{n, 2 * l}, {n, l}},
		apply:  func(in G.Nodes) (*G.Node, error) { return G.ApplyOp(&reparamOp{}, in[0], in[1]) },
		ref:    func(in [][]float64) []float64 { return refReparam(in[0], in[1], n) },
		fixed:  []bool{false, true},
	}}
}

func TestGaussianOpsMatchDefinitions(t *testing.T) {
	rng := rand.New(rand.NewSource(21))
	n, l := 5, 3
	p, eps := randVec(rng, n*2*l, 2), randVec(rng, n*l, 1)
	pt := tensor.New(tensor.WithShape(n, 2*l), tensor.WithBacking(to32(p)))
	et := tensor.New(tensor.WithShape(n, l), tensor.WithBacking(to32(eps)))
	mean, err := (&meanOp{}).Do(pt)
	if err != nil {
		t.Fatal(err)
	}
	var want []float64
	for i := 0; i < n; i++ {
		want = append(want, p[i*2*l:i*2*l+l]...)
	}
	closeEnough(t, "mean", mean.Data().([]float32), want, 0, 1e-7)
	z, err := (&reparamOp{}).Do(pt, et)
	if err != nil {
		t.Fatal(err)
	}
	closeEnough(t, "z", z.Data().([]float32), refReparam(p, eps, n), 1e-6, 1e-6)
	// Shapes that are not [N, 2L] are refused, not misread.
	odd := tensor.New(tensor.WithShape(n, 5), tensor.Of(tensor.Float32))
	if _, err := (&meanOp{}).Do(odd); err == nil {
		t.Error("mean of [N, 5]: accepted")
	}
}

// ε is N(0, 1), drawn afresh on each run, and the same from the same seed.
func TestStdNormalIsSeededAndStandard(t *testing.T) {
	in := tensor.New(tensor.WithShape(500, 40), tensor.Of(tensor.Float32))
	draw := func(op *stdNormalOp) []float32 {
		v, err := op.Do(in)
		if err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), v.Data().([]float32)...)
	}
	a, b := newStdNormal(7), newStdNormal(7)
	a1, a2, b1 := draw(a), draw(a), draw(b)
	if len(a1) != 500*20 {
		t.Fatalf("%d values, want %d", len(a1), 500*20)
	}
	var same, sum, sq float64
	for i := range a1 {
		if a1[i] != b1[i] {
			t.Fatalf("value %d: %v and %v from the same seed", i, a1[i], b1[i])
		}
		if a1[i] == a2[i] {
			same++
		}
		sum += float64(a1[i])
		sq += float64(a1[i]) * float64(a1[i])
	}
	if same > 0 {
		t.Errorf("%v values repeated from one run to the next", same)
	}
	mean, sd := sum/float64(len(a1)), math.Sqrt(sq/float64(len(a1))-sum*sum/float64(len(a1)*len(a1)))
	if math.Abs(mean) > 0.05 || math.Abs(sd-1) > 0.05 {
		t.Errorf("ε has mean %.3f and sd %.3f, want 0 and 1", mean, sd)
	}
}

// A Gaussian code's stages agree: Encoder is Posterior's mean, Full is the
// decoder of that mean, and the shapes say so.
func TestGaussianStagesAgree(t *testing.T) {
	a := ArchVAE
	if got := a.LatentShape(); len(got) != 1 || got[0] != 20 {
		t.Fatalf("latent shape %v, want [20]", got)
	}
	if got := a.OutShape(Posterior); len(got) != 2 || got[0] != 2 || got[1] != 20 {
		t.Fatalf("posterior shape %v, want [2, 20]", got)
	}
	if !a.Generative() || ArchDense.Generative() {
		t.Fatal("Generative: want true for the VAE only")
	}
	m, err := FromParams("m", Manifest{Architecture: a.Name}, a.InitParams(3))
	if err != nil {
		t.Fatal(err)
	}
	n := 4
	rng := rand.New(rand.NewSource(4))
	x := make([]float32, n*ImageLen)
	for i := range x {
		x[i] = rng.Float32()
	}
	run := func(h Half, in []float32) []float32 {
		r, err := m.NewRunner(h)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		out, err := r.Run(in, n)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	post, mean, full := run(Posterior, x), run(Encoder, x), run(Full, x)
	for i := 0; i < n; i++ {
		for j := 0; j < 20; j++ {
			if mean[i*20+j] != post[i*40+j] {
				t.Fatalf("item %d: mean %d is %v, the posterior's %v", i, j, mean[i*20+j], post[i*40+j])
			}
		}
	}
	dec := run(Decoder, mean)
	for i := range full {
		if full[i] != dec[i] {
			t.Fatalf("full[%d] = %v, decode(mean) = %v", i, full[i], dec[i])
		}
	}
}

// The training graph samples its code: the same seed gives the same loss,
// another seed another, and every run draws afresh.
func TestGaussianTrainingIsSeeded(t *testing.T) {
	a := ArchVAE2
	p := a.InitParams(5)
	loss := func(seed int64, runs int) []float64 {
		tg, err := NewTrainGraph(a, p, 8, Objective{KL: 1})
		if err != nil {
			t.Fatal(err)
		}
		tg.SeedNoise(seed)
		vm := G.NewTapeMachine(tg.G, G.BindDualValues(tg.Learnables...))
		defer vm.Close()
		x := randInput(a, Full, 8, 1)
		var out []float64
		for range runs {
			if err := G.Let(tg.X, x); err != nil {
				t.Fatal(err)
			}
			if err := G.Let(tg.T, tensor.New(tensor.WithShape(8, ImageLen), tensor.WithBacking(x.Float32s()))); err != nil {
				t.Fatal(err)
			}
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			out = append(out, float64(*tg.Loss.Value().(*G.F32)))
			vm.Reset()
		}
		return out
	}
	a1, a2, b := loss(1, 2), loss(1, 2), loss(2, 1)
	if a1[0] != a2[0] || a1[1] != a2[1] {
		t.Errorf("seed 1 gave %v, then %v", a1, a2)
	}
	if a1[0] == a1[1] {
		t.Errorf("two runs drew the same ε: loss %v both times", a1[0])
	}
	if a1[0] == b[0] {
		t.Errorf("seeds 1 and 2 gave the same loss %v", b[0])
	}
}
