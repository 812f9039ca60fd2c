package batch

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds the batcher collectors. One Metrics is shared by every
// Batcher of a process; each Batcher binds its own {model, half} children.
// A nil *Metrics is valid and means "no metrics".
type Metrics struct {
	queueWait  *prometheus.HistogramVec
	compute    *prometheus.HistogramVec
	size       *prometheus.HistogramVec
	executions *prometheus.CounterVec
	requests   *prometheus.CounterVec
	items      *prometheus.CounterVec
	errors     *prometheus.CounterVec
	depth      *prometheus.GaugeVec
	capacity   *prometheus.GaugeVec
	shed       *prometheus.CounterVec
}

// Shed reasons, the values of the "reason" label of aeserve_batch_shed_total.
const (
	ReasonQueueFull = "queue_full"
	ReasonTimeout   = "timeout"
	ReasonCanceled  = "canceled"
)

// NewMetrics creates the collectors and registers them with reg. A nil reg
// leaves them unregistered. If reg already holds identical collectors (a
// second NewMetrics on the same registry, as happens in tests and on
// reload), those are reused instead of failing.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	labels := []string{"model", "half"}
	m := &Metrics{
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aeserve_batch_queue_wait_seconds",
			Help: "Time a request spent queued before its first forward pass started.",
			// 100µs .. ~6.5s: the interesting range is MaxWait (ms) up to the request deadline (s).
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 17),
		}, labels),
		compute: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aeserve_batch_compute_seconds",
			Help:    "Duration of one batched forward pass (Processor.Process).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15),
		}, labels),
		size: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aeserve_batch_size",
			Help:    "Items (images) per forward pass.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9), // 1, 2, 4, ..., 256
		}, labels),
		executions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aeserve_batch_executions_total",
			Help: "Forward passes run (calls to Processor.Process).",
		}, labels),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aeserve_batch_requests_total",
			Help: "Requests answered by a forward pass (successfully or with the processor's error).",
		}, labels),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aeserve_batch_items_total",
			Help: "Items (images) processed by forward passes.",
		}, labels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aeserve_batch_execution_errors_total",
			Help: "Forward passes that failed (processor error, panic or bad output length).",
		}, labels),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aeserve_batch_queue_depth",
			Help: "Items (images) currently queued.",
		}, labels),
		// The queue's size, beside its depth, so that saturation is one
		// division in a rule or a dashboard, whatever each pod was given.
		capacity: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aeserve_batch_queue_capacity",
			Help: "Items (images) the queue holds at most (--queue-size).",
		}, labels),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aeserve_batch_shed_total",
			Help: "Requests answered without a result, by reason (queue_full, timeout, canceled).",
		}, []string{"model", "half", "reason"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	register := func(c prometheus.Collector, set func(prometheus.Collector) bool) {
		err := reg.Register(c)
		if err == nil {
			return
		}
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) && set(are.ExistingCollector) {
			return
		}
		errs = append(errs, err)
	}
	hist := func(p **prometheus.HistogramVec) func(prometheus.Collector) bool {
		return func(c prometheus.Collector) bool {
			v, ok := c.(*prometheus.HistogramVec)
			if ok {
				*p = v
			}
			return ok
		}
	}
	ctr := func(p **prometheus.CounterVec) func(prometheus.Collector) bool {
		return func(c prometheus.Collector) bool {
			v, ok := c.(*prometheus.CounterVec)
			if ok {
				*p = v
			}
			return ok
		}
	}
	register(m.queueWait, hist(&m.queueWait))
	register(m.compute, hist(&m.compute))
	register(m.size, hist(&m.size))
	register(m.executions, ctr(&m.executions))
	register(m.requests, ctr(&m.requests))
	register(m.items, ctr(&m.items))
	register(m.errors, ctr(&m.errors))
	register(m.depth, func(c prometheus.Collector) bool {
		v, ok := c.(*prometheus.GaugeVec)
		if ok {
			m.depth = v
		}
		return ok
	})
	register(m.capacity, func(c prometheus.Collector) bool {
		v, ok := c.(*prometheus.GaugeVec)
		if ok {
			m.capacity = v
		}
		return ok
	})
	register(m.shed, ctr(&m.shed))
	if len(errs) > 0 {
		return nil, fmt.Errorf("batch: register metrics: %w", errors.Join(errs...))
	}
	return m, nil
}

// bound holds one Batcher's children, resolved once so the hot path does no
// label lookups.
type bound struct {
	queueWait, compute, size                  prometheus.Observer
	executions, requests, items, errors       prometheus.Counter
	depth                                     prometheus.Gauge
	shedQueueFull, shedTimeout, shedCancelled prometheus.Counter
}

func (m *Metrics) bind(l Labels, queueSize int) *bound {
	if m == nil {
		// Unregistered collectors cost a few atomic adds and spare the hot
		// path a nil check per update.
		m, _ = NewMetrics(nil)
	}
	lv := []string{l.Model, l.Half}
	m.capacity.WithLabelValues(lv...).Set(float64(queueSize))
	return &bound{
		queueWait:     m.queueWait.WithLabelValues(lv...),
		compute:       m.compute.WithLabelValues(lv...),
		size:          m.size.WithLabelValues(lv...),
		executions:    m.executions.WithLabelValues(lv...),
		requests:      m.requests.WithLabelValues(lv...),
		items:         m.items.WithLabelValues(lv...),
		errors:        m.errors.WithLabelValues(lv...),
		depth:         m.depth.WithLabelValues(lv...),
		shedQueueFull: m.shed.WithLabelValues(l.Model, l.Half, ReasonQueueFull),
		shedTimeout:   m.shed.WithLabelValues(l.Model, l.Half, ReasonTimeout),
		shedCancelled: m.shed.WithLabelValues(l.Model, l.Half, ReasonCanceled),
	}
}
