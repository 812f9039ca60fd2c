package model

import (
	"fmt"

	"gorgonia.org/tensor"
)

// MaxBucket is the largest batch compiled into one graph; larger inputs run
// in chunks. Buckets are powers of two, so padding wastes under half a pass.
const MaxBucket = 256

// Runner runs one half of a model. gorgonia graphs have fixed shapes and its
// VMs are not safe for concurrent use, so a Runner owns one graph and VM per
// batch-size bucket, built on first use, and must be used by one goroutine
// at a time (the batcher gives each worker its own). It runs the graphs
// with a plan rather than a TapeMachine: see plan.
type Runner struct {
	half    Half
	params  Params
	buckets map[int]*bucket
}

type bucket struct {
	size  int
	plan  *plan
	input *tensor.Dense
}

// NewRunner prepares a runner for half h; it fails if a needed half is not loaded.
func (m *Model) NewRunner(h Half) (*Runner, error) {
	for _, s := range stored(h) {
		if !m.Has(s) {
			return nil, fmt.Errorf("model %s: half %s is not loaded", m.Name, s)
		}
	}
	return &Runner{half: h, params: m.params, buckets: map[int]*bucket{}}, nil
}

// Half reports which half the runner computes.
func (r *Runner) Half() Half { return r.half }

func bucketFor(n int) int {
	b := 1
	for b < n && b < MaxBucket {
		b *= 2
	}
	return b
}

func (r *Runner) bucket(size int) (*bucket, error) {
	if b, ok := r.buckets[size]; ok {
		return b, nil
	}
	g, x, y, _, err := build(r.params, r.half, size, false)
	if err != nil {
		return nil, err
	}
	p, err := newPlan(g, x, y)
	if err != nil {
		return nil, err
	}
	b := &bucket{size: size, plan: p,
		input: tensor.New(tensor.WithShape(append([]int{size}, r.half.InShape()...)...), tensor.Of(tensor.Float32))}
	r.buckets[size] = b
	return b, nil
}

// Run computes n items: in holds n×InLen values, the result n×OutLen.
func (r *Runner) Run(in []float32, n int) ([]float32, error) {
	out := make([]float32, max(n, 0)*r.half.OutLen())
	if err := r.RunInto(out, in, n); err != nil {
		return nil, err
	}
	return out, nil
}

// RunInto is Run writing the result into out, which must hold n×OutLen
// values: with a reused out, a pass allocates almost nothing.
func (r *Runner) RunInto(out, in []float32, n int) error {
	inL, outL := r.half.InLen(), r.half.OutLen()
	if n < 1 || len(in) != n*inL {
		return fmt.Errorf("model: run %s: %d values for %d items, want %d", r.half, len(in), n, n*inL)
	}
	if len(out) != n*outL {
		return fmt.Errorf("model: run %s: room for %d values, want %d", r.half, len(out), n*outL)
	}
	for done := 0; done < n; {
		k := min(n-done, MaxBucket)
		b, err := r.bucket(bucketFor(k))
		if err != nil {
			return err
		}
		buf := b.input.Float32s()
		copy(buf, in[done*inL:(done+k)*inL])
		clear(buf[k*inL:]) // padding rows: computed, then ignored
		v, err := b.plan.run(b.input)
		if err != nil {
			return fmt.Errorf("model: run %s batch %d: %w", r.half, b.size, err)
		}
		y, err := data32(v)
		if err != nil {
			return err
		}
		copy(out[done*outL:(done+k)*outL], y)
		done += k
	}
	return nil
}

// Close releases the graphs.
func (r *Runner) Close() error {
	r.buckets = nil
	return nil
}
