package model

import (
	"fmt"
	"testing"
)

// BenchmarkSGEMM measures this build's matrix multiply on square matrices:
// the ceiling the model's effective GFLOP/s is compared with.
func BenchmarkSGEMM(b *testing.B) {
	for _, n := range []int{256, 1024} {
		b.Run(fmt.Sprintf("backend=%s/n=%d", SGEMMBackend, n), func(b *testing.B) {
			a, bb, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
			for i := range a {
				a[i], bb[i] = float32(i%7)/7, float32(i%5)/5
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sgemm(false, false, n, n, n, a, n, bb, n, 0, c, n)
			}
			b.ReportMetric(float64(b.N)*2*float64(n*n*n)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
