package quality_test

import (
	"math/rand"
	"testing"

	"github.com/aeserve/aeserve/internal/mnistdata"
	"github.com/aeserve/aeserve/internal/quality"
	"github.com/aeserve/aeserve/internal/train"
)

// scoreInputs are 64 MNIST test digits and a stand-in for their
// reconstructions (each pixel moved up to 4% of the way to grey, as a
// sigmoid's outputs sit near but not at 0 and 1): the branches of the
// scoring loop meet the runs of 0s and 1s of real digits.
func scoreInputs(b *testing.B) (x, y []float32, n int) {
	b.Helper()
	imgs, total, err := train.ReadImages(mnistdata.File(b, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		b.Fatal(err)
	}
	n = min(64, total)
	x = imgs[:n*784]
	y = make([]float32, len(x))
	rng := rand.New(rand.NewSource(1))
	for i, v := range x {
		y[i] = v + (0.5-v)*0.04*rng.Float32()
	}
	return x, y, n
}

// The reference (float64 logarithms) against the serving path's.
func BenchmarkScores(b *testing.B) {
	x, y, n := scoreInputs(b)
	b.ReportAllocs()
	for b.Loop() {
		quality.Scores(x, y, n, 784)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/image")
}

func BenchmarkFastScores(b *testing.B) {
	x, y, n := scoreInputs(b)
	dst := make([]quality.Score, n)
	b.ReportAllocs()
	for b.Loop() {
		quality.FastScores(dst, x, y, 784)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/image")
}
