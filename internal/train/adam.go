package train

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Adam is gorgonia's AdamSolver (β1 0.9, β2 0.999, ε 1e-8, no
// regularisation, clipping or batch scaling: as NewAdamSolver with only a
// learning rate) fused into one pass over each parameter's float32 memory.
// gorgonia's runs a dozen whole-tensor operations per parameter per step,
// cloning four tensors for them: two fifths of a dense model's step.
// The arithmetic is the same, operation for operation in float32, so the
// updates are gorgonia's (TestAdamMatchesGorgonia).
type Adam struct {
	eta, beta1, beta2, eps float64
	iter                   int
	m, v                   [][]float32 // first and second moments, per parameter
}

// NewAdam returns an Adam with gorgonia's defaults and learning rate eta.
func NewAdam(eta float64) *Adam {
	return &Adam{eta: eta, beta1: 0.9, beta2: 0.999, eps: 1e-8}
}

// adamSplit is the parameter size from which a step is shared out across
// the cores.
const adamSplit = 1 << 15

// Step applies one update to every parameter from its gradient, in place,
// and zeroes the gradients, as gorgonia's Step does.
func (a *Adam) Step(model []G.ValueGrad) error {
	if a.m == nil {
		a.m, a.v = make([][]float32, len(model)), make([][]float32, len(model))
	}
	if len(model) != len(a.m) {
		return fmt.Errorf("adam: %d parameters, was %d", len(model), len(a.m))
	}
	a.iter++
	// As gorgonia: corrections in float64, their inverses in float32.
	correction1 := 1 - math.Pow(a.beta1, float64(a.iter))
	correction2 := 1 - math.Pow(a.beta2, float64(a.iter))
	c := adamConsts{
		beta1: float32(a.beta1), beta2: float32(a.beta2),
		omβ1: float32(1) - float32(a.beta1), omβ2: float32(1) - float32(a.beta2),
		eps: float32(a.eps), negEta: -float32(a.eta),
		corr1: float32(1) / float32(correction1), corr2: float32(1) / float32(correction2),
	}
	for i, n := range model {
		w, err := float32s(n.Value())
		if err != nil {
			return err
		}
		gv, err := n.Grad()
		if err != nil {
			return err
		}
		g, err := float32s(gv)
		if err != nil {
			return err
		}
		if len(g) != len(w) {
			return fmt.Errorf("adam: parameter %d: %d weights, %d gradients", i, len(w), len(g))
		}
		if a.m[i] == nil {
			a.m[i], a.v[i] = make([]float32, len(w)), make([]float32, len(w))
		}
		m, v := a.m[i], a.v[i]
		if len(w) < adamSplit {
			c.update(w, g, m, v)
			continue
		}
		p := runtime.GOMAXPROCS(0)
		var wg sync.WaitGroup
		for k := 0; k < p; k++ {
			lo, hi := k*len(w)/p, (k+1)*len(w)/p
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.update(w[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi])
			}()
		}
		wg.Wait()
	}
	return nil
}

type adamConsts struct {
	beta1, beta2, omβ1, omβ2, eps, negEta, corr1, corr2 float32
}

// update is gorgonia's AdamSolver.Step for one float32 tensor, element by
// element, each rounding where gorgonia's tensor operations round.
func (c adamConsts) update(w, g, m, v []float32) {
	g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
	for i, gi := range g {
		t1 := gi * c.omβ1
		g2 := gi * gi
		g2 = g2 * c.omβ2
		mi := float32(m[i]*c.beta1) + t1
		vi := float32(v[i]*c.beta2) + g2
		m[i], v[i] = mi, vi
		mHat := mi * c.corr1
		vHat := vi * c.corr2
		vHat = float32(math.Sqrt(float64(vHat))) + c.eps
		mHat = mHat * c.negEta
		w[i] += mHat / vHat
		g[i] = 0
	}
}

func float32s(v G.Value) ([]float32, error) {
	d, ok := v.(*tensor.Dense)
	if !ok || d.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("adam: want a float32 tensor, got %T", v)
	}
	return d.Float32s(), nil
}
