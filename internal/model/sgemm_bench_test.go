package model

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/aeserve/aeserve/internal/vec"
)

// BenchmarkSGEMM measures this build's matrix multiply on square matrices,
// on one core and on every core at once (one independent multiply per
// core, as the kernels run): the latter is the ceiling the model's
// effective GFLOP/s is compared with.
func BenchmarkSGEMM(b *testing.B) {
	for _, n := range []int{256, 1024} {
		for _, threads := range []int{1, runtime.GOMAXPROCS(0)} {
			b.Run(fmt.Sprintf("backend=%s/kernels=%s/n=%d/threads=%d", SGEMMBackend, vec.Active(), n, threads), func(b *testing.B) {
				mats := make([][3][]float32, threads)
				for t := range mats {
					for k := range mats[t] {
						mats[t][k] = make([]float32, n*n)
						for i := range mats[t][k] {
							mats[t][k][i] = float32((i+k)%7) / 7
						}
					}
				}
				b.ResetTimer()
				var wg sync.WaitGroup
				for t := range mats {
					wg.Add(1)
					go func() {
						defer wg.Done()
						m := mats[t]
						for i := 0; i < b.N; i++ {
							sgemm(false, false, n, n, n, m[0], n, m[1], n, 0, m[2], n)
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(threads)*float64(b.N)*2*float64(n*n*n)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
