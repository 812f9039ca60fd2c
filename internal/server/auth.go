package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Bearer tokens (RFC 6750) on the API: with Config.AuthTokensFile set, every
// request needs "Authorization: Bearer <token>" with one of the file's
// tokens, except on openPaths (HTTP) and openMethods (gRPC). A request
// without one answers 401 with a WWW-Authenticate challenge (gRPC:
// Unauthenticated); the token never reaches a log line.

// openPaths are the API listener's paths that need no token: kubelet's
// probes and Prometheus must reach them on the API port when there is no
// --metrics-addr, KServe probes /v2/health/* on the API port, and
// /openapi.yaml is the public contract (the repository's own file), which
// tools fetch before they have a token and which says nothing about this
// deployment. So do the page, the API docs and their files (webOpen): a
// browser opening them sends no token, and they are the repository's own
// files too. Anything else, unknown paths included, needs a token, so that
// nothing can be learnt about the server without one.
var openPaths = map[string]bool{
	"/healthz":         true,
	"/readyz":          true,
	"/metrics":         true,
	"/openapi.yaml":    true,
	"/v2/health/live":  true,
	"/v2/health/ready": true,
}

// openMethods are the gRPC methods that need no token: the protocol's
// liveness and readiness (as /v2/health/*), gRPC's health service (kubelet's
// gRPC probes send no metadata) and reflection, which describes only the
// protocol's public service definition.
var openMethods = map[string]bool{
	"/inference.GRPCInferenceService/ServerLive":  true,
	"/inference.GRPCInferenceService/ServerReady": true,
	"/grpc.health.v1.Health/Check":                true,
	"/grpc.health.v1.Health/Watch":                true,
	"/grpc.health.v1.Health/List":                 true,
}

func grpcMethodOpen(full string) bool {
	return openMethods[full] ||
		strings.HasPrefix(full, "/grpc.reflection.v1.ServerReflection/") ||
		strings.HasPrefix(full, "/grpc.reflection.v1alpha.ServerReflection/")
}

// bearerChallenge is the WWW-Authenticate header of every 401.
const bearerChallenge = `Bearer realm="aeserve"`

// maxTokenFile bounds what is read of a token file.
const maxTokenFile = 1 << 20

// tokenSource holds the SHA-256 digests of the accepted tokens, re-read
// when the file changes. A file that cannot be used then (unreadable, no
// tokens, a line that is not a token) leaves the previous tokens in force,
// logs an error and counts it.
type tokenSource struct {
	file    string
	watch   *fileWatch
	digests atomic.Pointer[[][sha256.Size]byte]
	log     zerolog.Logger

	reloadErrors prometheus.Counter
	count        prometheus.Gauge
}

func newTokenSource(file string, every time.Duration, log zerolog.Logger, reg prometheus.Registerer) (*tokenSource, error) {
	ts := &tokenSource{file: file, log: log, watch: newFileWatch(every, file),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aeserve_auth_reload_errors_total",
			Help: "Changes of the token file (--auth-tokens) that could not be used; the previous tokens stay in force.",
		}),
		count: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aeserve_auth_tokens",
			Help: "Bearer tokens the API accepts (from --auth-tokens).",
		}),
	}
	d, err := readTokens(file)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	for _, m := range []prometheus.Collector{ts.reloadErrors, ts.count} {
		if err := reg.Register(m); err != nil {
			return nil, fmt.Errorf("server: register auth metrics: %w", err)
		}
	}
	ts.set(d)
	log.Info().Str("file", file).Int("tokens", len(d)).Msg("bearer tokens loaded")
	return ts, nil
}

func (ts *tokenSource) set(d [][sha256.Size]byte) {
	ts.digests.Store(&d)
	ts.count.Set(float64(len(d)))
}

func (ts *tokenSource) reload() {
	d, err := readTokens(ts.file)
	if err != nil {
		ts.reloadErrors.Inc()
		ts.log.Error().Err(err).Msg("bearer tokens not reloaded: the previous tokens stay in force")
		return
	}
	ts.set(d)
	ts.log.Info().Str("file", ts.file).Int("tokens", len(d)).Msg("bearer tokens reloaded")
}

