// Package batch is a server-side dynamic batcher in the style of Triton's:
// concurrent requests for one model half are gathered into a single forward
// pass, so a busy server runs fewer, larger passes instead of many small ones.
//
// # Policy
//
// Requests wait in one FIFO queue bounded in items (images), not requests.
// Workers goroutines each own one Processor. A worker that is free takes
// everything queued, up to MaxBatch items, at once. If that is less than
// MaxBatch and every other worker is busy, it keeps collecting arrivals for
// up to MaxWait (or until the batch is full, another worker becomes free, or
// Close is called) and then runs; otherwise it runs immediately. With
// nothing queued it sleeps until a request arrives and runs it at once.
//
// So the wait only happens when the server is saturated, which is exactly
// when larger batches pay off; an idle server never delays a lone request.
// With Workers == 1 there is never another busy worker, so MaxWait has no
// effect: batches are formed from whatever queued during the previous pass,
// which is the same self-tuning behaviour without added latency. MaxWait
// should be well below request deadlines, since time spent collecting counts
// against them.
//
// A request of more than MaxBatch items is split into consecutive chunks in
// queue order; chunks may run on different workers, and the caller gets
// either all outputs or an error. A request whose context ends while queued
// is dropped without being computed (ErrTimeout for a deadline, ctx.Err()
// otherwise); if its pass is already running the result is discarded.
package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"time"
)

// Sentinel errors returned by Do.
var (
	// ErrQueueFull: admitting the request would exceed QueueSize items. The
	// request was not queued; retrying later may succeed (503 + Retry-After).
	ErrQueueFull = errors.New("batch: queue full")
	// ErrTimeout: the request's context deadline passed before its result
	// was ready (503).
	ErrTimeout = errors.New("batch: timed out in queue")
	// ErrClosed: Close has been called.
	ErrClosed = errors.New("batch: closed")
	// ErrTooLarge: the request has more items than QueueSize, so it could
	// never be admitted; retrying cannot help (413).
	ErrTooLarge = errors.New("batch: request larger than queue")
)

// Processor runs one forward pass: in holds n items of InLen values and the
// result must hold n items of OutLen values. Each worker owns one Processor
// and never calls it concurrently, so it need not be goroutine-safe. The
// batcher copies out of the returned slice, so a Processor may reuse it. If a
// Processor also implements io.Closer it is closed when its worker stops.
type Processor interface {
	Process(in []float32, n int) ([]float32, error)
}

// PanicError is the cause of a batch failure when the Processor panicked. It
// carries the stack so the server can log it; callers see it wrapped.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("batch: processor panicked: %v", e.Value) }

// Config sizes a Batcher.
type Config struct {
	MaxBatch  int           // items per forward pass, ≥ 1
	MaxWait   time.Duration // longest a free worker collects while all others are busy; 0 disables
	QueueSize int           // items that may be queued, ≥ MaxBatch
	Workers   int           // goroutines, each with its own Processor, ≥ 1
	InLen     int           // float32 values per input item
	OutLen    int           // float32 values per output item
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.MaxBatch < 1:
		return fmt.Errorf("batch: MaxBatch %d < 1", c.MaxBatch)
	case c.MaxWait < 0:
		return fmt.Errorf("batch: MaxWait %v < 0", c.MaxWait)
	case c.QueueSize < c.MaxBatch:
		// A smaller queue could never fill a batch.
		return fmt.Errorf("batch: QueueSize %d < MaxBatch %d", c.QueueSize, c.MaxBatch)
	case c.Workers < 1:
		return fmt.Errorf("batch: Workers %d < 1", c.Workers)
	case c.InLen < 1:
		return fmt.Errorf("batch: InLen %d < 1", c.InLen)
	case c.OutLen < 1:
		return fmt.Errorf("batch: OutLen %d < 1", c.OutLen)
	}
	return nil
}

// Labels identify a Batcher in metrics.
type Labels struct {
	Model, Half string
}

// Stats is a point-in-time snapshot, e.g. for readiness checks.
type Stats struct {
	QueuedItems    int
	QueuedRequests int
	Pending        int // requests admitted and not yet answered (queued, collected or computing)
	BusyWorkers    int
	Workers        int
	Closed         bool
}

