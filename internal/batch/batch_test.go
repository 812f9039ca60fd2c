package batch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Items are inLen values; the test processor maps item [a, b, c] to
// [2a, b+c]. The first value identifies the item (what the processor "saw")
// or, when negative, tells the processor to misbehave.
const (
	inLen  = 3
	outLen = 2

	markBlock = -1 // signal started, then block until the gate opens
	markErr   = -2 // return errBoom
	markPanic = -3 // panic
	markShort = -4 // return an output of the wrong length
)

// guard bounds every wait in these tests. It only fires when something is
// broken, so it is generous for a loaded 2-core machine running -race.
const guard = 5 * time.Second

var errBoom = errors.New("boom")

type harness struct {
	t       *testing.T
	b       *Batcher
	reg     *prometheus.Registry
	gate    chan struct{}
	started chan struct{}
	release func()

	newProcs atomic.Int64
	closed   atomic.Int64
	overlaps atomic.Int64

	mu    sync.Mutex
	sizes []int     // items per Process call, in call order
	seen  []float32 // first value of every item processed
}

type testProc struct {
	h     *harness
	inUse atomic.Bool
}

func (p *testProc) Close() error { p.h.closed.Add(1); return nil }

func (p *testProc) Process(in []float32, n int) ([]float32, error) {
	if !p.inUse.CompareAndSwap(false, true) {
		p.h.overlaps.Add(1)
	}
	defer p.inUse.Store(false)
	runtime.Gosched() // widen the window in which a concurrent call would be caught

	if len(in) != n*inLen {
		return nil, fmt.Errorf("test processor: len(in)=%d n=%d", len(in), n)
	}
	p.h.mu.Lock()
	p.h.sizes = append(p.h.sizes, n)
	for j := range n {
		p.h.seen = append(p.h.seen, in[j*inLen])
	}
	p.h.mu.Unlock()

	for j := range n {
		switch in[j*inLen] {
		case markBlock:
			p.h.started <- struct{}{}
			<-p.h.gate
		case markErr:
			return nil, errBoom
		case markPanic:
			panic("boom")
		case markShort:
			return make([]float32, 1), nil
		}
	}
	out := make([]float32, n*outLen)
	for j := range n {
		x := in[j*inLen : (j+1)*inLen]
		out[j*outLen] = 2 * x[0]
		out[j*outLen+1] = x[1] + x[2]
	}
	return out, nil
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	cfg.InLen, cfg.OutLen = inLen, outLen
	h := &harness{
		t:       t,
		reg:     prometheus.NewRegistry(),
		gate:    make(chan struct{}),
		started: make(chan struct{}, 64),
	}
	h.release = sync.OnceFunc(func() { close(h.gate) })
	m, err := NewMetrics(h.reg)
	if err != nil {
		t.Fatal(err)
	}
	h.b, err = New(cfg, Labels{Model: "m", Half: "encoder"}, m, func() (Processor, error) {
		h.newProcs.Add(1)
		return &testProc{h: h}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.release()
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := h.b.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		if n := h.overlaps.Load(); n != 0 {
			t.Errorf("a Processor was used concurrently %d times", n)
		}
	})
	return h
}

// input builds n items whose first values are id*1000+j.
func input(id, n int) []float32 {
	in := make([]float32, n*inLen)
	for j := range n {
		in[j*inLen] = float32(id*1000 + j)
		in[j*inLen+1] = 1
		in[j*inLen+2] = float32(j)
	}
	return in
}

func marked(mark float32) []float32 { return []float32{mark, 0, 0} }

func checkOutput(t *testing.T, in, out []float32, n int) {
	t.Helper()
	if len(out) != n*outLen {
		t.Fatalf("len(out)=%d, want %d", len(out), n*outLen)
	}
	for j := range n {
		x := in[j*inLen : (j+1)*inLen]
		if out[j*outLen] != 2*x[0] || out[j*outLen+1] != x[1]+x[2] {
			t.Fatalf("item %d of %d: in %v, out %v", j, n, x, out[j*outLen:(j+1)*outLen])
		}
	}
}

type result struct {
	out []float32
	err error
}

// goDo runs Do in the background.
func (h *harness) goDo(ctx context.Context, in []float32, n int) <-chan result {
	ch := make(chan result, 1)
	go func() {
		out, err := h.b.Do(ctx, in, n)
		ch <- result{out, err}
	}()
	return ch
}

