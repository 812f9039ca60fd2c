// Package server is aeserve's HTTP layer: routing, request parsing and
// limits, content negotiation, problem+json errors, metrics and logs, and
// the wiring of one dynamic batcher per model half. It owns no maths: PNGs
// go through internal/digit, latents through api, forward passes through
// internal/batch into internal/model.
package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"google.golang.org/grpc/health"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/batch"
	"github.com/aeserve/aeserve/internal/model"
)

// Models answering requests that name none.
const (
	DefaultModel         = "conv"       // encode, reconstruct
	DefaultDenoiseModel  = "denoise"    // denoise, and the denoiser of classify?denoise=true
	DefaultClassifyModel = "classifier" // classify
	DefaultGenerateModel = "vae"        // sample, interpolate
)

// Defaults of Config's zero fields.
const (
	// A 48 Mpx phone photo is 8000×6000 and often over 8 MiB as a JPEG.
	DefaultMaxBodyBytes     = 32 << 20
	DefaultMaxImages        = 256
	DefaultMaxPixels        = 50_000_000
	DefaultMaxRequestPixels = 100_000_000
	// DefaultDecodeBudget is the pixels decoded at once, process-wide: two
	// 48 Mpx photos, or thousands of small images (see decodeBudget).
	DefaultDecodeBudget = 100_000_000
	// DefaultDecodeWait is the longest an image waits for the decode
	// budget before 503: a 48 Mpx JPEG takes about 1.5 s to decode and
	// fit, so a burst of four photos on two cores all get through.
	DefaultDecodeWait        = 5 * time.Second
	DefaultRequestTimeout    = 30 * time.Second
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 30 * time.Second
	// Batching defaults, chosen by measurement (README, Performance, and
	// bench/sweep.sh): 32 images per pass and one worker per half served
	// raw-PNG denoise at 64 connections faster than 64 images and a worker
	// per core, with a lower p99 and half the memory.
	DefaultMaxBatch  = 32
	DefaultMaxWait   = 2 * time.Millisecond
	DefaultQueueSize = 1024
)

// DefaultWorkers is the number of forward-pass workers per model half. One
// is enough: a runner already shares a big batch's images among the cores
// (model.Runner's lanes), and
// each extra worker holds its own graphs and buffers. MaxWait only matters
// with more than one worker (a free worker waits only while others are busy).
func DefaultWorkers() int { return 1 }

// BatchConfig sizes the batcher of each model half (see internal/batch).
type BatchConfig struct {
	MaxBatch  int           // images per forward pass; 0 = DefaultMaxBatch
	MaxWait   time.Duration // collection window while all workers are busy; 0 = DefaultMaxWait, < 0 = none
	QueueSize int           // images queued per half before 503; 0 = DefaultQueueSize
	Workers   int           // workers (each with its own graphs) per half; 0 = DefaultWorkers()
}