// request is one Do call. Every field below the first block is guarded by
// Batcher.mu; out is written by workers outside the lock (disjoint ranges)
// and read by the caller only after done is closed.
type request struct {
	ctx  context.Context
	in   []float32
	out  []float32
	n    int
	enq  time.Time
	done chan struct{}

	prev, next *request // queue links, valid while queued
	queued     bool
	taken      int  // items handed to workers; the next chunk starts here
	pending    int  // items handed to workers whose pass has not finished
	started    bool // queue wait observed
	finished   bool // done closed; err is final
	err        error
}

// segment is the part of one request that sits in a worker's batch.
type segment struct {
	r      *request
	off, n int // item offset within r, item count
}

type worker struct {
	proc Processor
	buf  []float32 // MaxBatch*InLen, reused for every pass
	segs []segment
	gen  uint64 // distinguishes this collection round's timer from stale ones
	// expired is the gen whose MaxWait timer fired; guarded by Batcher.mu.
	expired uint64
}

// Batcher gathers Do calls into batched Processor calls. It is safe for
// concurrent use.
type Batcher struct {
	cfg Config
	m   *bound

	mu         sync.Mutex
	cond       sync.Cond // queue changed, a worker became free, or closing
	head, tail *request
	depth      int // queued items
	nreq       int // queued requests
	pending    int // admitted, unanswered requests
	busy       int // workers inside Process
	collecting int // workers waiting for MaxWait
	closing    bool

	stopped chan struct{} // closed when every worker has exited
}

// New creates the Processors (newProc is called Workers times, up front, so a
// broken model fails at startup rather than on the first request) and starts
// the workers.
func New(cfg Config, labels Labels, m *Metrics, newProc func() (Processor, error)) (*Batcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if newProc == nil {
		return nil, errors.New("batch: nil newProc")
	}
	workers := make([]*worker, 0, cfg.Workers)
	for i := range cfg.Workers {
		p, err := newProc()
		if err == nil && p == nil {
			err = errors.New("nil Processor")
		}
		if err != nil {
			for _, w := range workers {
				closeProc(w.proc)
			}
			return nil, fmt.Errorf("batch: processor %d of %d: %w", i+1, cfg.Workers, err)
		}
		workers = append(workers, &worker{
			proc: p,
			buf:  make([]float32, cfg.MaxBatch*cfg.InLen),
			segs: make([]segment, 0, cfg.MaxBatch),
		})
	}
	b := &Batcher{cfg: cfg, m: m.bind(labels, cfg.QueueSize), stopped: make(chan struct{})}
	b.cond.L = &b.mu
	b.m.depth.Set(0)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { b.run(w) })
	}
	go func() {
		wg.Wait()
		close(b.stopped)
	}()
	return b, nil
}

