package server

import (
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/collectors/version"
)

// routeUnmatched labels requests no route matched, so that scanners probing
// random paths cannot blow up the label cardinality.
const routeUnmatched = "unmatched"

// methodOther labels requests whose method is not one of RFC 9110's, for
// the same reason: a method is any token a client cares to send.
const methodOther = "other"

// methodLabel is the method label of a request: the standard methods as
// they are (methods are case-sensitive, so "get" is not GET), anything else
// methodOther.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return methodOther
}

type httpMetrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	images    *prometheus.CounterVec
	modelInfo *prometheus.GaugeVec
	// serverInfo carries the role and the served models as labels of one
	// series, rather than as labels on every series.
	serverInfo *prometheus.GaugeVec
	// admissionShed counts the 503s of Server.reserve, which the batcher
	// never sees (its own are in aeserve_batch_shed_total).
	admissionShed *prometheus.CounterVec

	// Children of requests/duration and of images by their label values
	// (see series), looked up once per label set rather than per request.
	byRequest sync.Map // requestKey → *requestSeries
	byImages  sync.Map // imagesKey → prometheus.Counter
}

type requestKey struct{ route, method, code string }

type requestSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

type imagesKey struct{ route, model string }

// request is the requests counter and duration histogram of a request's
// labels. WithLabelValues hashes the values and takes the vector's lock on
// every call; the label sets a server sees are few (routes, methods, codes)
// and live as long as the vectors, which are never reset, so each is looked
// up once and kept.
func (m *httpMetrics) request(route, method, code string) *requestSeries {
	k := requestKey{route, method, code}
	if v, ok := m.byRequest.Load(k); ok {
		return v.(*requestSeries)
	}
	v, _ := m.byRequest.LoadOrStore(k, &requestSeries{
		requests: m.requests.WithLabelValues(route, method, code),
		duration: m.duration.WithLabelValues(route, method),
	})
	return v.(*requestSeries)
}

// imagesOf is the images counter of a route and model, as request does.
func (m *httpMetrics) imagesOf(route, model string) prometheus.Counter {
	k := imagesKey{route, model}
	if v, ok := m.byImages.Load(k); ok {
		return v.(prometheus.Counter)
	}
	v, _ := m.byImages.LoadOrStore(k, m.images.WithLabelValues(route, model))
	return v.(prometheus.Counter)
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
		admissionShed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aeserve_admission_shed_total",
			Help: "Requests answered 503 before their images were decoded, as the model half's queue had no room for them " +
				"(counting the images of requests still being decoded). The batcher's own sheds are in aeserve_batch_shed_total.",
		}, []string{"model", "half"}),
		modelInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aeserve_model_info",
			Help: "Models being served (always 1), with their weights' fingerprint and architecture.",
		}, []string{"model", "fingerprint", "architecture"}),
		serverInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aeserve_server_info",
			Help: "The process's role (all, encoder or decoder) and the models it serves, comma-separated (empty until loaded); always 1.",
		}, []string{"role", "models"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.images, m.admissionShed, m.modelInfo, m.serverInfo} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register metrics: %w", err)
		}
	}
	// A caller-supplied registry may already carry the runtime collectors.
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		// aeserve_build_info{version, revision, goversion, …}, as Prometheus's
		// own exporters have it; the build sets the values (README, Deploy).
		version.NewCollector("aeserve"),
	} {
		var are prometheus.AlreadyRegisteredError
		if err := reg.Register(c); err != nil && !errors.As(err, &are) {
			return nil, fmt.Errorf("server: register runtime metrics: %w", err)
		}
	}
	return m, nil
}
