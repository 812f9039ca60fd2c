package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/batch"
	"github.com/aeserve/aeserve/internal/digit"
)

// ProblemTypeBase prefixes every problem "type". RFC 9457 asks for a URI
// that names the kind of problem, not the occurrence; a URN needs no host
// that could go away, and openapi.yaml lists the suffixes.
const ProblemTypeBase = "urn:aeserve:problem:"

// StatusClientClosed is recorded (logs, metrics) when the client went away
// before its answer was ready. Nobody receives it; it keeps abandoned
// requests out of the 5xx counts, as nginx's 499 does.
const StatusClientClosed = 499

// retryAfter is what a 503 asks clients to wait: long enough for a queue of
// forward passes to drain, short enough not to idle a recovering server.
const retryAfter = time.Second

// Problem is an error that knows its HTTP answer. Handlers return it (or an
// error wrapping one, or a known error from the packages below, which
// problemOf maps), and writeProblem is the only place that turns it into a
// response.
type Problem struct {
	Status int
	Kind   string // suffix of the type URI, e.g. "queue-full"
	Title  string // short, the same for every occurrence of Kind
	Detail string // this occurrence, for people
	Index  *int   // the failing image of a batch
	// RetryAfter, if > 0, is sent as the Retry-After header.
	RetryAfter time.Duration
	// Allow lists the methods for a 405.
	Allow []string
	// Accept lists what a 415 would have taken (sent as Accept-Post).
	Accept []string
	// Close asks the client to close the connection after this answer
	// (Connection: close), for failures that leave it out of step.
	Close bool
	Err   error // cause, logged but never sent: it may hold internals
}

func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(p.Status))
	b.WriteString(" ")
	b.WriteString(p.Kind)
	if p.Detail != "" {
		b.WriteString(": ")
		b.WriteString(p.Detail)
	}
	if p.Err != nil && p.Status >= 500 {
		b.WriteString(": ")
		b.WriteString(p.Err.Error())
	}
	return b.String()
}

func (p *Problem) Unwrap() error { return p.Err }

// Problem kinds. Titles are fixed per kind so clients can show them; the
// detail says what happened this time.
const (
	kindMalformed       = "malformed"
	kindNotFound        = "not-found"
	kindUnknownModel    = "unknown-model"
	kindNotServedByRole = "not-served-by-role"
	kindUnsupported     = "unsupported-operation"
	kindMethod          = "method-not-allowed"
	kindNotAcceptable   = "not-acceptable"
	kindConflict        = "model-mismatch"
	kindTooLarge        = "too-large"
	kindMediaType       = "unsupported-media-type"
	kindUnprocessable   = "unprocessable"
	kindOverloaded      = "overloaded"
	kindTimeout         = "timeout"
	kindRequestTimeout  = "request-timeout"
	kindNotReady        = "not-ready"
	kindShuttingDown    = "shutting-down"
	kindClientClosed    = "client-closed"
	kindInternal        = "internal"
	kindUnauthorized    = "unauthorized"
)

var titles = map[string]string{
	kindMalformed:       "Malformed request",
	kindNotFound:        "Not found",
	kindUnknownModel:    "Unknown model",
	kindNotServedByRole: "Route not served by this server's role",
	kindUnsupported:     "Model cannot do this",
	kindMethod:          "Method not allowed",
	kindNotAcceptable:   "Not acceptable",
	kindConflict:        "Latent does not belong to this model",
	kindTooLarge:        "Request too large",
	kindMediaType:       "Unsupported media type",
	kindUnprocessable:   "Unprocessable content",
	kindOverloaded:      "Server overloaded",
	kindTimeout:         "Request timed out",
	kindRequestTimeout:  "Request body timed out",
	kindNotReady:        "Not ready",
	kindShuttingDown:    "Shutting down",
	kindClientClosed:    "Client closed request",
	kindInternal:        "Internal server error",
	kindUnauthorized:    "Unauthorized",
}

func problemf(status int, kind, format string, args ...any) *Problem {
	return &Problem{Status: status, Kind: kind, Title: titles[kind], Detail: fmt.Sprintf(format, args...)}
}

func malformed(format string, args ...any) *Problem {
	return problemf(http.StatusBadRequest, kindMalformed, format, args...)
}

func tooLarge(format string, args ...any) *Problem {
	return problemf(http.StatusRequestEntityTooLarge, kindTooLarge, format, args...)
}

func unprocessable(format string, args ...any) *Problem {
	return problemf(http.StatusUnprocessableEntity, kindUnprocessable, format, args...)
}

func conflict(format string, args ...any) *Problem {
	return problemf(http.StatusConflict, kindConflict, format, args...)
}

func unknownModel(name string, have []string) *Problem {
	return problemf(http.StatusNotFound, kindUnknownModel, "no model named %q (have %s)", name, strings.Join(have, ", "))
}