// Config configures a Server. Zero fields take the defaults above.
type Config struct {
	Log zerolog.Logger // the zero Logger discards
	// Registry receives every metric and is served on /metrics; nil makes a
	// private one. It is never the global registry, so that two servers in
	// one process (tests) do not collide.
	Registry *prometheus.Registry
	// OpenAPI is served on /openapi.yaml.
	OpenAPI []byte
	// Role decides which routes are served (each route declares the roles
	// that serve it; the others answer 404 not-served-by-role). The models
	// given to Load should hold the role's halves. "" is RoleAll.
	Role Role

	Batch BatchConfig

	MaxBodyBytes     int64         // per request, multipart framing included
	MaxImages        int           // per request
	MaxPixels        int           // per image, from its header (matters for fit=true)
	MaxRequestPixels int           // all images of a request together, from their headers; ≥ MaxPixels
	RequestTimeout   time.Duration // deadline of a request, queueing included (503 past it)

	// DecodeBudget bounds the pixels (as their headers declare them) of
	// the images being decoded at once, by every request together, and so
	// the memory decoding takes: ≥ MaxPixels; 0 = max(DefaultDecodeBudget, MaxPixels).
	DecodeBudget int64
	// DecodeWait is the longest an image waits for room in the decode
	// budget before the request answers 503 with Retry-After; 0 =
	// DefaultDecodeWait, < 0 = no wait.
	DecodeWait time.Duration

	// http.Server timeouts used by Serve. WriteTimeout 0 means
	// RequestTimeout + 15s, so that a request timing out in the queue can
	// still be told so.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// DrainDelay is how long Serve keeps accepting after /readyz turned 503,
	// so load balancers notice before the listener closes; 0 = none.
	DrainDelay time.Duration
	// ShutdownTimeout bounds the wait for in-flight and queued requests.
	ShutdownTimeout time.Duration

	// Security switches, all off when empty (security.go). TLSCertFile and
	// TLSKeyFile (PEM, both or neither) serve the API and gRPC over TLS,
	// re-read when they change. AuthTokensFile (one token a line) makes
	// /v1, /v2 and gRPC inference need "Authorization: Bearer <token>".
	// CORSOrigins lets browser pages of these origins (as ParseCORSOrigins
	// reads them, or "*") call the API. New fails on a bad pair, an unusable
	// token file or a bad origin.
	TLSCertFile, TLSKeyFile string
	AuthTokensFile          string
	CORSOrigins             []string
	// reloadCheck is how often, at most, the TLS and token files are looked
	// at for changes: 0 is DefaultReloadCheck, < 0 every use (tests).
	reloadCheck time.Duration

	// wrapProcessor lets tests stand between a batcher and its runner.
	wrapProcessor func(batch.Labels, batch.Processor) batch.Processor
}

