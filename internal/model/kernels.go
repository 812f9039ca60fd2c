package model

import (
	"fmt"
	"github.com/aeserve/aeserve/internal/vec"
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// The kernels below work on one image at a time in NCHW layout, as plain
// float32 slices, so that they can be checked against float64 loop
// references and reused by every op (forward and gradients).

// geom describes the sliding-window geometry between an image [C,H,W] and a
// column matrix [C·K·K, OH·OW]: column (oh,ow), row (c,kh,kw) holds
// image[c, oh·S+kh−P, ow·S+kw−P], or 0 outside the image.
type geom struct {
	C, H, W int // image
	K       int // square kernel side
	S, P    int // stride, padding before the first row/column
	OH, OW  int // column grid
}

func (g geom) colRows() int { return g.C * g.K * g.K }
func (g geom) colCols() int { return g.OH * g.OW }

// im2col gathers the windows of img into cols.
func im2col(g geom, img, cols []float32) {
	n := g.colCols()
	for c := 0; c < g.C; c++ {
		plane := img[c*g.H*g.W : (c+1)*g.H*g.W]
		for kh := 0; kh < g.K; kh++ {
			for kw := 0; kw < g.K; kw++ {
				row := cols[((c*g.K+kh)*g.K+kw)*n:][:n]
				for oh := 0; oh < g.OH; oh++ {
					dst := row[oh*g.OW : (oh+1)*g.OW]
					ih := oh*g.S + kh - g.P
					if ih < 0 || ih >= g.H {
						clear(dst)
						continue
					}
					src := plane[ih*g.W : (ih+1)*g.W]
					if g.S == 1 {
						// Contiguous run: copy the in-range middle, zero the edges.
						lo, hi := 0, g.OW
						for lo < hi && kw-g.P+lo < 0 {
							dst[lo] = 0
							lo++
						}
						for hi > lo && kw-g.P+hi-1 >= g.W {
							hi--
							dst[hi] = 0
						}
						copy(dst[lo:hi], src[kw-g.P+lo:kw-g.P+hi])
						continue
					}
					for ow := range dst {
						iw := ow*g.S + kw - g.P
						if iw < 0 || iw >= g.W {
							dst[ow] = 0
						} else {
							dst[ow] = src[iw]
						}
					}
				}
			}
		}
	}
}

// col2im is the adjoint of im2col: it scatters cols back into img, summing
// overlaps. img is overwritten.
func col2im(g geom, cols, img []float32) {
	clear(img[:g.C*g.H*g.W])
	n := g.colCols()
	for c := 0; c < g.C; c++ {
		plane := img[c*g.H*g.W : (c+1)*g.H*g.W]
		for kh := 0; kh < g.K; kh++ {
			for kw := 0; kw < g.K; kw++ {
				row := cols[((c*g.K+kh)*g.K+kw)*n:][:n]
				// Columns ow with 0 ≤ ow·S+kw−P < W, found once per tap rather
				// than tested per element.
				lo, hi := owRange(g, kw)
				for oh := 0; oh < g.OH; oh++ {
					ih := oh*g.S + kh - g.P
					if ih < 0 || ih >= g.H || lo >= hi {
						continue
					}
					src := row[oh*g.OW+lo : oh*g.OW+hi]
					dst := plane[ih*g.W:][:g.W]
					if g.S == 1 {
						d := dst[lo+kw-g.P:][:len(src)]
						for i, v := range src {
							d[i] += v
						}
						continue
					}
					iw := lo*g.S + kw - g.P
					for _, v := range src {
						dst[iw] += v
						iw += g.S
					}
				}
			}
		}
	}
}

// owRange returns the column range [lo, hi) whose image column
// ow·S+kw−P falls inside [0, W).
func owRange(g geom, kw int) (lo, hi int) {
	for lo < g.OW && lo*g.S+kw-g.P < 0 {
		lo++
	}
	hi = g.OW
	for hi > lo && (hi-1)*g.S+kw-g.P >= g.W {
		hi--
	}
	return lo, hi
}

// Activation is applied after bias, fused into the layer.
type Activation uint8

const (
	ActNone Activation = iota
	ActReLU
	ActSigmoid
	ActSoftmax // over each item's outputs; dense layers only, inference only
)

func (a Activation) String() string {
	switch a {
	case ActReLU:
		return "relu"
	case ActSigmoid:
		return "sigmoid"
	case ActSoftmax:
		return "softmax"
	default:
		return "none"
	}
}

func sigmoid32(x float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(x))))
}