// Do submits n items (len(in) == n*InLen) and blocks until their n*OutLen
// outputs are ready. The returned slice belongs to the caller. in must not be
// modified until Do returns; it is not retained afterwards.
func (b *Batcher) Do(ctx context.Context, in []float32, n int) ([]float32, error) {
	if n < 1 {
		return nil, fmt.Errorf("batch: n = %d, want ≥ 1", n)
	}
	if len(in) != n*b.cfg.InLen {
		return nil, fmt.Errorf("batch: len(in) = %d, want n*InLen = %d", len(in), n*b.cfg.InLen)
	}
	if n > b.cfg.QueueSize {
		return nil, fmt.Errorf("%w: %d items, queue holds %d", ErrTooLarge, n, b.cfg.QueueSize)
	}
	if err := ctx.Err(); err != nil {
		return nil, b.shedCtx(err)
	}
	r := &request{ctx: ctx, in: in, n: n, done: make(chan struct{})}

	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	if b.depth+n > b.cfg.QueueSize {
		b.mu.Unlock()
		b.m.shedQueueFull.Inc()
		return nil, ErrQueueFull
	}
	// Allocated only once admitted, so shedding under overload stays cheap.
	r.out = make([]float32, n*b.cfg.OutLen)
	r.enq = time.Now()
	b.pushLocked(r)
	b.pending++
	if b.collecting > 0 {
		// A collecting worker must see the arrival as well as an idle one.
		b.cond.Broadcast()
	} else {
		b.cond.Signal()
	}
	b.mu.Unlock()

	select {
	case <-r.done:
	case <-ctx.Done():
		b.mu.Lock()
		b.abandonLocked(r, ctx.Err())
		b.mu.Unlock()
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.out, nil
}

// Close stops accepting requests (Do returns ErrClosed), lets the workers
// answer everything already queued, and waits for them to exit. If ctx ends
// first Close returns its error; the workers still drain in the background
// and a later Close can wait again.
func (b *Batcher) Close(ctx context.Context) error {
	b.mu.Lock()
	if !b.closing {
		b.closing = true
		b.cond.Broadcast()
	}
	b.mu.Unlock()
	select {
	case <-b.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns a snapshot of the queue and workers.
func (b *Batcher) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Stats{
		QueuedItems:    b.depth,
		QueuedRequests: b.nreq,
		Pending:        b.pending,
		BusyWorkers:    b.busy,
		Workers:        b.cfg.Workers,
		Closed:         b.closing,
	}
}

// shedCtx maps a context error to what Do returns and counts the shed.
func (b *Batcher) shedCtx(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		b.m.shedTimeout.Inc()
		return ErrTimeout
	}
	b.m.shedCancelled.Inc()
	return err
}

// abandonLocked answers r with its context's error unless it is already
// answered. Called by the caller when its ctx ends and by workers that find
// a dead request at the head of the queue, whichever comes first.
func (b *Batcher) abandonLocked(r *request, ctxErr error) {
	if r.finished {
		return
	}
	b.finishLocked(r, b.shedCtx(ctxErr))
}

// finishLocked answers r exactly once and drops whatever of it is still
// queued, so a failed or abandoned request consumes no further compute.
func (b *Batcher) finishLocked(r *request, err error) {
	if r.finished {
		return
	}
	r.finished = true
	r.err = err
	b.pending--
	if r.queued {
		b.unlinkLocked(r)
	}
	close(r.done)
}

func (b *Batcher) pushLocked(r *request) {
	r.queued = true
	r.prev = b.tail
	if b.tail != nil {
		b.tail.next = r
	} else {
		b.head = r
	}
	b.tail = r
	b.depth += r.n
	b.nreq++
	b.m.depth.Set(float64(b.depth))
}

func (b *Batcher) unlinkLocked(r *request) {
	if r.prev != nil {
		r.prev.next = r.next
	} else {
		b.head = r.next
	}
	if r.next != nil {
		r.next.prev = r.prev
	} else {
		b.tail = r.prev
	}
	r.prev, r.next = nil, nil
	r.queued = false
	b.depth -= r.n - r.taken
	b.nreq--
	b.m.depth.Set(float64(b.depth))
}

// takeLocked moves queued items into w's batch until it holds MaxBatch items
// or the queue is empty, and returns the new item count. Inputs are copied
// here, under the lock, because a caller that gives up may reuse its slice
// as soon as Do returns, and Do can only return after taking the lock.
func (b *Batcher) takeLocked(w *worker, have int) int {
	inLen := b.cfg.InLen
	for have < b.cfg.MaxBatch && b.head != nil {
		r := b.head
		if err := r.ctx.Err(); err != nil {
			b.abandonLocked(r, err)
			continue
		}
		k := min(r.n-r.taken, b.cfg.MaxBatch-have)
		copy(w.buf[have*inLen:(have+k)*inLen], r.in[r.taken*inLen:(r.taken+k)*inLen])
		w.segs = append(w.segs, segment{r: r, off: r.taken, n: k})
		r.taken += k
		r.pending += k
		have += k
		b.depth -= k
		if r.taken == r.n {
			b.unlinkLocked(r) // depth already counts the k taken items out
		} else {
			b.m.depth.Set(float64(b.depth))
		}
	}
	return have
}

// othersBusyLocked reports whether every worker but the caller is inside
// Process, the only situation in which collecting for MaxWait is worthwhile.
func (b *Batcher) othersBusyLocked() bool {
	return b.cfg.Workers > 1 && b.busy >= b.cfg.Workers-1
}

func (b *Batcher) run(w *worker) {
	defer closeProc(w.proc)
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for b.depth == 0 && !b.closing {
			b.cond.Wait()
		}
		if b.depth == 0 { // closing and drained
			return
		}
		have := b.takeLocked(w, 0)
		if have < b.cfg.MaxBatch && b.cfg.MaxWait > 0 && !b.closing && b.othersBusyLocked() {
			have = b.collectLocked(w, have)
		}
		if have == 0 {
			continue // everything queued was dead
		}
		b.executeLocked(w)
	}
}