func (c *Config) setDefaults() error {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxImages == 0 {
		c.MaxImages = DefaultMaxImages
	}
	if c.MaxPixels == 0 {
		c.MaxPixels = DefaultMaxPixels
	}
	if c.MaxRequestPixels == 0 {
		c.MaxRequestPixels = max(DefaultMaxRequestPixels, c.MaxPixels)
	}
	if c.DecodeBudget == 0 {
		c.DecodeBudget = max(DefaultDecodeBudget, int64(c.MaxPixels))
	}
	setDur(&c.DecodeWait, DefaultDecodeWait)
	if c.DecodeWait < 0 {
		c.DecodeWait = 0
	}
	setDur(&c.RequestTimeout, DefaultRequestTimeout)
	setDur(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDur(&c.ReadTimeout, DefaultReadTimeout)
	setDur(&c.WriteTimeout, c.RequestTimeout+15*time.Second)
	setDur(&c.IdleTimeout, DefaultIdleTimeout)
	setDur(&c.ShutdownTimeout, DefaultShutdownTimeout)
	if c.Role == "" {
		c.Role = RoleAll
	}
	if _, err := ParseRole(string(c.Role)); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	b := &c.Batch
	if b.MaxBatch == 0 {
		b.MaxBatch = DefaultMaxBatch
	}
	setDur(&b.MaxWait, DefaultMaxWait)
	if b.MaxWait < 0 {
		b.MaxWait = 0
	}
	if b.QueueSize == 0 {
		b.QueueSize = max(DefaultQueueSize, b.MaxBatch)
	}
	if b.Workers == 0 {
		b.Workers = DefaultWorkers()
	}
	switch {
	case c.MaxBodyBytes < 0, c.MaxImages < 0, c.MaxPixels < 0, c.MaxRequestPixels < 0, c.DecodeBudget < 0:
		return errors.New("server: limits must not be negative")
	case c.MaxRequestPixels < c.MaxPixels:
		return fmt.Errorf("server: max pixels per request %d is below the max pixels per image %d: such images could never be sent",
			c.MaxRequestPixels, c.MaxPixels)
	case c.DecodeBudget < int64(c.MaxPixels):
		return fmt.Errorf("server: decode budget %d is below the max pixels per image %d: such images could never be decoded",
			c.DecodeBudget, c.MaxPixels)
	case c.RequestTimeout < 0, c.ReadHeaderTimeout < 0, c.ReadTimeout < 0, c.WriteTimeout < 0,
		c.IdleTimeout < 0, c.ShutdownTimeout < 0, c.DrainDelay < 0:
		return errors.New("server: timeouts must not be negative")
	case c.WriteTimeout <= c.RequestTimeout:
		return fmt.Errorf("server: write timeout %v must exceed the request timeout %v, or timed-out requests could not be answered",
			c.WriteTimeout, c.RequestTimeout)
	case c.MaxImages > b.QueueSize:
		return fmt.Errorf("server: max images per request %d exceeds the queue size %d: such requests could never run",
			c.MaxImages, b.QueueSize)
	}
	// The batch package checks the rest when the batchers are made; checking
	// here too reports a bad flag at startup even before any model loads.
	return batch.Config{MaxBatch: b.MaxBatch, MaxWait: b.MaxWait, QueueSize: b.QueueSize, Workers: b.Workers,
		InLen: 1, OutLen: 1}.Validate()
}

// Server answers the HTTP API. Make one with New; it is safe for concurrent
// use. Until Load it answers /healthz, /readyz (503), /metrics and
// /openapi.yaml, and 503 on model routes.
type Server struct {
	cfg      Config
	log      zerolog.Logger
	reg      *prometheus.Registry
	metrics  *httpMetrics
	bmetrics *batch.Metrics
	router   *chi.Mux
	ops      *chi.Mux // health, readiness and metrics alone, for a listener of their own

	grpcHealth  *health.Server // gRPC's standard health service
	grpcMetrics *grpcMetrics

	sec security // TLS, tokens and CORS, as configured

	models atomic.Pointer[modelSet] // nil until Load

	budget *decodeBudget // pixels being decoded, by every request (budget.go)

	mu      sync.Mutex
	state   state
	waiting string // why not ready yet, for /readyz
	// closing is state == draining, read without the lock by every
	// response: while draining, each one asks its client to close the
	// connection (see statusWriter).
	closing atomic.Bool

	// hook, if set, runs at the start of every handler (tests use it to panic).
	hook func(*http.Request)
	// decodeHook, if set, runs before each input image is decoded, with its
	// index (tests use it to hold a request between images).
	decodeHook func(r *http.Request, i int)
	// drainWait waits out the drain delay in Serve; nil is time.Sleep.
	// Tests replace it to end the delay once their clients have seen it.
	drainWait func(time.Duration)
}

type state int

const (
	starting state = iota
	ready
	draining
)

// served is one loaded model and its batchers.
type served struct {
	name     string
	m        *model.Model
	fp       string
	batchers map[model.Half]*batch.Batcher
	// admitting counts, per half, the images of requests that passed the
	// capacity check and are being decoded, not yet queued (see reserve).
	admitting map[model.Half]*atomic.Int64
	info      api.ModelInfo
	// nameHeader and fpHeader are name and fp as header values, made once
	// (see headerValue).
	nameHeader, fpHeader []string
}

type modelSet struct {
	byName map[string]*served
	byFP   map[model.Fingerprint]*served
	names  []string // sorted
}

// New makes a Server with no models.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Log, reg: cfg.Registry, waiting: "models are not loaded yet"}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	var err error
	if s.metrics, err = newHTTPMetrics(s.reg); err != nil {
		return nil, err
	}
	if s.bmetrics, err = batch.NewMetrics(s.reg); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.grpcMetrics, err = newGRPCMetrics(s.reg); err != nil {
		return nil, err
	}
	if s.budget, err = newDecodeBudget(cfg.DecodeBudget, cfg.DecodeWait, s.reg); err != nil {
		return nil, err
	}
	s.grpcHealth = newGRPCHealth()
	s.metrics.serverInfo.WithLabelValues(string(cfg.Role), "").Set(1)
	if err := s.setupSecurity(); err != nil {
		return nil, err
	}
	s.router = s.routes()
	s.ops = s.newRouter()
	s.opsRoutes(s.ops)
	return s, nil
}

// Handler is the whole HTTP API.
func (s *Server) Handler() http.Handler { return s.router }

