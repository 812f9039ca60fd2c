package batch

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// Batcher's workers, timers and waiting callers must all end by Close, and
// a caller that gives up must not leave one behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