func (h *harness) wait(ch <-chan result) result {
	h.t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(guard):
		h.t.Fatal("Do did not return")
		return result{}
	}
}

// block occupies one worker until h.release is called.
func (h *harness) block() <-chan result {
	h.t.Helper()
	ch := h.goDo(context.Background(), marked(markBlock), 1)
	select {
	case <-h.started:
	case <-time.After(guard):
		h.t.Fatal("blocking request never started")
	}
	return ch
}

func (h *harness) waitFor(what string, cond func(Stats) bool) {
	h.t.Helper()
	deadline := time.Now().Add(guard)
	for !cond(h.b.Stats()) {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; stats %+v", what, h.b.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) queued(n int) {
	h.t.Helper()
	h.waitFor(fmt.Sprintf("%d queued items", n), func(s Stats) bool { return s.QueuedItems == n })
}

func (h *harness) recorded() (sizes []int, seen []float32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.sizes), slices.Clone(h.seen)
}

func (h *harness) metric(name string, labels ...string) *dto.Metric {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

func (h *harness) counter(name string, labels ...string) float64 {
	h.t.Helper()
	return h.metric(name, labels...).GetCounter().GetValue()
}

func (h *harness) shed(reason string) float64 {
	h.t.Helper()
	return h.counter("aeserve_batch_shed_total", "reason", reason)
}

func TestConfigValidate(t *testing.T) {
	ok := Config{MaxBatch: 4, MaxWait: time.Millisecond, QueueSize: 4, Workers: 1, InLen: 1, OutLen: 1}
	tests := []struct {
		name   string
		mutate func(*Config)
		valid  bool
	}{
		{"ok", func(*Config) {}, true},
		{"zero wait", func(c *Config) { c.MaxWait = 0 }, true},
		{"max batch", func(c *Config) { c.MaxBatch = 0 }, false},
		{"negative wait", func(c *Config) { c.MaxWait = -1 }, false},
		{"queue below batch", func(c *Config) { c.QueueSize = 3 }, false},
		{"workers", func(c *Config) { c.Workers = 0 }, false},
		{"in len", func(c *Config) { c.InLen = 0 }, false},
		{"out len", func(c *Config) { c.OutLen = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mutate(&c)
			if err := c.Validate(); (err == nil) != tt.valid {
				t.Fatalf("Validate() = %v, want valid=%v", err, tt.valid)
			}
		})
	}
}

func TestNewFailures(t *testing.T) {
	cfg := Config{MaxBatch: 1, QueueSize: 1, Workers: 3, InLen: 1, OutLen: 1}
	if _, err := New(Config{}, Labels{}, nil, nil); err == nil {
		t.Error("invalid config accepted")
	}
	if _, err := New(cfg, Labels{}, nil, nil); err == nil {
		t.Error("nil newProc accepted")
	}
	// The third processor fails: the two already built must be closed.
	h := &harness{t: t}
	calls := 0
	_, err := New(cfg, Labels{}, nil, func() (Processor, error) {
		calls++
		if calls == 3 {
			return nil, errBoom
		}
		return &testProc{h: h}, nil
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want errBoom", err)
	}
	if got := h.closed.Load(); got != 2 {
		t.Errorf("closed %d processors, want 2", got)
	}
}

func TestNewMetricsTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	m1, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("second NewMetrics: %v", err)
	}
	if m1.shed != m2.shed {
		t.Error("second NewMetrics did not reuse the registered collectors")
	}
}

func TestDoRejectsBadInput(t *testing.T) {
	h := newHarness(t, Config{MaxBatch: 2, QueueSize: 4, Workers: 1})
	tests := []struct {
		name string
		in   []float32
		n    int
		is   error
	}{
		{"zero items", nil, 0, nil},
		{"negative items", nil, -1, nil},
		{"short input", make([]float32, inLen*2-1), 2, nil},
		{"long input", make([]float32, inLen+1), 1, nil},
		{"larger than queue", make([]float32, inLen*5), 5, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.b.Do(context.Background(), tt.in, tt.n)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("err = %v, want error (is %v)", err, tt.is)
			}
		})
	}
	if _, seen := h.recorded(); len(seen) != 0 {
		t.Errorf("processor saw %v", seen)
	}
}