// OpsHandler serves only /healthz, /readyz and /metrics, for a listener of
// their own (see ServeAll): a NetworkPolicy sees ports, not paths, so
// probes and scrapers get a port that clients never need.
func (s *Server) OpsHandler() http.Handler { return s.ops }

// Registry holds the server's metrics.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// SetWaiting says, on /readyz, why the server is not ready yet (e.g. that it
// is training a model).
func (s *Server) SetWaiting(reason string) {
	s.mu.Lock()
	s.waiting = reason
	s.mu.Unlock()
}

// Load starts serving models, each with a batcher per half it has (encoder,
// decoder, and full when both are loaded), and makes the server ready. It may
// be called once.
func (s *Server) Load(models ...*model.Model) error {
	if len(models) == 0 {
		return errors.New("server: no models to load")
	}
	set := &modelSet{byName: map[string]*served{}, byFP: map[model.Fingerprint]*served{}}
	closeAll := func() {
		for _, sv := range set.byName {
			sv.close(context.Background())
		}
	}
	for _, m := range models {
		if _, dup := set.byName[m.Name]; dup {
			closeAll()
			return fmt.Errorf("server: model %q loaded twice", m.Name)
		}
		if other, dup := set.byFP[m.Fingerprint]; dup {
			// A binary latent names its weights only by fingerprint.
			closeAll()
			return fmt.Errorf("server: models %q and %q have the same weights (fingerprint %s)", other.name, m.Name, m.Fingerprint)
		}
		sv, err := s.serve(m)
		if err != nil {
			closeAll()
			return err
		}
		set.byName[m.Name] = sv
		set.byFP[m.Fingerprint] = sv
		set.names = append(set.names, m.Name)
	}
	slices.Sort(set.names)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.models.Load() != nil {
		closeAll()
		return errors.New("server: models already loaded")
	}
	if s.state == draining {
		closeAll()
		return errors.New("server: shutting down")
	}
	s.models.Store(set)
	s.metrics.serverInfo.Reset()
	s.metrics.serverInfo.WithLabelValues(string(s.cfg.Role), strings.Join(set.names, ",")).Set(1)
	for _, name := range set.names {
		sv := set.byName[name]
		s.metrics.modelInfo.WithLabelValues(sv.name, sv.fp, sv.m.Manifest.Architecture).Set(1)
		s.log.Info().Str("model", sv.name).Str("fingerprint", sv.fp).Str("architecture", sv.m.Manifest.Architecture).
			Strs("halves", sv.info.Halves).Msg("model serving")
	}
	if s.state == starting {
		s.state = ready
		s.grpcServing(true)
		s.log.Info().Msg("ready")
	}
	return nil
}

// runnerProc is one batch worker's runner, with the output buffer it
// reuses: the batcher copies results out before the next call.
type runnerProc struct {
	r   *model.Runner
	out []float32
}

func (p *runnerProc) Process(in []float32, n int) ([]float32, error) {
	size := n * p.r.OutLen()
	if cap(p.out) < size {
		p.out = make([]float32, size)
	}
	if err := p.r.RunInto(p.out[:size], in, n); err != nil {
		return nil, err
	}
	return p.out[:size], nil
}

func (p *runnerProc) Close() error { return p.r.Close() }

func (s *Server) serve(m *model.Model) (*served, error) {
	sv := &served{name: m.Name, m: m, fp: m.Fingerprint.String(),
		batchers: map[model.Half]*batch.Batcher{}, admitting: map[model.Half]*atomic.Int64{}}
	sv.nameHeader, sv.fpHeader = headerValue(sv.name), headerValue(sv.fp)
	for _, h := range m.Arch.Runnable() {
		if !m.Has(h) {
			continue
		}
		labels := batch.Labels{Model: m.Name, Half: string(h)}
		cfg := batch.Config{
			MaxBatch: s.cfg.Batch.MaxBatch, MaxWait: s.cfg.Batch.MaxWait,
			QueueSize: s.cfg.Batch.QueueSize, Workers: s.cfg.Batch.Workers,
			InLen: m.Arch.InLen(h), OutLen: m.Arch.OutLen(h),
		}
		b, err := batch.New(cfg, labels, s.bmetrics, func() (batch.Processor, error) {
			r, err := m.NewRunner(h)
			if err != nil {
				return nil, err
			}
			var p batch.Processor = &runnerProc{r: r}
			if s.cfg.wrapProcessor != nil {
				p = s.cfg.wrapProcessor(labels, p)
			}
			return p, nil
		})
		if err != nil {
			sv.close(context.Background())
			return nil, fmt.Errorf("server: model %s %s: %w", m.Name, h, err)
		}
		sv.batchers[h] = b
		sv.admitting[h] = new(atomic.Int64)
	}
	sv.info = modelInfo(m, sv.halves(), sv.operations(s.cfg.Role))
	return sv, nil
}

