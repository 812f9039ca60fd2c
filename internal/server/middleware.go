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
	id      string
	route   string // set by the 405 handler, which chi gives no pattern
	model   *served
	images  int
	problem *Problem
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

// statusWriter records what was sent, for the log line and the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController (and MaxBytesReader) reach the real writer.
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
		sw := &statusWriter{ResponseWriter: w}
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
		s.metrics.requests.WithLabelValues(route, r.Method, code).Inc()
		s.metrics.duration.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())
		modelName := ""
		if info.model != nil {
			modelName = info.model.name
		}
		if info.images > 0 && status < 300 {
			s.metrics.images.WithLabelValues(route, modelName).Add(float64(info.images))
		}

		var ev *zerolog.Event
		switch {
		case status >= 500:
			ev = s.log.Error()
		case status >= 400:
			ev = s.log.Warn()
		default:
			ev = s.log.Info()
		}
		ev = ev.Str("request_id", id).Str("method", r.Method).Str("route", route).Str("path", r.URL.Path).
			Int("status", status).Dur("latency", elapsed).Int("images", info.images).
			Str("model", modelName).Int64("bytes", sw.bytes).Str("remote", r.RemoteAddr)
		if p := info.problem; p != nil {
			ev = ev.Str("problem", p.Kind).Str("detail", p.Detail)
			if p.Index != nil {
				ev = ev.Int("index", *p.Index)
			}
			if p.Err != nil && status >= 500 {
				ev = ev.AnErr("error", p.Err)
			}
		}
		ev.Msg("request")
	})
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