// Many callers, varied sizes (including ones split across passes): everyone
// gets exactly their own outputs, in order.
func TestOutputsReachTheirCallers(t *testing.T) {
	tests := []struct {
		workers, maxBatch int
		maxWait           time.Duration
	}{
		{1, 1, 0},
		{1, 8, time.Millisecond},
		{2, 4, time.Millisecond},
		{2, 16, 0},
		{3, 5, 100 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("w%d_b%d_%v", tt.workers, tt.maxBatch, tt.maxWait), func(t *testing.T) {
			h := newHarness(t, Config{MaxBatch: tt.maxBatch, MaxWait: tt.maxWait, QueueSize: 4096, Workers: tt.workers})
			const callers, each = 24, 20
			var wg sync.WaitGroup
			var items atomic.Int64
			for c := range callers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(c), 1))
					for i := range each {
						n := 1 + rng.IntN(2*tt.maxBatch+1)
						in := input(c*each+i+1, n)
						out, err := h.b.Do(context.Background(), in, n)
						if err != nil {
							t.Errorf("caller %d request %d: %v", c, i, err)
							return
						}
						checkOutput(t, in, out, n)
						items.Add(int64(n))
					}
				})
			}
			wg.Wait()
			if got := h.counter("aeserve_batch_requests_total"); got != callers*each {
				t.Errorf("requests_total = %v, want %d", got, callers*each)
			}
			if got, want := h.counter("aeserve_batch_items_total"), float64(items.Load()); got != want {
				t.Errorf("items_total = %v, want %v", got, want)
			}
			sizes, _ := h.recorded()
			for _, s := range sizes {
				if s > tt.maxBatch {
					t.Fatalf("pass of %d items > MaxBatch %d", s, tt.maxBatch)
				}
			}
			if got := h.metric("aeserve_batch_queue_depth").GetGauge().GetValue(); got != 0 {
				t.Errorf("queue depth %v after all answered", got)
			}
		})
	}
}

func TestRequestsAreBatched(t *testing.T) {
	h := newHarness(t, Config{MaxBatch: 8, MaxWait: 0, QueueSize: 64, Workers: 1})
	blocked := h.block()
	const reqs = 20
	var chans []<-chan result
	var ins [][]float32
	for i := range reqs {
		in := input(i+1, 1)
		ins = append(ins, in)
		chans = append(chans, h.goDo(context.Background(), in, 1))
	}
	h.queued(reqs)
	if got := h.metric("aeserve_batch_queue_depth").GetGauge().GetValue(); got != reqs {
		t.Errorf("queue depth gauge = %v, want %d", got, reqs)
	}
	h.release()
	if r := h.wait(blocked); r.err != nil {
		t.Fatal(r.err)
	}
	for i, ch := range chans {
		r := h.wait(ch)
		if r.err != nil {
			t.Fatal(r.err)
		}
		checkOutput(t, ins[i], r.out, 1)
	}

	// The worker was busy while all 20 queued, so it takes them greedily.
	sizes, _ := h.recorded()
	if want := []int{1, 8, 8, 4}; !slices.Equal(sizes, want) {
		t.Errorf("pass sizes %v, want %v", sizes, want)
	}
	execs := h.counter("aeserve_batch_executions_total")
	requests := h.counter("aeserve_batch_requests_total")
	if execs != 4 || requests != reqs+1 || execs >= requests {
		t.Errorf("executions %v, requests %v", execs, requests)
	}
	hist := h.metric("aeserve_batch_size").GetHistogram()
	if hist.GetSampleCount() != 4 || hist.GetSampleSum() != reqs+1 {
		t.Errorf("batch size histogram count %d sum %v", hist.GetSampleCount(), hist.GetSampleSum())
	}
	for _, bk := range hist.GetBucket() {
		if bk.GetUpperBound() == 1 && bk.GetCumulativeCount() != 1 {
			t.Errorf("%d passes of 1 item, want 1 (batches > 1 must show)", bk.GetCumulativeCount())
		}
	}
	if got := h.metric("aeserve_batch_queue_wait_seconds").GetHistogram().GetSampleCount(); got != reqs+1 {
		t.Errorf("queue wait observed %d times, want %d", got, reqs+1)
	}
	if got := h.metric("aeserve_batch_compute_seconds").GetHistogram().GetSampleCount(); got != 4 {
		t.Errorf("compute observed %d times, want 4", got)
	}
}

