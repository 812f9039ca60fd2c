package model_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/aeserve/aeserve/internal/vec"
)

// AESERVE_KERNELS picks the kernel path for the whole test binary, as the
// server's --kernels does, so that benchmarks can be run on each path
// (bench/kernels.sh sets it); tests that compare paths switch themselves.
func TestMain(m *testing.M) {
	if p := os.Getenv("AESERVE_KERNELS"); p != "" {
		if err := vec.Use(vec.Path(p)); err != nil {
			fmt.Fprintln(os.Stderr, "AESERVE_KERNELS:", err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}
