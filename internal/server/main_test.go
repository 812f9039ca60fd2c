package server

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// test's server is closed in its cleanup, so what remains is a leak (a
// handler, batcher, watcher or connection left running).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, kernelPool...)
}

// kernelPool allows internal/model's kernel pool: one goroutine per core,
// started on the first parallel forward pass and kept for the process's
// life by design (a range waits for a core, never for a goroutine to
// start), so it is no request's and no server's. Its name depends on
// inlining, which -race changes.
var kernelPool = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/aeserve/aeserve/internal/model.poolTasks.func1.1"),
	goleak.IgnoreTopFunction("github.com/aeserve/aeserve/internal/model.parallelRun.poolTasks.func1.1"),
}
