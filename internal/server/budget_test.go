package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func testBudget(t *testing.T, size int64, wait time.Duration) *decodeBudget {
	t.Helper()
	b, err := newDecodeBudget(size, wait, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waiters(b *decodeBudget) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiters.Len()
}

// First come, first served: a large request waiting for room is not
// overtaken by small ones that would fit, and is served as soon as it fits.
func TestDecodeBudgetOrder(t *testing.T) {
	b := testBudget(t, 100, guard)
	ctx := context.Background()
	rel60, err := b.acquire(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	var mu sync.Mutex
	got := func(name string, n int64) chan func() {
		ch := make(chan func(), 1)
		go func() {
			rel, err := b.acquire(ctx, n)
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			ch <- rel
		}()
		return ch
	}
	big := got("big", 80)
	waitFor(t, "big to wait", func() bool { return waiters(b) == 1 })
	small := got("small", 30) // would fit (60+30 ≤ 100), but big came first
	waitFor(t, "small to wait", func() bool { return waiters(b) == 2 })
	rel60()
	relBig := <-big
	select {
	case <-small:
		t.Fatal("small ran alongside big, beyond the budget")
	case <-time.After(20 * time.Millisecond):
	}
	relBig()
	(<-small)()
	if order[0] != "big" || order[1] != "small" || b.used != 0 {
		t.Errorf("order %v, %d left used", order, b.used)
	}
	// More than the whole budget is clamped to it (Config keeps it ≥ MaxPixels).
	rel, err := b.acquire(ctx, 1000)
	if err != nil || b.used != 100 {
		t.Fatalf("acquire beyond the size: %v, used %d", err, b.used)
	}
	rel()
	rel() // a second release is a no-op
	if b.used != 0 {
		t.Errorf("used %d after a double release", b.used)
	}
}

// A wait ends with the request's context, or after the wait, and leaves
// nothing behind; the waiters behind a leaver are served.
func TestDecodeBudgetWaitEnds(t *testing.T) {
	b := testBudget(t, 100, 50*time.Millisecond)
	rel, _ := b.acquire(context.Background(), 100)
	_, err := b.acquire(context.Background(), 1)
	var p *Problem
	if !errors.As(err, &p) || p.Status != 503 || p.RetryAfter == 0 {
		t.Fatalf("after the wait: %v, want 503 with Retry-After", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := b.acquire(ctx, 1); done <- err }()
	waitFor(t, "the waiter", func() bool { return waiters(b) == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
	rel()
	if b.used != 0 || waiters(b) != 0 {
		t.Errorf("used %d, %d waiters", b.used, waiters(b))
	}
	// No wait at all: refused at once.
	now := testBudget(t, 10, 0)
	r, _ := now.acquire(context.Background(), 10)
	if _, err := now.acquire(context.Background(), 1); !errors.As(err, &p) || p.Status != 503 {
		t.Errorf("no wait: %v", err)
	}
	r()
	// A waiter at the front leaving lets the ones behind it in.
	b2 := testBudget(t, 100, guard)
	r60, _ := b2.acquire(context.Background(), 60)
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { _, err := b2.acquire(ctx2, 80); done <- err }()
	waitFor(t, "the large waiter", func() bool { return waiters(b2) == 1 })
	small := make(chan func(), 1)
	go func() { r, _ := b2.acquire(context.Background(), 30); small <- r }()
	waitFor(t, "the small waiter", func() bool { return waiters(b2) == 2 })
	cancel2()
	<-done
	select {
	case r := <-small:
		r()
	case <-time.After(guard):
		t.Fatal("the waiter behind a cancelled one was not served")
	}
	r60()
}

// Under contention the budget is never exceeded and always returns to 0.
func TestDecodeBudgetConcurrent(t *testing.T) {
	b := testBudget(t, 1000, guard)
	var inUse, peak atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				n := int64((g*31+i*17)%400 + 1)
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%5)*time.Millisecond+time.Millisecond)
				rel, err := b.acquire(ctx, n)
				cancel()
				if err != nil {
					continue
				}
				if v := inUse.Add(n); v > peak.Load() {
					peak.Store(v)
				}
				if inUse.Load() > 1000 {
					t.Errorf("%d pixels in use", inUse.Load())
				}
				inUse.Add(-n)
				rel()
			}
		}()
	}
	wg.Wait()
	if b.used != 0 || waiters(b) != 0 {
		t.Errorf("left %d used, %d waiters", b.used, waiters(b))
	}
	t.Logf("peak %d of 1000", peak.Load())
}
