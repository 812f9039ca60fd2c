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