// biasAct adds bias[k] to each of the K planes of y (each of size hw) and applies act.
func biasAct(y, bias []float32, hw int, act Activation) {
	for k, b := range bias {
		p := y[k*hw : (k+1)*hw]
		activate(p, p, b, act)
	}
}

// actGrad turns the gradient with respect to an activation's output y into
// the gradient with respect to its input, using y alone.
func actGrad(act Activation, y, dy, dst []float32) {
	switch act {
	case ActReLU:
		vec.ReLUGrad(dst, y, dy)
	case ActSigmoid:
		for i, v := range y {
			dst[i] = dy[i] * v * (1 - v)
		}
	default:
		copy(dst, dy)
	}
}

// trainChunks is how many pieces the training graph's per-image loops cut
// a batch into: more than there are cores, so that a core that comes free
// (the machine is shared; another process may hold the other core for a
// while) takes the next piece rather than waiting for a fixed half, and a
// fixed number, so that reductions summed per piece, in piece order, give
// the same result whatever the scheduling and the core count.
const trainChunks = 8

// parallelChunks runs fn over [0,n) cut into chunks contiguous pieces
// (fewer if n is smaller), which p workers take in turn as they come free.
// worker indexes the caller's per-worker buffers (< p), chunk the piece.
func parallelChunks(n, chunks, p int, fn func(worker, chunk, lo, hi int)) {
	chunks = min(chunks, n)
	if chunks <= 0 {
		return
	}
	p = max(min(p, chunks), 1)
	if p == 1 {
		for c := 0; c < chunks; c++ {
			fn(0, c, c*n/chunks, (c+1)*n/chunks)
		}
		return
	}
	var next atomic.Int64
	parallel(p, p, func(worker, _, _ int) {
		for {
			c := int(next.Add(1)) - 1
			if c >= chunks {
				return
			}
			fn(worker, c, c*n/chunks, (c+1)*n/chunks)
		}
	})
}

// parallelFrom runs fn over [0,n) split across the cores when n is at
// least minN, inline below that, where a hand-off would cost more than it
// saves, and returns the number of workers. The pieces (see
// parallelChunks) go to whichever core is free. For the training graph's
// elementwise ops, which the tape machine runs one at a time on one
// goroutine, and which reduce nothing.
func parallelFrom(n, minN int, fn func(worker, lo, hi int)) int {
	p := 1
	if n >= minN {
		p = workers(n)
	}
	parallelChunks(n, p*trainChunks/2, p, func(w, _, lo, hi int) { fn(w, lo, hi) })
	return p
}

// parElems is the number of float32 elements under which an elementwise op
// stays on one core.
const parElems = 1 << 14

// ranger computes items [lo, hi) as worker w of a parallel call.
type ranger interface{ run(w, lo, hi int) }

type rangeFunc func(w, lo, hi int)

func (f rangeFunc) run(w, lo, hi int) { f(w, lo, hi) }

// parallel runs fn over [0,n) split into contiguous ranges, one per worker.
// It allocates (the closure, a channel); the forward passes, which run on
// every request, use parallelRun with jobs they keep instead.
func parallel(n, p int, fn func(worker, lo, hi int)) { parallelRun(n, p, rangeFunc(fn), nil) }