// MaxWait is 10 s, so a lone request that waited for it would hit the guard.
func TestLoneRequestIsNotDelayed(t *testing.T) {
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprint("workers", workers), func(t *testing.T) {
			b, err := New(Config{MaxBatch: 8, MaxWait: 10 * time.Second, QueueSize: 8, Workers: workers, InLen: inLen, OutLen: outLen},
				Labels{}, nil, func() (Processor, error) { return &testProc{h: &harness{}}, nil })
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			for i := range 3 {
				in := input(i+1, 1)
				out, err := b.Do(ctx, in, 1)
				if err != nil {
					t.Fatalf("request %d: %v (waited for MaxWait?)", i, err)
				}
				checkOutput(t, in, out, 1)
			}
		})
	}
}

// collected waits until pending requests are admitted (the blocker counts)
// and none is left in the queue: a collecting worker holds them.
func (h *harness) collected(pending int) {
	h.t.Helper()
	h.waitFor(fmt.Sprintf("%d pending, none queued", pending), func(s Stats) bool {
		return s.Pending == pending && s.QueuedItems == 0
	})
}

// With every other worker busy, a free worker collects arrivals for MaxWait
// (10 s, beyond the guard), and stops when the batch fills or a peer frees.
func TestCollectsWhileOtherWorkersBusy(t *testing.T) {
	cfg := Config{MaxBatch: 4, MaxWait: 10 * time.Second, QueueSize: 16, Workers: 2}
	t.Run("until full", func(t *testing.T) {
		h := newHarness(t, cfg)
		blocked := h.block()
		var chans []<-chan result
		for i := range 4 {
			chans = append(chans, h.goDo(context.Background(), input(i+1, 1), 1))
			if i < 3 { // the fourth fills the batch, which then runs
				h.collected(i + 2)
			}
		}
		for i, ch := range chans {
			r := h.wait(ch)
			if r.err != nil {
				t.Fatal(r.err)
			}
			checkOutput(t, input(i+1, 1), r.out, 1)
		}
		if sizes, _ := h.recorded(); !slices.Equal(sizes, []int{1, 4}) {
			t.Errorf("pass sizes %v, want [1 4]", sizes)
		}
		h.release()
		h.wait(blocked)
	})
	t.Run("until a peer is free", func(t *testing.T) {
		h := newHarness(t, cfg)
		blocked := h.block()
		ch := h.goDo(context.Background(), input(9, 1), 1)
		h.collected(2)
		h.release()
		if r := h.wait(ch); r.err != nil {
			t.Fatal(r.err)
		}
		h.wait(blocked)
	})
}

func TestQueueFull(t *testing.T) {
	h := newHarness(t, Config{MaxBatch: 2, QueueSize: 4, Workers: 1})
	blocked := h.block()
	a := h.goDo(context.Background(), input(1, 3), 3)
	h.queued(3)
	b := h.goDo(context.Background(), input(2, 1), 1)
	h.queued(4)

	for _, n := range []int{1, 2} {
		if _, err := h.b.Do(context.Background(), input(3, n), n); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("n=%d: err = %v, want ErrQueueFull", n, err)
		}
	}
	if got := h.shed(ReasonQueueFull); got != 2 {
		t.Errorf("shed{queue_full} = %v, want 2", got)
	}
	if got := h.metric("aeserve_batch_queue_depth").GetGauge().GetValue(); got != 4 {
		t.Errorf("queue depth = %v, want 4", got)
	}

	h.release()
	h.wait(blocked)
	if r := h.wait(a); r.err != nil {
		t.Fatal(r.err)
	} else {
		checkOutput(t, input(1, 3), r.out, 3)
	}
	if r := h.wait(b); r.err != nil {
		t.Fatal(r.err)
	} else {
		checkOutput(t, input(2, 1), r.out, 1)
	}
	if _, seen := h.recorded(); slices.Contains(seen, 3000) {
		t.Error("shed request was processed")
	}
}

