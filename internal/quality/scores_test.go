package quality

import (
	"math"
	"math/rand"
	"testing"
)

func TestScores(t *testing.T) {
	x := []float32{0, 1, 0.5, 0.5, 0, 0, 1, 1}
	y := []float32{0, 1, 0.5, 0.5, 1, 1, 0, 0}
	s := Scores(x, y, 2, 4)
	if s[0].MSE != 0 || s[1].MSE != 1 {
		t.Errorf("MSE %v, %v; want 0 and 1", s[0].MSE, s[1].MSE)
	}
	// The first image's BCE is the entropy of its 0.5 pixels (ln 2 each) and
	// next to nothing for the exact 0 and 1.
	if want := math.Ln2 / 2; math.Abs(s[0].BCE-want) > 1e-5 {
		t.Errorf("BCE %v, want %v", s[0].BCE, want)
	}
	if want := -math.Log(1e-7); math.Abs(s[1].BCE-want) > 1e-3 {
		t.Errorf("BCE of a wholly wrong image %v, want %v", s[1].BCE, want)
	}
}

// The shortcut for pixels of exactly 0 or 1 must give the textbook formula's
// value to the bit: the distributions in the manifests were computed by it.
func TestScoresMatchFormula(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const n, per = 20, 784
	x, y := make([]float32, n*per), make([]float32, n*per)
	for i := range x {
		switch rng.Intn(3) {
		case 0:
			x[i] = 0
		case 1:
			x[i] = 1
		default:
			x[i] = rng.Float32()
		}
		y[i] = rng.Float32()
	}
	got := Scores(x, y, n, per)
	for i := range n {
		var bce float64
		for j := i * per; j < (i+1)*per; j++ {
			c := math.Min(math.Max(float64(y[j]), 1e-7), 1-1e-7)
			tv := float64(x[j])
			bce -= tv*math.Log(c) + (1-tv)*math.Log(1-c)
		}
		if want := bce / per; got[i].BCE != want {
			t.Fatalf("image %d: BCE %v, the formula gives %v", i, got[i].BCE, want)
		}
	}
}

func TestPercentiles(t *testing.T) {
	v := make([]float64, 1000)
	for i := range v {
		v[i] = float64(1000 - i) // 1..1000, reversed
	}
	p := PercentilesOf(v)
	if p.P50 != 500 || p.P90 != 900 || p.P99 != 990 || p.P999 != 999 || p.Max != 1000 {
		t.Errorf("%+v", p)
	}
	if (PercentilesOf(nil) != Percentiles{}) {
		t.Error("percentiles of nothing")
	}
}

func TestROCAUC(t *testing.T) {
	for _, tc := range []struct {
		name     string
		neg, pos []float64
		want     float64
	}{
		{"separated", []float64{1, 2, 3}, []float64{4, 5}, 1},
		{"reversed", []float64{4, 5}, []float64{1, 2, 3}, 0},
		{"all tied", []float64{1, 1}, []float64{1, 1, 1}, 0.5},
		{"one swap", []float64{1, 2, 4}, []float64{3, 5}, 5.0 / 6},
	} {
		if got := ROCAUC(tc.neg, tc.pos); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// Against the definition, counting pairs, on random scores with ties.
	rng := rand.New(rand.NewSource(1))
	neg, pos := make([]float64, 300), make([]float64, 200)
	for i := range neg {
		neg[i] = float64(rng.Intn(50))
	}
	for i := range pos {
		pos[i] = float64(rng.Intn(50) + 10)
	}
	var pairs float64
	for _, p := range pos {
		for _, n := range neg {
			switch {
			case p > n:
				pairs++
			case p == n:
				pairs += 0.5
			}
		}
	}
	if got, want := ROCAUC(neg, pos), pairs/float64(len(neg)*len(pos)); math.Abs(got-want) > 1e-12 {
		t.Errorf("ROCAUC %v, pair count %v", got, want)
	}
	if !math.IsNaN(ROCAUC(nil, pos)) {
		t.Error("AUC without negatives")
	}
}

func TestFastScores(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	const n, per = 50, 784
	x, y := make([]float32, n*per), make([]float32, n*per)
	for i := range x {
		switch rng.Intn(4) {
		case 0:
			x[i] = rng.Float32()
		case 1:
			x[i] = 1
		}
		switch rng.Intn(4) {
		case 0:
			y[i] = 0 // clipped
		case 1:
			y[i] = 1
		default:
			y[i] = rng.Float32()
		}
	}
	want := Scores(x, y, n, per)
	got := make([]Score, n)
	FastScores(got, x, y, per)
	for i := range n {
		for _, p := range [][3]any{{"MSE", got[i].MSE, want[i].MSE}, {"BCE", got[i].BCE, want[i].BCE}} {
			g, w := p[1].(float64), p[2].(float64)
			if math.Abs(g-w) > 1e-5*math.Abs(w) {
				t.Errorf("image %d: %s %v, Scores gives %v", i, p[0], g, w)
			}
		}
	}
	for _, v := range []float32{1e-7, 1e-3, 0.3, 0.5, 0.70710677, 0.7071068, 0.99, 1 - 1e-7, 1, 2, 1e6} {
		if g, w := float64(log32(v)), math.Log(float64(v)); math.Abs(g-w) > 2e-7*math.Max(1, math.Abs(w)) {
			t.Errorf("log32(%v) = %v, want %v", v, g, w)
		}
	}
}
