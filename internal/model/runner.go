package model

import (
	"fmt"

	"gorgonia.org/tensor"
)

// MaxChunk is the most items a lane runs at once (laneChunk is never more),
// so a runner's buffers never exceed MaxChunk items.
const MaxChunk = 256

// Runner runs one half of a model. gorgonia's VMs, and this package's ops
// with their buffers, are not safe for concurrent use, so a Runner must be
// used by one goroutine at a time (the batcher gives each worker its own).
//
// A Runner owns one inference graph per core (a lane), each built on first
// use for MaxChunk items, and runs them with plans (see plan) on exactly the
// items it is given: every op sizes its work and its output from its input's
// first dimension. So a batch of 21 costs 21 images, not a padded 32, and
// the buffers grow only to the largest piece actually run.
//
// A pass big enough (lanesFor) splits its items into one contiguous share
// per lane, and each lane takes its share through the whole network, a few
// items at a time (laneChunk), on its own core. A lane's activations stay in
// its core's cache from one layer to the next, and no core waits for another
// until the pass ends. The layers used to split every batch across the
// cores instead and wait for each other at every layer: the conv model's
// full pass at batch 64 on 2 cores ran at 18,400–19,700 images/s that way,
// and runs at 26,800–27,100 in lanes (BenchmarkInfer, 2 vCPUs of an AMD
// EPYC Zen 5).
type Runner struct {
	half      Half
	arch      *Arch
	inL, outL int   // per item
	inShape   []int // per item
	params    Params
	lanes     []*lane
	errs      []error // per lane, of the current pass
	chunk     int     // laneChunk
	flops     int     // per item
	job       laneJob
	done      chan any            // parallelRun's, reused
	q8        map[string]*q8Layer // the int8 path's layers, for a model switched to it (int8.go)
	parts     []*Stage            // the stages the int8 lanes run
}

// laneBytes is how much of a core's cache a lane's layer input and output
// may take between them: a lane takes as many items at a time through the
// network as fit, so that a layer's output is still in the core's L2 when
// the next layer reads it. (Zen 5 and recent Intel cores have 1–2 MiB of
// L2; half a MiB leaves room for the weights and the GEMM's own blocks.)
const laneBytes = 512 << 10

// laneChunk is the most items a lane of stage h takes through the network
// at once: laneBytes over the largest input-plus-output of one layer for
// one item. The conv model's is 125 KB (32×14×14 in, 32×28×28 out), so 4
// at a time; a dense model's fit a whole batch.
func laneChunk(a *Arch, h Half) int {
	parts, _ := a.parts(h)
	most := 1
	for _, s := range parts {
		for _, l := range s.Layers {
			out := 1
			for _, d := range l.outShape() {
				out *= d
			}
			most = max(most, 4*(l.inLen()+out))
		}
	}
	return max(1, min(MaxChunk, laneBytes/most))
}

// lane is one core's inference graph and input buffer, or its int8 layers.
type lane struct {
	q8    *int8Net
	plan  *plan
	input []float32     // the items of the current piece, grown on demand
	view  *tensor.Dense // input's first k items, rebuilt when k changes
	prev  *tensor.Dense // the view before, kept as the ops keep theirs (see opBase.dest)
}

// laneJob is RunInto's parallel body: worker w runs items [lo, hi) on lane w.
type laneJob struct {
	r       *Runner
	in, out []float32
}

func (j *laneJob) run(w, lo, hi int) {
	j.r.errs[w] = j.r.runLane(j.r.lanes[w], j.in, j.out, lo, hi)
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
	r := &Runner{half: h, arch: m.Arch, inL: m.Arch.InLen(h), outL: m.Arch.OutLen(h), inShape: m.Arch.InShape(h), params: m.params,
		chunk: laneChunk(m.Arch, h), flops: m.Arch.FLOPs(h)}
	if m.q8 != nil {
		r.q8, r.parts = m.q8, parts
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
	p := r.lanesFor(n)
	if err := r.growLanes(p); err != nil {
		return err
	}
	if p == 1 {
		return r.runLane(r.lanes[0], in, out, 0, n)
	}
	r.job = laneJob{r: r, in: in, out: out}
	if cap(r.done) < p {
		r.done = make(chan any, p)
	}
	parallelRun(n, p, &r.job, r.done)
	r.job = laneJob{} // drop the references to this pass's slices
	for _, err := range r.errs[:p] {
		if err != nil {
			return err
		}
	}
	return nil
}

// laneFLOPs is the least work worth a lane of its own: handing a share to
// another core and waiting for it costs tens of µs on a VM whose idle vCPU
// has to be woken, and 16 MFLOP is about 130 µs of a core's work. Below it
// (the dense models' batches up to a few hundred) a pass stays on one core;
// the conv models get two lanes from 4 items.
const laneFLOPs = 16e6

// lanesFor is how many lanes a pass of n items uses.
func (r *Runner) lanesFor(n int) int {
	return max(1, min(workers(n), int(float64(n)*float64(r.flops)/laneFLOPs)))
}

// growLanes builds lanes until there are p. A lane's convolutions run
// serially: the lanes are what share out the cores.
func (r *Runner) growLanes(p int) error {
	for len(r.lanes) < p {
		if r.q8 != nil {
			net := newInt8Net(r.q8, r.parts)
			net.serial = true
			r.lanes = append(r.lanes, &lane{q8: net})
			r.errs = append(r.errs, nil)
			continue
		}
		gr, err := r.arch.build(r.params, r.half, MaxChunk, false)
		if err != nil {
			return err
		}
		pl, err := newPlan(gr.g, gr.x, gr.y)
		if err != nil {
			return err
		}
		for _, st := range pl.steps {
			if op, ok := st.op.(*convOp); ok {
				op.sc.serial = true
			}
		}
		r.lanes = append(r.lanes, &lane{plan: pl})
		r.errs = append(r.errs, nil)
	}
	return nil
}

// runLane computes items [lo, hi) of in into out on lane l, r.chunk at a
// time.
func (r *Runner) runLane(l *lane, in, out []float32, lo, hi int) error {
	inL, outL := r.inL, r.outL
	for done := lo; done < hi; {
		k := min(hi-done, r.chunk)
		if l.q8 != nil {
			l.q8.run(in[done*inL:(done+k)*inL], out[done*outL:(done+k)*outL], k)
			done += k
			continue
		}
		v, err := l.plan.run(l.inputView(in[done*inL:(done+k)*inL], k, r.inShape))
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

// inputView copies k items into the lane's input buffer and returns them
// as a tensor of k rows. Copying rather than wrapping in keeps the tensor
// from being rebuilt on every call: only a k other than the last two does.
func (l *lane) inputView(in []float32, k int, shape []int) *tensor.Dense {
	if cap(l.input) < len(in) {
		l.input = make([]float32, len(in))
		l.view, l.prev = nil, nil
	}
	copy(l.input[:len(in)], in)
	switch {
	case l.view != nil && l.view.Shape()[0] == k:
	case l.prev != nil && l.prev.Shape()[0] == k:
		l.view, l.prev = l.prev, l.view
	default:
		l.view, l.prev = tensor.New(tensor.WithShape(append([]int{k}, shape...)...), tensor.WithBacking(l.input[:len(in)])), l.view
	}
	return l.view
}

// Close releases the graphs.
func (r *Runner) Close() error {
	r.lanes = nil
	return nil
}