func TestContextEndsWhileQueued(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		cancel  bool // cancel explicitly once queued
		wantErr error
		reason  string
	}{
		{"canceled", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			true, context.Canceled, ReasonCanceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}, false, ErrTimeout, ReasonTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{MaxBatch: 4, QueueSize: 8, Workers: 1})
			blocked := h.block()
			before := h.goDo(context.Background(), input(1, 1), 1)
			h.queued(1)
			after := h.goDo(context.Background(), input(3, 1), 1)
			h.queued(2)
			ctx, cancel := tt.ctx()
			defer cancel()
			victim := h.goDo(ctx, input(2, 2), 2)
			if tt.cancel {
				h.queued(4)
				cancel()
			}
			if r := h.wait(victim); !errors.Is(r.err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", r.err, tt.wantErr)
			}
			if st := h.b.Stats(); st.QueuedItems != 2 || st.QueuedRequests != 2 {
				t.Errorf("after dropping: %+v, want 2 items in 2 requests", st)
			}
			if got := h.shed(tt.reason); got != 1 {
				t.Errorf("shed{%s} = %v, want 1", tt.reason, got)
			}
			h.release()
			h.wait(blocked)
			for _, ch := range []<-chan result{before, after} {
				if r := h.wait(ch); r.err != nil {
					t.Fatal(r.err)
				}
			}
			_, seen := h.recorded()
			if slices.Contains(seen, 2000) || slices.Contains(seen, 2001) {
				t.Errorf("dropped request was processed: saw %v", seen)
			}
		})
	}

	t.Run("already done", func(t *testing.T) {
		h := newHarness(t, Config{MaxBatch: 4, QueueSize: 8, Workers: 1})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := h.b.Do(ctx, input(1, 1), 1); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if got := h.shed(ReasonCanceled); got != 1 {
			t.Errorf("shed{canceled} = %v, want 1", got)
		}
	})
}

// A caller that leaves while its request sits in a collecting worker's batch
// is squeezed out before the pass; the rest of the batch is intact.
func TestCanceledWhileCollected(t *testing.T) {
	h := newHarness(t, Config{MaxBatch: 4, MaxWait: 10 * time.Second, QueueSize: 16, Workers: 2})
	blocked := h.block()
	first := h.goDo(context.Background(), input(1, 1), 1)
	h.collected(2)
	ctx, cancel := context.WithCancel(context.Background())
	victim := h.goDo(ctx, input(2, 1), 1)
	h.collected(3)
	cancel()
	if r := h.wait(victim); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", r.err)
	}
	// Two more fill the batch's 4 slots, one of which is dead.
	third := h.goDo(context.Background(), input(3, 1), 1)
	h.collected(3)
	fourth := h.goDo(context.Background(), input(4, 1), 1)
	for i, ch := range []<-chan result{first, third, fourth} {
		id := []int{1, 3, 4}[i]
		r := h.wait(ch)
		if r.err != nil {
			t.Fatal(r.err)
		}
		checkOutput(t, input(id, 1), r.out, 1)
	}
	sizes, seen := h.recorded()
	if !slices.Equal(sizes, []int{1, 3}) || slices.Contains(seen, 2000) {
		t.Errorf("sizes %v seen %v: want [1 3] without 2000", sizes, seen)
	}
	if got := h.shed(ReasonCanceled); got != 1 {
		t.Errorf("shed{canceled} = %v, want 1", got)
	}
	h.release()
	h.wait(blocked)
}

func TestLargeRequestsAreSplit(t *testing.T) {
	tests := []struct{ workers, maxBatch, n int }{
		{1, 1, 5},
		{1, 3, 11},
		{1, 4, 12},
		{2, 4, 13},
		{2, 7, 50},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("w%d_b%d_n%d", tt.workers, tt.maxBatch, tt.n), func(t *testing.T) {
			h := newHarness(t, Config{MaxBatch: tt.maxBatch, QueueSize: 64, Workers: tt.workers})
			in := input(1, tt.n)
			out, err := h.b.Do(context.Background(), in, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			checkOutput(t, in, out, tt.n)
			sizes, _ := h.recorded()
			if want := (tt.n + tt.maxBatch - 1) / tt.maxBatch; len(sizes) != want {
				t.Errorf("%d passes %v, want %d", len(sizes), sizes, want)
			}
			if got := h.counter("aeserve_batch_requests_total"); got != 1 {
				t.Errorf("requests_total = %v, want 1", got)
			}
		})
	}
}

