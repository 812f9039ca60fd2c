package model

import (
	"fmt"

	"gorgonia.org/tensor"
)

// MaxChunk is the most items one pass runs; larger inputs run in chunks of
// it, so a runner's buffers never exceed MaxChunk items.
const MaxChunk = 256

// Runner runs one half of a model. gorgonia's VMs, and this package's ops
// with their buffers, are not safe for concurrent use, so a Runner must be
// used by one goroutine at a time (the batcher gives each worker its own).
//
// A Runner owns one inference graph, built on first use for MaxChunk items,
// and runs it with a plan (see plan) on exactly the items it is given: every
// op sizes its work and its output from its input's first dimension. So a
// batch of 21 costs 21 images, not a padded 32, and the buffers grow only to
// the largest batch actually run.
type Runner struct {
	half      Half
	arch      *Arch
	inL, outL int // per item
	params    Params
	plan      *plan
	input     []float32     // the items of the current pass, grown on demand
	view      *tensor.Dense // input's first k items, rebuilt when k changes
	q8        *int8Net      // the int8 path, for a model switched to it (int8.go)
}

// NewRunner prepares a runner for stage h; it fails if the architecture has
// no such stage or a stored stage it needs is not loaded.
func (m *Model) NewRunner(h Half) (*Runner, error) {
	parts, err := m.Arch.parts(h)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", m.Name, err)
	}
	for _, s := range parts {
		if !m.loaded[s.Half] {
			return nil, fmt.Errorf("model %s: stage %s is not loaded", m.Name, s.Half)
		}
	}
	r := &Runner{half: h, arch: m.Arch, inL: m.Arch.InLen(h), outL: m.Arch.OutLen(h), params: m.params}
	if m.q8 != nil {
		r.q8 = newInt8Net(m.q8, parts)
	}
	return r, nil
}

// Half reports which stage the runner computes.
func (r *Runner) Half() Half { return r.half }

// InLen and OutLen are the values per item of the runner's input and output.
func (r *Runner) InLen() int  { return r.inL }
func (r *Runner) OutLen() int { return r.outL }

// Run computes n items: in holds n×InLen values, the result n×OutLen.
func (r *Runner) Run(in []float32, n int) ([]float32, error) {
	out := make([]float32, max(n, 0)*r.outL)
	if err := r.RunInto(out, in, n); err != nil {
		return nil, err
	}
	return out, nil
}

// RunInto is Run writing the result into out, which must hold n×OutLen
// values: with a reused out, a pass allocates almost nothing.
func (r *Runner) RunInto(out, in []float32, n int) error {
	inL, outL := r.inL, r.outL
	if n < 1 || len(in) != n*inL {
		return fmt.Errorf("model: run %s: %d values for %d items, want %d", r.half, len(in), n, n*inL)
	}
	if len(out) != n*outL {
		return fmt.Errorf("model: run %s: room for %d values, want %d", r.half, len(out), n*outL)
	}
	if r.q8 != nil {
		for done := 0; done < n; done += MaxChunk {
			k := min(n-done, MaxChunk)
			r.q8.run(in[done*inL:(done+k)*inL], out[done*outL:(done+k)*outL], k)
		}
		return nil
	}
	if r.plan == nil {
		gr, err := r.arch.build(r.params, r.half, MaxChunk, false)
		if err != nil {
			return err
		}
		if r.plan, err = newPlan(gr.g, gr.x, gr.y); err != nil {
			return err
		}
	}
	for done := 0; done < n; {
		k := min(n-done, MaxChunk)
		v, err := r.plan.run(r.inputView(in[done*inL:(done+k)*inL], k))
		if err != nil {
			return fmt.Errorf("model: run %s on %d items: %w", r.half, k, err)
		}
		y, err := data32(v)
		if err != nil {
			return err
		}
		if len(y) != k*outL {
			return fmt.Errorf("model: run %s on %d items: %d values out, want %d", r.half, k, len(y), k*outL)
		}
		copy(out[done*outL:(done+k)*outL], y)
		done += k
	}
	return nil
}

// inputView copies k items into the runner's input buffer and returns them
// as a tensor of k rows. Copying rather than wrapping in keeps the tensor
// from being rebuilt on every call: only a change of k does that.
func (r *Runner) inputView(in []float32, k int) *tensor.Dense {
	if cap(r.input) < len(in) {
		r.input = make([]float32, len(in))
		r.view = nil
	}
	copy(r.input[:len(in)], in)
	if r.view == nil || r.view.Shape()[0] != k {
		r.view = tensor.New(tensor.WithShape(append([]int{k}, r.arch.InShape(r.half)...)...), tensor.WithBacking(r.input[:len(in)]))
	}
	return r.view
}

// Close releases the graph.
func (r *Runner) Close() error {
	r.plan = nil
	return nil
}
