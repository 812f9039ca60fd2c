package model_test

import (
	"fmt"
	"io/fs"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/train"
	"github.com/aeserve/aeserve/weights"
)

// go test -run '^$' -bench . -benchmem ./internal/model  (add -tags openblas for the fast build)

func BenchmarkInfer(b *testing.B) {
	entries, err := fs.ReadDir(weights.FS, ".")
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		// Precision: float32 always, under the names it has always had (so
		// that results compare across versions); int8 where the
		// architecture has the path, as …/batch=N/precision=int8.
		precisions := []string{model.PrecisionFloat32}
		if a, err := model.LoadFS(weights.FS, name); err == nil && a.Arch.Int8Inference() {
			precisions = append(precisions, model.PrecisionInt8)
		}
		for _, prec := range precisions {
			m, err := model.LoadFS(weights.FS, name)
			if err != nil {
				b.Fatal(err)
			}
			suffix := ""
			if prec == model.PrecisionInt8 {
				if err := m.UseInt8(); err != nil {
					b.Fatal(err)
				}
				suffix = "/precision=int8"
			}
			benchInfer(b, m, name, suffix)
		}
	}
}

func benchInfer(b *testing.B, m *model.Model, name, suffix string) {
	for _, half := range m.Arch.Runnable() {
		for _, batch := range []int{1, 8, 64, 256} {
			b.Run(fmt.Sprintf("model=%s/half=%s/batch=%d%s", name, half, batch, suffix), func(b *testing.B) {
				r, err := m.NewRunner(half)
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				in := make([]float32, batch*r.InLen())
				rng := rand.New(rand.NewSource(1))
				for i := range in {
					in[i] = rng.Float32()
				}
				// As the server runs: RunInto a reused buffer.
				out := make([]float32, batch*r.OutLen())
				if err := r.RunInto(out, in, batch); err != nil { // build the graph and size the buffers outside the timer
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := r.RunInto(out, in, batch); err != nil {
						b.Fatal(err)
					}
				}
				ips := float64(b.N*batch) / b.Elapsed().Seconds()
				b.ReportMetric(ips, "images/s")
				b.ReportMetric(ips*float64(m.Arch.FLOPs(half))/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkTrain times one training step (forward, backward, Adam) on a
// batch of 128 for every model cmd/train knows, with its preset's network
// and objective: sub-benchmarks model=NAME, reporting images/s.
func BenchmarkTrain(b *testing.B) {
	for _, name := range train.Models {
		cfg, err := train.Preset(name)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("model="+name, func(b *testing.B) { benchTrain(b, cfg.Arch, cfg.Objective) })
	}
}

func benchTrain(b *testing.B, arch *model.Arch, obj model.Objective) {
	const batch = 128
	p := arch.InitParams(1)
	tg, err := model.NewTrainGraph(arch, p, batch, obj)
	if err != nil {
		b.Fatal(err)
	}
	vm := G.NewTapeMachine(tg.G, G.BindDualValues(tg.Learnables...))
	defer vm.Close()
	solver := train.NewAdam(1e-3) // as cmd/train steps
	learnables := G.NodesToValueGrads(tg.Learnables)
	x := tensor.New(tensor.WithShape(tg.X.Shape()...), tensor.Of(tensor.Float32))
	t := tensor.New(tensor.WithShape(tg.T.Shape()...), tensor.Of(tensor.Float32))
	rng := rand.New(rand.NewSource(1))
	for i, d := 0, x.Data().([]float32); i < len(d); i++ {
		d[i] = rng.Float32()
	}
	if arch.Task == model.TaskClassifier {
		td, classes := t.Data().([]float32), arch.Classes()
		for k := 0; k < batch; k++ {
			td[k*classes+k%classes] = 1
		}
	} else {
		copy(t.Data().([]float32), x.Data().([]float32))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := G.Let(tg.X, x); err != nil {
			b.Fatal(err)
		}
		if err := G.Let(tg.T, t); err != nil {
			b.Fatal(err)
		}
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
		if err := solver.Step(learnables); err != nil {
			b.Fatal(err)
		}
		vm.Reset()
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "images/s")
}
