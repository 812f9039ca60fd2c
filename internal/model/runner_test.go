package model

import (
	"math"
	"math/rand"
	"testing"

	"github.com/aeserve/aeserve/weights"
)

// A batch's results do not depend on its size, on how it is chunked and
// shared among lanes, on what ran before it, nor on what the output buffer
// held: every item equals the same item run alone.
func TestRunnerBatchesEqualSingleItems(t *testing.T) {
	m, err := LoadFS(weights.FS, "conv")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		h     Half
		n     int
		check []int // items compared with running them alone
	}{
		{Full, 7, []int{0, 1, 2, 3, 4, 5, 6}},
		{Encoder, MaxChunk + 44, []int{0, MaxChunk - 1, MaxChunk, MaxChunk + 43}}, // a full chunk, then 44
	} {
		r, err := m.NewRunner(tc.h)
		if err != nil {
			t.Fatal(err)
		}
		if p := r.lanesFor(tc.n); p != workers(tc.n) {
			t.Fatalf("%s n=%d: %d lanes, want one per core (%d): the test would not cover the lanes", tc.h, tc.n, p, workers(tc.n))
		}
		inL, outL := m.Arch.InLen(tc.h), m.Arch.OutLen(tc.h)
		rng := rand.New(rand.NewSource(7))
		in := make([]float32, tc.n*inL)
		for i := range in {
			in[i] = rng.Float32()
		}
		out := make([]float32, tc.n*outL)
		for i := range out {
			out[i] = float32(math.NaN())
		}
		if err := r.RunInto(out, in, tc.n); err != nil {
			t.Fatal(err)
		}
		for i, v := range out {
			if v != v {
				t.Fatalf("%s n=%d: value %d was never written", tc.h, tc.n, i)
			}
		}
		for _, i := range tc.check {
			one, err := r.Run(in[i*inL:(i+1)*inL], 1)
			if err != nil {
				t.Fatal(err)
			}
			for j, want := range one {
				if got := out[i*outL+j]; math.Abs(float64(got-want)) > 1e-5+1e-4*math.Abs(float64(want)) {
					t.Fatalf("%s n=%d: item %d value %d: %v in the batch, %v alone", tc.h, tc.n, i, j, got, want)
				}
			}
		}
	}
}

func TestRunnerRejectsWrongSizes(t *testing.T) {
	m, err := LoadFS(weights.FS, "conv")
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.NewRunner(Decoder)
	if err != nil {
		t.Fatal(err)
	}
	inL, outL := r.InLen(), r.OutLen()
	for _, tc := range []struct {
		name       string
		out, in, n int
	}{
		{"no items", 0, 0, 0},
		{"short input", 2 * outL, 2*inL - 1, 2},
		{"long input", 2 * outL, 2*inL + 1, 2},
		{"short output", 2*outL - 1, 2 * inL, 2},
		{"long output", 2*outL + 1, 2 * inL, 2},
	} {
		if err := r.RunInto(make([]float32, tc.out), make([]float32, tc.in), tc.n); err == nil {
			t.Errorf("%s: RunInto accepted it", tc.name)
		}
	}
}
