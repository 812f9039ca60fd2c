package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"
)

// HeaderRequestID carries the request ID both ways: a client's own ID is
// kept so its logs and ours can be joined; otherwise one is made up.
const HeaderRequestID = "X-Request-ID"

// Headers naming the model that answered.
const (
	HeaderModel       = "X-Model"
	HeaderFingerprint = "X-Model-Fingerprint"
)

// maxRequestIDLen bounds what we copy from a client into every log line.
const maxRequestIDLen = 128

// reqInfo collects what the per-request log line and metrics need from the
// layers below. Each request has its own; only its goroutine touches it.
type reqInfo struct {
	id       string
	route    string // set by the 405 handler, which chi gives no pattern
	model    *served
	denoiser *served // classify?denoise=true's autoencoder
	images   int
	problem  *Problem
}

type infoKey struct{}

// infoOf never returns nil, so that handlers mounted without observe (in a
// caller's own mux, say) still work; their notes then go nowhere.
func infoOf(ctx context.Context) *reqInfo {
	if i, ok := ctx.Value(infoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e { // printable ASCII, no spaces: safe in logs and headers
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand docs)
	return hex.EncodeToString(b[:])
}

// statusWriter records what was sent, for the log line and the metrics,
// and while the server drains (closing) asks the client to close the
// connection after the response.
type statusWriter struct {
	http.ResponseWriter
	closing *atomic.Bool
	status  int
	bytes   int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		// Decided when the answer goes out, not when the request came in, so
		// that requests in flight when the drain begins close too. net/http
		// honours the header: it closes the connection after this response.
		if w.closing != nil && w.closing.Load() {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer. (MaxBytesReader
// does not unwrap; writeProblem closes the connection after a 413 instead.)
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe assigns the request ID and, once the request is answered, writes
// the one log line and the HTTP metrics. It sits inside the router so that
// chi's route pattern is known when the handler returns.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(HeaderRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		info := &reqInfo{id: id}
		w.Header().Set(HeaderRequestID, id)
		sw := &statusWriter{ResponseWriter: w, closing: &s.closing}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))

		elapsed := time.Since(start)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		if info.problem != nil {
			// The client may be gone (499), in which case nothing was written
			// that says so; the problem knows.
			status = info.problem.Status
		}
		route := info.route
		if rc := chi.RouteContext(r.Context()); route == "" && rc != nil {
			route = rc.RoutePattern()
		}
		if route == "" {
			route = routeUnmatched
		}
		code := strconv.Itoa(status)
		method := methodLabel(r.Method)
		series := s.metrics.request(route, method, code)
		series.requests.Inc()
		series.duration.Observe(elapsed.Seconds())
		modelName := ""
		if info.model != nil {
			modelName = info.model.name
		}
		if info.images > 0 && status < 300 {
			s.metrics.imagesOf(route, modelName).Add(float64(info.images))
		}

		var ev *zerolog.Event
		switch {
		case probeRoutes[route] && (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
			status != http.StatusInternalServerError:
			// Probes and scrapes come every few seconds: their lines are
			// noise at info, whatever they answer (a 503 from /readyz is
			// the answer a probe asks for). A bug (500) is still an error.
			ev = s.log.Debug()
		case status >= 500:
			ev = s.log.Error()
		case status >= 400:
			ev = s.log.Warn()
		default:
			ev = s.log.Info()
		}
		sent := sw.bytes
		if r.Method == http.MethodHead {
			sent = 0 // net/http drops the body the handler wrote
		}
		ev = ev.Str("request_id", id).Str("method", logMethod(r.Method)).Str("route", route).Str("path", r.URL.Path).
			Int("status", status).Dur("latency", elapsed).Int("images", info.images).
			Str("model", modelName).Int64("bytes", sent).Str("remote", r.RemoteAddr)
		if p := info.problem; p != nil {
			ev = ev.Str("problem", p.Kind).Str("detail", p.Detail)
			if p.Index != nil {
				ev = ev.Int("index", *p.Index)
			}
			// The cause is logged where the detail hides it: server errors, and
			// the connection failures behind 408 and 499.
			if p.Err != nil && (status >= 500 || status == http.StatusRequestTimeout || status == StatusClientClosed) {
				ev = ev.AnErr("error", p.Err)
			}
		}
		ev.Msg("request")
	})
}

// probeRoutes are the routes of probes and scrapers, whose requests
// observe logs at debug: kubelet's, Prometheus's and KServe's (V2 health).
var probeRoutes = map[string]bool{
	"/healthz":         true,
	"/readyz":          true,
	"/metrics":         true,
	"/v2/health/live":  true,
	"/v2/health/ready": true,
}

// maxLogMethod bounds what of a non-standard method goes into a log line.
const maxLogMethod = 32

// logMethod is the method as logged: as sent, but cut short, as any token
// is a valid method.
func logMethod(m string) string {
	if len(m) > maxLogMethod {
		return m[:maxLogMethod] + "…"
	}
	return m
}

// routeOnEscapedPath makes the router match the path as sent, percent
// escapes included, instead of chi's default of r.URL.RawPath when net/url
// kept one and the decoded r.URL.Path otherwise, which decodes a parameter
// or not depending on how the client happened to escape it. Handlers then
// unescape each parameter exactly once (url.PathUnescape). Escapes of
// unreserved characters are decoded first (RFC 3986 §6.2.2.2 makes them
// equivalent), so /%68ealthz is /healthz and /v1/models/%63onv names conv.
func routeOnEscapedPath(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePath == "" {
			rc.RoutePath = normalizeEscapes(r.URL.EscapedPath())
		}
		next.ServeHTTP(w, r)
	})
}

// normalizeEscapes decodes the percent escapes of unreserved characters
// (ALPHA, DIGIT, "-", ".", "_", "~") in an escaped path and leaves every
// other escape as it is.
func normalizeEscapes(p string) string {
	i := strings.IndexByte(p, '%')
	if i < 0 {
		return p
	}
	b := make([]byte, 0, len(p))
	b = append(b, p[:i]...)
	for ; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			if c, ok := unhex2(p[i+1], p[i+2]); ok && unreserved(c) {
				b = append(b, c)
				i += 2
				continue
			}
		}
		b = append(b, p[i])
	}
	return string(b)
}

func unhex2(h, l byte) (byte, bool) {
	v := func(c byte) (byte, bool) {
		switch {
		case '0' <= c && c <= '9':
			return c - '0', true
		case 'a' <= c && c <= 'f':
			return c - 'a' + 10, true
		case 'A' <= c && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	hi, ok1 := v(h)
	lo, ok2 := v(l)
	return hi<<4 | lo, ok1 && ok2
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// recoverer answers a panicking handler with a 500 and keeps the server up;
// net/http would only drop the connection, and the log line would be lost.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v) // net/http's own way to abort a response; it is not a bug
			}
			s.log.Error().Str("request_id", infoOf(r.Context()).id).Str("panic", fmt.Sprint(v)).Bytes("stack", debug.Stack()).Msg("handler panicked")
			err := fmt.Errorf("panic: %v", v)
			if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
				// Too late for a problem document; the log line still says 500.
				infoOf(r.Context()).problem = problemOf(err)
				return
			}
			s.writeProblem(w, r, err)
		}()
		next.ServeHTTP(w, r)
	})
}

// limits bounds what a request may cost before any handler reads it.
func (s *Server) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
