package server

import (
	"container/list"
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// decodeBudget bounds the memory that decoding images takes, process-wide,
// in pixels: a decoder allocates the whole image (1 to 8 bytes a pixel, by
// format and depth) before anything can shrink it, so a few phone photos at
// once would otherwise take what they like. Each image takes the pixels its
// header declares before it is decoded and gives them back once it has been
// reduced to its working size (internal/digit keeps at most 512 pixels a
// side of it).
//
// It is a weighted semaphore, first come first served (a photo waiting for
// room is not overtaken by a stream of small images), whose waits are
// bounded: an image that cannot have its pixels within wait (or before its
// request's context ends) is refused with 503 and Retry-After. Waiting a
// little rides out a burst (a decode takes a fraction of a second); waiting
// long would only pile up requests holding their bodies, while a client told
// to come back can go to another replica.
type decodeBudget struct {
	size int64
	wait time.Duration

	mu      sync.Mutex
	used    int64
	waiters list.List // of *budgetWaiter, in arrival order

	inUse prometheus.GaugeFunc
	shed  prometheus.Counter
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed once the pixels are granted
}

func newDecodeBudget(size int64, wait time.Duration, reg prometheus.Registerer) (*decodeBudget, error) {
	b := &decodeBudget{size: size, wait: wait}
	b.inUse = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "aeserve_decode_pixels_in_use",
		Help: "Pixels of the decode budget taken by images being decoded.",
	}, func() float64 {
		b.mu.Lock()
		defer b.mu.Unlock()
		return float64(b.used)
	})
	size64 := float64(size)
	budget := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "aeserve_decode_budget_pixels",
		Help: "Pixels the images being decoded at once may declare in all (--decode-budget).",
	}, func() float64 { return size64 })
	b.shed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aeserve_decode_budget_shed_total",
		Help: "Images refused with 503 because the decode budget stayed spent for the whole wait.",
	})
	for _, c := range []prometheus.Collector{b.inUse, budget, b.shed} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: decode budget metrics: %w", err)
		}
	}
	return b, nil
}

// acquire takes n pixels (at most the whole budget: Config makes it at
// least MaxPixels), waiting at most b.wait behind earlier requests.
// release gives them back and must be called exactly once.
func (b *decodeBudget) acquire(ctx context.Context, n int64) (release func(), err error) {
	n = min(max(n, 0), b.size)
	b.mu.Lock()
	if b.size-b.used >= n && b.waiters.Len() == 0 {
		b.used += n
		b.mu.Unlock()
		return b.releaser(n), nil
	}
	if b.wait <= 0 {
		b.mu.Unlock()
		return nil, b.spent(n)
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	elem := b.waiters.PushBack(w)
	b.mu.Unlock()

	timer := time.NewTimer(b.wait)
	defer timer.Stop()
	var cause error
	select {
	case <-w.ready:
		return b.releaser(n), nil
	case <-ctx.Done():
		cause = ctx.Err()
	case <-timer.C:
		cause = b.spent(n)
	}
	b.mu.Lock()
	select {
	case <-w.ready:
		// Granted just as the wait ended: give the pixels back, and fail as
		// the wait did (the request is over, or late).
		b.used -= n
		b.notify()
	default:
		front := b.waiters.Front() == elem
		b.waiters.Remove(elem)
		if front {
			// Those behind it may fit now.
			b.notify()
		}
	}
	b.mu.Unlock()
	return nil, cause
}

func (b *decodeBudget) releaser(n int64) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.used -= n
			b.notify()
			b.mu.Unlock()
		})
	}
}

// notify grants waiters in order for as long as the first one fits. b.mu is held.
func (b *decodeBudget) notify() {
	for e := b.waiters.Front(); e != nil; e = b.waiters.Front() {
		w := e.Value.(*budgetWaiter)
		if b.size-b.used < w.n {
			return
		}
		b.used += w.n
		b.waiters.Remove(e)
		close(w.ready)
	}
}

// spent is the 503 of an image the budget had no room for.
func (b *decodeBudget) spent(n int64) *Problem {
	b.shed.Inc()
	p := problemf(http.StatusServiceUnavailable, kindOverloaded,
		"the server is decoding as many image pixels as it may at once (%d); this image declares %d; retry later",
		b.size, n)
	p.RetryAfter = retryAfter
	return p
}
