package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// plan runs an inference graph on the calling goroutine: the graph's own
// ops, in the graph's topological order, with the values passed straight
// from op to op.
//
// It exists because of how gorgonia's TapeMachine.RunAll executes: it locks
// the OS thread and runs the program on a new goroutine, so every call
// hands the work between threads twice and wakes an idle core to do it. On
// the batch-1 full pass that cost a third of the time (BenchmarkExecutor:
// about 0.21 ms under the TapeMachine, 0.14 ms as a plan). An inference
// graph holds nothing but this package's ops and constant parameters, so
// this walk is all a VM does for it; training, which needs gradients and
// the tape, keeps the TapeMachine. A test holds the two to bit-identical
// outputs.
type plan struct {
	steps []planStep
	vals  []G.Value // one per node: parameters at build, op outputs as they run
	in    int       // the input node's slot
	out   int       // the output node's slot
}

type planStep struct {
	op   G.Op
	args []int     // slots of the op's inputs, in order
	vs   []G.Value // reused argument list
	dst  int       // slot of the result
	name string    // for errors
}

// newPlan orders g's ops for execution. x is the graph's single input, bound
// per run; every other leaf must already hold its value.
func newPlan(g *G.ExprGraph, x, y *G.Node) (*plan, error) {
	sorted, err := G.Sort(g) // the root first
	if err != nil {
		return nil, fmt.Errorf("model: order graph: %w", err)
	}
	p := &plan{vals: make([]G.Value, len(sorted))}
	slot := make(map[int64]int, len(sorted))
	for i := len(sorted) - 1; i >= 0; i-- {
		n := sorted[i]
		s := len(sorted) - 1 - i
		slot[n.ID()] = s
		switch {
		case n == x:
			p.in = s
		case n.Op() == nil:
			if n.Value() == nil {
				return nil, fmt.Errorf("model: graph leaf %s has no value", n.Name())
			}
			p.vals[s] = n.Value()
		default:
			st := planStep{op: n.Op(), dst: s, name: n.Name()}
			for it := g.From(n.ID()); it.Next(); {
				c, ok := slot[it.Node().ID()]
				if !ok {
					return nil, fmt.Errorf("model: %s: an input comes after it in the graph order", n.Name())
				}
				st.args = append(st.args, c)
			}
			st.vs = make([]G.Value, len(st.args))
			p.steps = append(p.steps, st)
		}
		if n == y {
			p.out = s
		}
	}
	return p, nil
}

// run computes the graph's output for input v. The result belongs to the
// last op and is overwritten by the next run.
func (p *plan) run(v G.Value) (G.Value, error) {
	p.vals[p.in] = v
	for i := range p.steps {
		st := &p.steps[i]
		for j, a := range st.args {
			st.vs[j] = p.vals[a]
		}
		out, err := st.op.Do(st.vs...)
		if err != nil {
			return nil, fmt.Errorf("model: %s: %w", st.name, err)
		}
		p.vals[st.dst] = out
	}
	return p.vals[p.out], nil
}