func (sv *served) close(ctx context.Context) error {
	var errs []error
	for h, b := range sv.batchers {
		if err := b.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("model %s %s: %w", sv.name, h, err))
		}
	}
	return errors.Join(errs...)
}

// Drain turns /readyz to 503 so load balancers stop sending; requests still
// arriving are served until Close, each answer with Connection: close, so
// that keep-alive clients open a new connection for their next request
// (which the load balancer can send elsewhere) rather than reuse one the
// server is about to close.
func (s *Server) Drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != draining {
		s.state = draining
		s.closing.Store(true)
		s.grpcServing(false)
		s.log.Info().Msg("draining: /readyz answers 503, connections close after their response")
	}
}

// Close drains, then answers every queued forward pass and stops the
// batchers' workers. Requests arriving afterwards get 503.
func (s *Server) Close(ctx context.Context) error {
	s.Drain()
	set := s.models.Load()
	if set == nil {
		return nil
	}
	var errs []error
	for _, name := range set.names {
		errs = append(errs, set.byName[name].close(ctx))
	}
	return errors.Join(errs...)
}

// loaded returns the models, or the 503 that says why there are none yet.
func (s *Server) loaded() (*modelSet, error) {
	if set := s.models.Load(); set != nil {
		return set, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == draining {
		return nil, shuttingDown()
	}
	return nil, notReady(s.waiting)
}

// Query parameters of the routes that take any; every other route takes none.
var (
	imageParams       = []string{"model", "fit", "include"}
	encodeParams      = []string{"model", "fit", "include", "quant"}
	decodeParams      = []string{"model"}
	classifyParams    = []string{"model", "fit", "denoise", "denoiser", "include"}
	sampleParams      = []string{"model", "n", "seed"}
	interpolateParams = []string{"model", "k", "fit"}
)

// Which roles serve each model route. Operational routes and the model
// metadata serve every role. A route added later declares its roles here.
var (
	encodeRoles = []Role{RoleAll, RoleEncoder}
	decodeRoles = []Role{RoleAll, RoleDecoder}
	fullRoles   = []Role{RoleAll} // needs both halves in one process
	// /v1/classify may run a denoiser's full model first, and a classifier
	// has no halves to split.
	classifyRoles = []Role{RoleAll}
	// Drawing new digits needs only the decoder; interpolating between two
	// images encodes them first.
	sampleRoles      = []Role{RoleAll, RoleDecoder}
	interpolateRoles = []Role{RoleAll}
)

// newRouter is a router with the middleware every listener shares, then
// extra, and the problem answers for unknown paths and methods.
func (s *Server) newRouter(extra ...func(http.Handler) http.Handler) *chi.Mux {
	r := chi.NewRouter()
	r.Use(s.observe, s.recoverer, s.limits, routeOnEscapedPath)
	r.Use(extra...)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeProblem(w, r, problemf(http.StatusNotFound, kindNotFound, "no route for %s", r.URL.Path))
	})
	r.MethodNotAllowed(s.methodNotAllowed(r))
	return r
}