// collectLocked keeps taking arrivals until the batch is full, MaxWait has
// passed, a peer becomes free (it can serve later arrivals with no wait), or
// Close is called.
func (b *Batcher) collectLocked(w *worker, have int) int {
	w.gen++
	gen := w.gen
	t := time.AfterFunc(b.cfg.MaxWait, func() {
		b.mu.Lock()
		w.expired = gen
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	b.collecting++
	for have < b.cfg.MaxBatch && w.expired != gen && !b.closing && b.othersBusyLocked() {
		b.cond.Wait()
		have = b.takeLocked(w, have)
	}
	b.collecting--
	t.Stop()
	return have
}

// executeLocked runs w's batch with b.mu released around Process and the
// output copies, and answers the requests it completes.
func (b *Batcher) executeLocked(w *worker) {
	inLen, outLen := b.cfg.InLen, b.cfg.OutLen
	// Callers that left while we were collecting are dropped here, so they
	// are never computed. Their inputs are squeezed out of w.buf; dst never
	// passes src, and copy handles the overlap.
	n, src := 0, 0
	kept := w.segs[:0]
	for _, s := range w.segs {
		if !s.r.finished {
			if src != n {
				copy(w.buf[n*inLen:(n+s.n)*inLen], w.buf[src*inLen:(src+s.n)*inLen])
			}
			kept = append(kept, s)
			n += s.n
		}
		src += s.n
	}
	clear(w.segs[len(kept):])
	w.segs = kept
	if n == 0 {
		return
	}
	now := time.Now()
	for _, s := range w.segs {
		if !s.r.started {
			s.r.started = true
			b.m.queueWait.Observe(now.Sub(s.r.enq).Seconds())
		}
	}
	b.busy++
	b.mu.Unlock()

	start := time.Now()
	out, err := process(w.proc, w.buf[:n*inLen], n)
	b.m.compute.Observe(time.Since(start).Seconds())
	b.m.executions.Inc()
	b.m.items.Add(float64(n))
	b.m.size.Observe(float64(n))
	if err == nil && len(out) != n*outLen {
		err = fmt.Errorf("processor returned %d values for %d items, want %d", len(out), n, n*outLen)
	}
	if err != nil {
		b.m.errors.Inc()
		err = fmt.Errorf("batch: forward pass of %d items: %w", n, err)
	} else {
		pos := 0
		for _, s := range w.segs {
			// Disjoint ranges of r.out; an abandoned caller never reads it.
			copy(s.r.out[s.off*outLen:(s.off+s.n)*outLen], out[pos*outLen:(pos+s.n)*outLen])
			pos += s.n
		}
	}

	b.mu.Lock()
	b.busy--
	for _, s := range w.segs {
		r := s.r
		r.pending -= s.n
		if r.finished {
			continue
		}
		if err != nil {
			b.m.requests.Inc()
			b.finishLocked(r, err) // all or nothing: its still-queued chunks are dropped too
		} else if r.taken == r.n && r.pending == 0 {
			b.m.requests.Inc()
			b.finishLocked(r, nil)
		}
	}
	clear(w.segs)
	w.segs = w.segs[:0]
	if b.collecting > 0 {
		b.cond.Broadcast() // a collecting peer no longer has every other worker busy
	}
}

// process calls p, turning a panic into a *PanicError so one bad batch does
// not take the process (or the worker) down.
func process(p Processor, in []float32, n int) (out []float32, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return p.Process(in, n)
}

func closeProc(p Processor) {
	if c, ok := p.(io.Closer); ok {
		_ = c.Close()
	}
}
