package train

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// param is a weight tensor and its gradient, as a bound graph node offers them.
type param struct{ w, g *tensor.Dense }

func (p param) Value() G.Value         { return p.w }
func (p param) Grad() (G.Value, error) { return p.g, nil }
func (p param) Name() string           { return "param" }
func (p param) String() string         { return "param" }
func (p param) Format(fmt.State, rune) {}
func newParam(w []float32) param {
	return param{
		w: tensor.New(tensor.WithShape(len(w)), tensor.WithBacking(append([]float32(nil), w...))),
		g: tensor.New(tensor.WithShape(len(w)), tensor.Of(tensor.Float32)),
	}
}

// TestAdamMatchesGorgonia steps gorgonia's AdamSolver and Adam side by side
// over the same gradients, on parameters small and large enough to be
// split across the cores, and wants the same weights after every step.
func TestAdamMatchesGorgonia(t *testing.T) {
	for _, lr := range []float64{1e-3, 3e-2} {
		t.Run(fmt.Sprint("lr=", lr), func(t *testing.T) {
			rng := rand.New(rand.NewSource(7))
			sizes := []int{1, 10, 33, adamSplit + 7}
			var ref, got []G.ValueGrad
			for _, n := range sizes {
				w := make([]float32, n)
				for i := range w {
					w[i] = float32(rng.NormFloat64())
				}
				ref, got = append(ref, newParam(w)), append(got, newParam(w))
			}
			solver := G.NewAdamSolver(G.WithLearnRate(lr))
			adam := NewAdam(lr)
			for step := 1; step <= 6; step++ {
				for k := range ref {
					rg, gg := ref[k].(param).g.Float32s(), got[k].(param).g.Float32s()
					for i := range rg {
						v := float32(rng.NormFloat64() * math.Pow(10, float64(rng.Intn(7)-5)))
						if i%17 == 3 {
							v = 0 // a gradient that vanishes
						}
						rg[i], gg[i] = v, v
					}
				}
				if err := solver.Step(ref); err != nil {
					t.Fatal(err)
				}
				if err := adam.Step(got); err != nil {
					t.Fatal(err)
				}
				for k := range ref {
					rw, gw := ref[k].(param).w.Float32s(), got[k].(param).w.Float32s()
					for i := range rw {
						// amd64 rounds every operation on both sides;
						// elsewhere Go may fuse a multiply-add in one.
						if math.Float32bits(rw[i]) != math.Float32bits(gw[i]) &&
							(runtime.GOARCH == "amd64" || math.Abs(float64(rw[i]-gw[i])) > 1e-6*math.Abs(float64(rw[i]))) {
							t.Fatalf("step %d, parameter %d[%d]: %v, gorgonia %v", step, k, i, gw[i], rw[i])
						}
					}
					for i, v := range got[k].(param).g.Float32s() {
						if v != 0 {
							t.Fatalf("step %d, parameter %d: gradient %d not zeroed", step, k, i)
						}
					}
				}
			}
		})
	}
}