// readTokens reads a token file: one token a line, surrounding white space
// trimmed, blank lines and lines starting with # skipped. Errors name the
// file and line, never a token.
func readTokens(file string) ([][sha256.Size]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", file, err)
	}
	if len(b) > maxTokenFile {
		return nil, fmt.Errorf("token file %s: larger than %d bytes", file, maxTokenFile)
	}
	var out [][sha256.Size]byte
	for i, line := range bytes.Split(b, []byte("\n")) {
		tok := bytes.TrimSpace(line)
		if len(tok) == 0 || tok[0] == '#' {
			continue
		}
		if !isToken(tok) {
			return nil, fmt.Errorf("token file %s, line %d: not a bearer token (RFC 6750: letters, digits, -._~+/ and then any =)", file, i+1)
		}
		out = append(out, sha256.Sum256(tok))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("token file %s holds no tokens (one a line; blank lines and # comments are skipped)", file)
	}
	return out, nil
}

// isToken reports whether b is an RFC 6750 b64token, which is what a
// client can send after "Bearer ".
func isToken(b []byte) bool {
	i := 0
	for i < len(b) && (b[i] >= 'a' && b[i] <= 'z' || b[i] >= 'A' && b[i] <= 'Z' || b[i] >= '0' && b[i] <= '9' ||
		strings.IndexByte("-._~+/", b[i]) >= 0) {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(b) && b[i] == '=' {
		i++
	}
	return i == len(b)
}

// valid reports whether tok is one of the tokens. It compares SHA-256
// digests, so that every comparison is of 32 bytes whatever the lengths,
// with subtle.ConstantTimeCompare against every token, without stopping at
// a match: the time taken says neither which token matched nor how much of
// one did.
func (ts *tokenSource) valid(tok string) bool {
	ts.watch.check(ts.reload)
	d := sha256.Sum256([]byte(tok))
	match := 0
	for _, t := range *ts.digests.Load() {
		match |= subtle.ConstantTimeCompare(d[:], t[:])
	}
	return match == 1
}

// bearerToken is the token of an Authorization header value, if it is of
// the Bearer scheme (case-insensitive, RFC 9110 §11.1) and has one.
func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// unauthorized is the 401 of a request without a valid token (presented:
// whether it had a bearer token at all).
func unauthorized(presented bool) *Problem {
	if presented {
		return problemf(http.StatusUnauthorized, kindUnauthorized, "the bearer token is not valid")
	}
	return problemf(http.StatusUnauthorized, kindUnauthorized, "this route needs a bearer token: send Authorization: Bearer <token>")
}

// authenticate is the API router's token check (none without a token
// file). It runs after CORS, so that preflights, which browsers send
// without credentials, are answered, and 401s carry the CORS headers a page
// needs to read them.
func (s *Server) authenticate(next http.Handler) http.Handler {
	ts := s.sec.tokens
	if ts == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := routePath(r)
		if openPaths[path] || webOpen(path) {
			next.ServeHTTP(w, r)
			return
		}
		tok, presented := bearerToken(r.Header.Get("Authorization"))
		if presented && ts.valid(tok) {
			next.ServeHTTP(w, r)
			return
		}
		challenge := bearerChallenge
		if presented {
			challenge += `, error="invalid_token"`
		}
		// Label the metrics and the log line with the route refused, as
		// if it had been routed.
		infoOf(r.Context()).route = s.router.Find(chi.NewRouteContext(), r.Method, path)
		w.Header().Set("WWW-Authenticate", challenge)
		s.writeProblem(w, r, unauthorized(presented))
	})
}

// routePath is the path the router matches (routeOnEscapedPath's).
func routePath(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePath != "" {
		return rc.RoutePath
	}
	return r.URL.Path
}

// grpcAuthenticate is the token check of a gRPC call: metadata
// "authorization: Bearer <token>", once.
func (s *Server) grpcAuthenticate(ctx context.Context, method string) error {
	if grpcMethodOpen(method) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	tok, presented := "", false
	if len(vals) == 1 {
		tok, presented = bearerToken(vals[0])
	}
	if presented && s.sec.tokens.valid(tok) {
		return nil
	}
	return grpcError(unauthorized(presented))
}

func (s *Server) grpcAuthUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := s.grpcAuthenticate(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// grpcAuthStream covers streaming methods: today only health's Watch and
// reflection, both open, but a streaming method added later is closed.
func (s *Server) grpcAuthStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := s.grpcAuthenticate(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// grpcSecurity are the gRPC server's options for TLS and tokens.
func (s *Server) grpcSecurity() []grpc.ServerOption {
	var opts []grpc.ServerOption
	if tc := s.TLSConfig(); tc != nil {
		opts = append(opts, grpc.Creds(grpcTLS(tc)))
	}
	if s.sec.tokens != nil {
		// After grpcObserve (chained before these), so refusals are logged
		// and counted like any other answer.
		opts = append(opts, grpc.ChainUnaryInterceptor(s.grpcAuthUnary), grpc.ChainStreamInterceptor(s.grpcAuthStream))
	}
	return opts
}