func notReady(detail string) *Problem {
	p := problemf(http.StatusServiceUnavailable, kindNotReady, "%s", detail)
	p.RetryAfter = retryAfter
	return p
}

// shuttingDown asks clients to come back later: to another instance behind
// the same address, or this one restarted.
func shuttingDown() *Problem {
	p := problemf(http.StatusServiceUnavailable, kindShuttingDown, "the server is shutting down")
	p.RetryAfter = retryAfter
	return p
}

// queueFull is the 503 of a model half whose queue cannot take a request.
func queueFull() *Problem {
	p := problemf(http.StatusServiceUnavailable, kindOverloaded, "the model's queue is full; retry later")
	p.RetryAfter = retryAfter
	return p
}

// atIndex names the failing image of a batch in the problem.
func atIndex(i int, err error) *Problem {
	p := *problemOf(err)
	p.Index = &i
	p.Detail = fmt.Sprintf("image %d: %s", i, p.Detail)
	return &p
}

// problemOf maps any error to its answer. Errors of the packages the server
// builds on are recognised here, in one place, so that handlers can return
// them as they come.
func problemOf(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var de *digit.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &de):
		switch de.Kind {
		case digit.KindTooLarge:
			p = tooLarge("%s", de.Msg)
		case digit.KindSize:
			p = unprocessable("%s", de.Msg)
		case digit.KindFormat:
			// Bytes of no image format the server reads: as a Content-Type
			// it does not take, with the types it does.
			p = problemf(http.StatusUnsupportedMediaType, kindMediaType, "%s", de.Msg)
			p.Accept = imageTypes
		default:
			p = malformed("%s", de.Msg)
		}
	case errors.As(err, &mbe):
		p = tooLarge("request body exceeds %d bytes", mbe.Limit)
	case errors.Is(err, batch.ErrQueueFull):
		p = queueFull()
	case errors.Is(err, batch.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		p = problemf(http.StatusServiceUnavailable, kindTimeout, "the request's deadline passed before a forward pass could answer it")
		p.RetryAfter = retryAfter
	case errors.Is(err, batch.ErrTooLarge):
		p = tooLarge("more images than the model's queue can ever hold")
	case errors.Is(err, batch.ErrClosed):
		p = shuttingDown()
	case errors.Is(err, context.Canceled):
		p = problemf(StatusClientClosed, kindClientClosed, "the client went away")
	default:
		p = problemf(http.StatusInternalServerError, kindInternal, "internal error; the request ID identifies it in the server's log")
	}
	p.Err = err
	return p
}

// writeProblem is the one place errors become responses.
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	p := problemOf(err)
	info := infoOf(r.Context())
	info.problem = p
	h := w.Header()
	// Whatever a handler had staged for a success does not describe this.
	h.Del("Content-Length")
	h.Del("Content-Encoding")
	h.Set("Content-Type", ctProblem)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// An over-long body is left unread: close the connection rather than
	// let net/http drain it. (MaxBytesReader would say so itself, but it
	// only finds net/http's own writer, not the middleware's wrapper.)
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		h.Set("Connection", "close")
	}
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((p.RetryAfter+time.Second-1)/time.Second)))
	}
	if len(p.Allow) > 0 {
		h.Set("Allow", strings.Join(p.Allow, ", "))
	}
	if len(p.Accept) > 0 {
		h.Set("Accept-Post", strings.Join(p.Accept, ", "))
	}
	if p.Close {
		h.Set("Connection", "close")
	}
	var b []byte
	if isV2(r) {
		// The Open Inference Protocol's own error object, for its clients.
		h.Set("Content-Type", ctJSON)
		b = v2ErrorBody(p)
	} else {
		body := api.Problem{Type: ProblemTypeBase + p.Kind, Title: p.Title, Status: p.Status, Detail: p.Detail, Index: p.Index}
		if body.Title == "" {
			body.Title = http.StatusText(p.Status)
		}
		body.RequestID = info.id
		var merr error
		if b, merr = json.Marshal(body); merr != nil { // cannot happen with these field types
			b = []byte(`{"type":"` + ProblemTypeBase + kindInternal + `","title":"Internal server error","status":500,"detail":""}`)
		}
	}
	b = append(b, '\n')
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(p.Status)
	_, _ = w.Write(b)
}

// isV2 reports whether r is on the Open Inference Protocol's routes, whose
// errors take the protocol's form.
func isV2(r *http.Request) bool {
	return r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/")
}

// v2ErrorBody is {"error": "..."}: the problem's detail, prefixed with its
// kind so that a client can tell causes apart as /v1's type lets it.
func v2ErrorBody(p *Problem) []byte {
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	b, err := json.Marshal(struct {
		Error string `json:"error"`
	}{p.Kind + ": " + msg})
	if err != nil {
		return []byte(`{"error":"internal"}`)
	}
	return b
}
