package server

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// routeUnmatched labels requests no route matched, so that scanners probing
// random paths cannot blow up the label cardinality.
const routeUnmatched = "unmatched"

type httpMetrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	images    *prometheus.CounterVec
	modelInfo *prometheus.GaugeVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aeserve_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aeserve_http_request_duration_seconds",
			Help: "Time from reading the request headers to the handler's return, by route pattern and method.",
			// 1ms .. ~16s: a lone 28×28 image is milliseconds, a full batch under load seconds.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"route", "method"}),
		images: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aeserve_http_images_total",
			Help: "Images (or latents) in successfully answered requests, by route pattern and model.",
		}, []string{"route", "model"}),
		modelInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aeserve_model_info",
			Help: "Models being served (always 1), with their weights' fingerprint and architecture.",
		}, []string{"model", "fingerprint", "architecture"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.images, m.modelInfo} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register metrics: %w", err)
		}
	}
	// A caller-supplied registry may already carry the runtime collectors.
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		var are prometheus.AlreadyRegisteredError
		if err := reg.Register(c); err != nil && !errors.As(err, &are) {
			return nil, fmt.Errorf("server: register runtime metrics: %w", err)
		}
	}
	return m, nil
}