func (s *Server) routes() *chi.Mux {
	// CORS and tokens guard the API listener only: the ops listener is for
	// probes and scrapers inside the cluster.
	r := s.newRouter(s.cors, s.authenticate)
	post := func(pattern string, roles []Role, h handlerFunc, params ...string) {
		if !s.cfg.Role.serves(roles) {
			// Still routed, so that the answer is this 404 and not "no
			// route", and before the query is looked at: whatever the
			// request, this process is the wrong one to ask.
			p := notServedByRole(s.cfg.Role, http.MethodPost, pattern, roles)
			r.Method(http.MethodPost, pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s.writeProblem(w, r, p)
			}))
			return
		}
		r.Method(http.MethodPost, pattern, s.handle(h, params...))
	}
	post("/v1/encode", encodeRoles, s.encode, encodeParams...)
	post("/v1/decode", decodeRoles, s.decode, decodeParams...)
	post("/v1/reconstruct", fullRoles, s.reconstruct, imageParams...)
	post("/v1/denoise", fullRoles, s.denoise, imageParams...)
	post("/v1/score", fullRoles, s.score, imageParams...)
	post("/v1/classify", classifyRoles, s.classify, classifyParams...)
	post("/v1/sample", sampleRoles, s.sample, sampleParams...)
	post("/v1/interpolate", interpolateRoles, s.interpolate, interpolateParams...)
	get(r, "/v1/models", s.handle(s.listModels))
	get(r, "/v1/models/{name}", s.handle(s.getModel))
	get(r, "/openapi.yaml", s.handle(s.openapi))
	s.webRoutes(r)
	s.opsRoutes(r)
	s.v2Routes(r)
	return r
}

// v2Routes adds the Open Inference Protocol's REST routes (v2.go). Every
// role serves them; a stage of another role's answers 404. Errors under
// /v2 take the protocol's {"error": "..."} form (writeProblem).
func (s *Server) v2Routes(r chi.Router) {
	get(r, "/v2", s.handle(s.v2ServerMetadata))
	get(r, "/v2/health/live", s.handle(s.v2Live))
	get(r, "/v2/health/ready", s.handle(s.v2Ready))
	for _, prefix := range []string{"/v2/models/{name}", "/v2/models/{name}/versions/{version}"} {
		get(r, prefix, s.handle(s.v2ModelMetadata))
		get(r, prefix+"/ready", s.handle(s.v2ModelReady))
		r.Method(http.MethodPost, prefix+"/infer", s.handle(s.v2Infer))
	}
}

// opsRoutes adds health, readiness and metrics to r. They take any query
// string and ignore it: kubelet probes and Prometheus scrape configurations
// may add parameters of their own, and a probe refused for one would take
// a healthy pod out of service.
func (s *Server) opsRoutes(r chi.Router) {
	get(r, "/healthz", s.handleAnyQuery(s.healthz))
	get(r, "/readyz", s.handleAnyQuery(s.readyz))
	get(r, "/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		Registry:          s.reg, // counts its own scrape errors
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: false,
	}))
}

// get serves h on GET and HEAD: RFC 9110 §9.3.2 asks every GET route to
// answer HEAD, and net/http sends the same headers without the body.
func get(r chi.Router, pattern string, h http.Handler) {
	r.Method(http.MethodGet, pattern, h)
	r.Method(http.MethodHead, pattern, h)
}

var allMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace,
}

// methodNotAllowed answers 405 with the Allow header RFC 9110 requires; chi
// does not pass the methods to a custom handler, so they are looked up in
// the router that refused the method.
func (s *Server) methodNotAllowed(router *chi.Mux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		route := ""
		path := r.URL.Path
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePath != "" {
			path = rc.RoutePath // what the router matched on
		}
		for _, m := range allMethods {
			if p := router.Find(chi.NewRouteContext(), m, path); p != "" {
				allow = append(allow, m)
				route = p
			}
		}
		infoOf(r.Context()).route = route
		p := problemf(http.StatusMethodNotAllowed, kindMethod, "%s is not allowed on %s", r.Method, r.URL.Path)
		p.Allow = allow
		s.writeProblem(w, r, p)
	}
}

