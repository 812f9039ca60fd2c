package model

import (
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
)

type countRanger struct {
	hits  []atomic.Int32
	panic int // item whose range panics, or -1
}

func (c *countRanger) run(_, lo, hi int) {
	for i := lo; i < hi; i++ {
		c.hits[i].Add(1)
	}
	if c.panic >= lo && c.panic < hi {
		panic("boom")
	}
}

// Every item runs exactly once, whatever n, and repeated calls reuse the
// caller's done channel.
func TestParallelRunCoversEveryItemOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	done := make(chan any, 4)
	for _, n := range []int{1, 2, 3, 4, 5, 17} {
		r := &countRanger{hits: make([]atomic.Int32, n), panic: -1}
		parallelRun(n, workers(n), r, done)
		for i := range r.hits {
			if h := r.hits[i].Load(); h != 1 {
				t.Fatalf("n=%d: item %d ran %d times", n, i, h)
			}
		}
	}
}

// A panic on a pool goroutine comes back to the caller as a *KernelPanic
// (rather than ending the process), after every other range has finished.
func TestParallelRunReturnsPanicsToCaller(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	const n = 8
	r := &countRanger{hits: make([]atomic.Int32, n), panic: n - 1} // in the last range: a pool goroutine's
	func() {
		defer func() {
			v := recover()
			var kp *KernelPanic
			if err, ok := v.(error); !ok || !errors.As(err, &kp) || kp.Value != "boom" || len(kp.Stack) == 0 {
				t.Fatalf("recovered %v (%T), want a *KernelPanic of \"boom\" with a stack", v, v)
			}
		}()
		parallelRun(n, workers(n), r, nil)
		t.Fatal("parallelRun returned normally")
	}()
	for i := range r.hits {
		if h := r.hits[i].Load(); h != 1 {
			t.Fatalf("item %d ran %d times: a range was cut short or not awaited", i, h)
		}
	}
	// The pool survives: the next call works.
	ok := &countRanger{hits: make([]atomic.Int32, n), panic: -1}
	parallelRun(n, workers(n), ok, nil)
	if ok.hits[n-1].Load() != 1 {
		t.Fatal("the pool stopped working after a panic")
	}
}

// parallelRun splits into exactly the p ranges it is given, whatever
// GOMAXPROCS says by then: callers size per-worker buffers for p, and Go
// changes GOMAXPROCS when a container's CPU limit changes.
func TestParallelRunUsesTheCallersWorkerCount(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	for _, p := range []int{1, 2, 3} {
		var seen [8]atomic.Int32
		r := &workerRanger{seen: &seen}
		parallelRun(16, p, r, nil)
		for w := range seen {
			if got, want := seen[w].Load() != 0, w < p; got != want {
				t.Fatalf("p=%d: worker %d ran: %v", p, w, got)
			}
		}
	}
}

type workerRanger struct{ seen *[8]atomic.Int32 }

func (r *workerRanger) run(w, _, _ int) { r.seen[w].Add(1) }
