package model

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/aeserve/aeserve/weights"
)

// tapeRun runs an inference graph the way gorgonia runs any graph.
func tapeRun(t testing.TB, g *G.ExprGraph, x, y *G.Node, in *tensor.Dense) []float32 {
	t.Helper()
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := G.Let(x, in); err != nil {
		t.Fatal(err)
	}
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	d, err := data32(y.Value())
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), d...)
}

func randInput(a *Arch, h Half, batch int, seed int64) *tensor.Dense {
	rng := rand.New(rand.NewSource(seed))
	in := tensor.New(tensor.WithShape(append([]int{batch}, a.InShape(h)...)...), tensor.Of(tensor.Float32))
	for i, d := 0, in.Data().([]float32); i < len(d); i++ {
		d[i] = rng.Float32()
	}
	return in
}

// The plan runs the same graph as the TapeMachine, op for op, so the outputs
// are identical to the bit, run after run.
func TestPlanMatchesTapeMachine(t *testing.T) {
	for _, name := range embeddedModels(t) {
		m, err := LoadFS(weights.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range m.Arch.Runnable() {
			for _, batch := range []int{1, 4} {
				t.Run(fmt.Sprintf("%s/%s/batch=%d", name, h, batch), func(t *testing.T) {
					gr, err := m.Arch.build(m.params, h, batch, false)
					if err != nil {
						t.Fatal(err)
					}
					p, err := newPlan(gr.g, gr.x, gr.y)
					if err != nil {
						t.Fatal(err)
					}
					// One fused step a layer, and a planes view (a copy)
					// where a convolution follows a dense layer.
					parts, _ := m.Arch.parts(h)
					layers, dense := 0, false
					for _, s := range parts {
						for _, l := range s.Layers {
							layers++
							if l.conv != nil && dense {
								layers++
							}
							dense = l.fc != nil
						}
					}
					if m.Arch.Gaussian && (h == Encoder || h == Full) {
						layers++ // the mean of the code
					}
					if len(p.steps) != layers {
						t.Errorf("%d steps for %d layers and views", len(p.steps), layers)
					}
					for run := range 2 {
						in := randInput(m.Arch, h, batch, int64(run))
						v, err := p.run(in)
						if err != nil {
							t.Fatal(err)
						}
						got, err := data32(v)
						if err != nil {
							t.Fatal(err)
						}
						// A fresh graph for the tape, so neither run can read the other's buffers.
						g2, err := m.Arch.build(m.params, h, batch, false)
						if err != nil {
							t.Fatal(err)
						}
						want := tapeRun(t, g2.g, g2.x, g2.y, in)
						if len(got) != len(want) {
							t.Fatalf("run %d: %d values, want %d", run, len(got), len(want))
						}
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("run %d: [%d] = %v, TapeMachine %v", run, i, got[i], want[i])
							}
						}
					}
				})
			}
		}
	}
}

func TestPlanRejectsUnboundLeaf(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float32, 1, G.WithShape(2), G.WithName("x"))
	w := G.NewTensor(g, tensor.Float32, 1, G.WithShape(2), G.WithName("w")) // never given a value
	y := G.Must(G.Add(x, w))
	if _, err := newPlan(g, x, y); err == nil {
		t.Fatal("newPlan accepted a graph with an unbound parameter")
	}
}

// BenchmarkExecutor compares the two ways to run the batch-1 full graph:
// the difference is gorgonia's per-call thread handoff.
//
//	go test -tags openblas -run '^$' -bench Executor ./internal/model
func BenchmarkExecutor(b *testing.B) {
	m, err := LoadFS(weights.FS, "conv")
	if err != nil {
		b.Fatal(err)
	}
	in := randInput(m.Arch, Full, 1, 1)
	b.Run("vm=tape", func(b *testing.B) {
		gr, err := m.Arch.build(m.params, Full, 1, false)
		if err != nil {
			b.Fatal(err)
		}
		g, x := gr.g, gr.x
		vm := G.NewTapeMachine(g)
		defer vm.Close()
		for b.Loop() {
			if err := G.Let(x, in); err != nil {
				b.Fatal(err)
			}
			if err := vm.RunAll(); err != nil {
				b.Fatal(err)
			}
			vm.Reset()
		}
	})
	b.Run("vm=plan", func(b *testing.B) {
		gr, err := m.Arch.build(m.params, Full, 1, false)
		if err != nil {
			b.Fatal(err)
		}
		p, err := newPlan(gr.g, gr.x, gr.y)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := p.run(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