func TestProcessorFailureFailsOnlyThatBatch(t *testing.T) {
	tests := []struct {
		name  string
		mark  float32
		check func(error) bool
	}{
		{"error", markErr, func(err error) bool { return errors.Is(err, errBoom) }},
		{"panic", markPanic, func(err error) bool {
			var pe *PanicError
			return errors.As(err, &pe) && pe.Value == "boom" && len(pe.Stack) > 0
		}},
		{"short output", markShort, func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{MaxBatch: 8, QueueSize: 16, Workers: 1})
			blocked := h.block()
			bad := h.goDo(context.Background(), marked(tt.mark), 1)
			h.queued(1)
			good := h.goDo(context.Background(), input(1, 2), 2)
			h.queued(3)
			h.release()
			h.wait(blocked)
			for _, ch := range []<-chan result{bad, good} {
				if r := h.wait(ch); !tt.check(r.err) || r.out != nil {
					t.Fatalf("batch-mate got (%v, %v)", r.out, r.err)
				}
			}
			if got := h.counter("aeserve_batch_execution_errors_total"); got != 1 {
				t.Errorf("execution errors = %v, want 1", got)
			}
			// The worker survived and serves the next batch.
			in := input(2, 3)
			out, err := h.b.Do(context.Background(), in, 3)
			if err != nil {
				t.Fatal(err)
			}
			checkOutput(t, in, out, 3)
		})
	}

	t.Run("one chunk of a split request", func(t *testing.T) {
		h := newHarness(t, Config{MaxBatch: 2, QueueSize: 16, Workers: 1})
		in := input(1, 7)
		in[4*inLen] = markErr // item 4, in the third chunk
		if _, err := h.b.Do(context.Background(), in, 7); !errors.Is(err, errBoom) {
			t.Fatalf("err = %v, want errBoom", err)
		}
		// The fourth chunk is dropped once the request has failed.
		if sizes, _ := h.recorded(); !slices.Equal(sizes, []int{2, 2, 2}) {
			t.Errorf("pass sizes %v, want [2 2 2]", sizes)
		}
	})
}

func TestClose(t *testing.T) {
	h := newHarness(t, Config{MaxBatch: 2, MaxWait: time.Second, QueueSize: 16, Workers: 1})
	blocked := h.block()
	var chans []<-chan result
	for i := range 3 {
		chans = append(chans, h.goDo(context.Background(), input(i+1, i+1), i+1))
	}
	h.queued(6)

	closed := make(chan error, 1)
	go func() { closed <- h.b.Close(context.Background()) }()
	h.waitFor("closing", func(s Stats) bool { return s.Closed })
	if _, err := h.b.Do(context.Background(), input(9, 1), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close: %v, want ErrClosed", err)
	}
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.b.Close(expired); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with done ctx while draining: %v", err)
	}

	h.release()
	h.wait(blocked)
	for i, ch := range chans {
		r := h.wait(ch)
		if r.err != nil {
			t.Fatalf("queued request %d: %v", i, r.err)
		}
		checkOutput(t, input(i+1, i+1), r.out, i+1)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(guard):
		t.Fatal("Close did not return")
	}
	if err := h.b.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := h.closed.Load(); got != 1 {
		t.Errorf("processors closed: %d, want 1", got)
	}
}

func TestEachWorkerOwnsItsProcessor(t *testing.T) {
	const workers = 3
	h := newHarness(t, Config{MaxBatch: 3, MaxWait: 50 * time.Microsecond, QueueSize: 1024, Workers: workers})
	if got := h.newProcs.Load(); got != workers {
		t.Fatalf("newProc called %d times, want %d", got, workers)
	}
	var wg sync.WaitGroup
	for c := range 32 {
		wg.Go(func() {
			for i := range 20 {
				n := 1 + (c+i)%4
				in := input(c*20+i+1, n)
				out, err := h.b.Do(context.Background(), in, n)
				if err != nil {
					t.Error(err)
					return
				}
				checkOutput(t, in, out, n)
			}
		})
	}
	wg.Wait()
	if got := h.overlaps.Load(); got != 0 {
		t.Errorf("a Processor was used concurrently %d times", got)
	}
	if got := h.newProcs.Load(); got != workers {
		t.Errorf("newProc called %d times, want %d", got, workers)
	}
}

type copyProc struct{}

func (copyProc) Process(in []float32, n int) ([]float32, error) { return slices.Clone(in), nil }

// BenchmarkBatcher measures the batcher's own overhead per request (queueing,
// hand-off, copies) with a processor that does no real work.
func BenchmarkBatcher(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprint("workers", workers), func(b *testing.B) {
			const itemLen = 16
			bt, err := New(Config{MaxBatch: 32, MaxWait: 0, QueueSize: 4096, Workers: workers, InLen: itemLen, OutLen: itemLen},
				Labels{Model: "bench", Half: "full"}, nil, func() (Processor, error) { return copyProc{}, nil })
			if err != nil {
				b.Fatal(err)
			}
			defer bt.Close(context.Background())
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				in := make([]float32, itemLen)
				for pb.Next() {
					if _, err := bt.Do(context.Background(), in, 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