// parallelRun runs r over [0,n) split into p contiguous ranges, one per
// worker. p is the caller's workers(n), read once: the caller sized its
// per-worker buffers for it, and GOMAXPROCS may change in between (Go
// follows a container's CPU limit). The split depends only on n and p, so
// reductions done in worker order are reproducible for a given p. The
// caller runs the first range itself; the others go to a pool of goroutines
// that lives as long as the process. done is the caller's, reused across
// calls with capacity for every other worker (nil: made here): with it and
// a pointer r, the call allocates nothing.
//
// A panic in any range is re-raised in the caller, and only after every
// range has finished, so that no range is still writing into buffers the
// caller goes on to reuse. (Without the pool, a panic on another goroutine
// would end the process, out of reach of the batcher's recover.)
func parallelRun(n, p int, r ranger, done chan any) {
	if p <= 1 {
		r.run(0, 0, n)
		return
	}
	if done == nil || cap(done) < p-1 {
		done = make(chan any, p-1)
	}
	tasks := poolTasks()
	for w := 1; w < p; w++ {
		tasks <- task{r: r, w: w, lo: w * n / p, hi: (w + 1) * n / p, done: done}
	}
	caught := runCatching(r, 0, 0, n/p)
	for w := 1; w < p; w++ {
		if v := <-done; v != nil && caught == nil {
			caught = v
		}
	}
	if caught != nil {
		panic(caught)
	}
}

type task struct {
	r         ranger
	w, lo, hi int
	done      chan<- any
}

var pool struct {
	once  sync.Once
	tasks chan task
}

// poolTasks starts the pool on first use: one goroutine per core, so a
// range waits for a core, never for a goroutine. (If GOMAXPROCS grows
// later, ranges queue for these goroutines; none is lost.)
func poolTasks() chan<- task {
	pool.once.Do(func() {
		pool.tasks = make(chan task)
		for range runtime.GOMAXPROCS(0) {
			go func() {
				for t := range pool.tasks {
					t.done <- runCatching(t.r, t.w, t.lo, t.hi)
				}
			}()
		}
	})
	return pool.tasks
}

// KernelPanic is a panic raised inside a parallel range, with the stack of
// the goroutine it happened on.
type KernelPanic struct {
	Value any
	Stack []byte
}

func (k *KernelPanic) Error() string {
	return fmt.Sprintf("model: kernel panicked: %v\n%s", k.Value, k.Stack)
}

func runCatching(r ranger, w, lo, hi int) (caught any) {
	defer func() {
		if v := recover(); v != nil {
			caught = &KernelPanic{Value: v, Stack: debug.Stack()}
		}
	}()
	r.run(w, lo, hi)
	return nil
}

func workers(n int) int {
	p := runtime.GOMAXPROCS(0)
	if p > n {
		p = n
	}
	if p < 1 {
		p = 1
	}
	return p
}

// scratch hands each worker its own reusable buffer. reserve must run
// before the workers start: they then only touch their own slot.
type scratch struct {
	bufs [][]float32
	done chan any // parallelRun's, reused

	// The parallel bodies of the forward passes, kept here so that a pass
	// allocates nothing.
	fast  fastJob
	im2co im2colJob

	serial bool // see workers
}

// workers is workers(n), or 1 for a scratch of an op that a Runner's lane
// runs: the lanes already keep every core busy, each on its own items.
func (s *scratch) workers(n int) int {
	if s.serial {
		return 1
	}
	return workers(n)
}

// doneChan returns the scratch's done channel for a parallelRun of p workers.
func (s *scratch) doneChan(p int) chan any {
	if cap(s.done) < p {
		s.done = make(chan any, p)
	}
	return s.done
}

func (s *scratch) reserve(workers int) {
	for len(s.bufs) < workers {
		s.bufs = append(s.bufs, nil)
	}
}

func (s *scratch) get(worker, size int) []float32 {
	if cap(s.bufs[worker]) < size {
		s.bufs[worker] = make([]float32, size)
	}
	return s.bufs[worker][:size]
}