// response is a handler's success: 200, with this body (and no
// Content-Type if it is empty), and any extra headers; or 304 Not
// Modified, with only the headers (status, for the page's files).
type response struct {
	contentType string
	body        []byte
	header      http.Header
	status      int // 0 is 200
}

// handlerFunc is a route's handler: it gets the query, already checked
// against the parameters the route takes, and returns its result or error.
type handlerFunc func(r *http.Request, q query) (*response, error)

// handle adapts a handler that returns (result, error): the query is
// parsed strictly first (params are what the route takes), the success is
// written here and every error goes through writeProblem.
func (s *Server) handle(h handlerFunc, params ...string) http.HandlerFunc {
	return s.adapt(h, func(raw string) (query, error) { return parseQuery(raw, params...) })
}

// handleAnyQuery is handle for the probe routes, which ignore the query.
func (s *Server) handleAnyQuery(h handlerFunc) http.HandlerFunc {
	return s.adapt(h, func(string) (query, error) { return nil, nil })
}

func (s *Server) adapt(h handlerFunc, parse func(raw string) (query, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.hook != nil {
			s.hook(r)
		}
		q, err := parse(r.URL.RawQuery)
		var res *response
		if err == nil {
			res, err = h(r, q)
		}
		hdr := w.Header()
		if _, ok := hdr["Vary"]; ok {
			hdr.Add("Vary", "Accept") // beside CORS's Vary: Origin
		} else {
			hdr["Vary"] = varyAccept
		}
		info := infoOf(r.Context())
		if info.model != nil {
			hdr[HeaderModel] = info.model.nameHeader
			hdr[HeaderFingerprint] = info.model.fpHeader
		}
		if info.denoiser != nil {
			hdr.Set(HeaderDenoiser, info.denoiser.name)
			hdr.Set(HeaderDenoiserFingerprint, info.denoiser.fp)
		}
		if err != nil {
			s.writeProblem(w, r, err)
			return
		}
		for k, vs := range res.header {
			hdr[k] = vs
		}
		hdr["X-Content-Type-Options"] = nosniff
		if res.status == http.StatusNotModified {
			w.WriteHeader(http.StatusNotModified) // no body, and so no Content-Type or Length
			return
		}
		switch res.contentType {
		case "":
		case ctPNG:
			hdr["Content-Type"] = contentTypePNG
		default:
			hdr.Set("Content-Type", res.contentType)
		}
		hdr.Set("Content-Length", strconv.Itoa(len(res.body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(res.body)
	}
}

// headerValue is v as the value of a header set by assigning to the
// http.Header map under its canonical key, made once rather than by
// Header.Set on every response. Its capacity is its length, so that a later
// Header.Add appends to a copy and never to the shared array; nothing in
// net/http writes into a header's values in place.
func headerValue(v string) []string { return []string{v}[:1:1] }

// Header values every answer, or every PNG answer, carries.
var (
	varyAccept     = headerValue("Accept")
	nosniff        = headerValue("nosniff")
	contentTypePNG = headerValue(ctPNG)
)

// query is a request's query string, each parameter given once.
type query map[string]string

// parseQuery reads a query string strictly, so that nothing a client sends
// is silently ignored: it must parse, every parameter must be one the route
// takes (params), given once and with a value. Meanings of the values are
// the handlers' to check.
func parseQuery(raw string, params ...string) (query, error) {
	if raw == "" {
		return nil, nil
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, malformed("malformed query string: %v", err)
	}
	names := make([]string, 0, len(vals))
	for name := range vals {
		names = append(names, name)
	}
	slices.Sort(names) // the first problem reported is the same every time
	q := make(query, len(vals))
	for _, name := range names {
		v := vals[name]
		switch {
		case !slices.Contains(params, name):
			takes := "none"
			if len(params) > 0 {
				takes = strings.Join(params, ", ")
			}
			return nil, malformed("unknown query parameter %q (this route takes %s)", name, takes)
		case len(v) > 1:
			return nil, malformed("query parameter %q is given %d times; give it once", name, len(v))
		case v[0] == "":
			return nil, malformed("query parameter %q has no value", name)
		}
		q[name] = v[0]
	}
	return q, nil
}
