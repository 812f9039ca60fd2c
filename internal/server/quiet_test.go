package server

import (
	"net/http"
	"testing"

	"github.com/rs/zerolog"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/aeserve/aeserve/api/inference"
)

// debugLogs lets the env's log through from debug up.
func debugLogs(c *Config) { c.Log = c.Log.Level(zerolog.DebugLevel) }

// logText is everything the env's server logged so far.
func logText(e *env) string {
	e.logs.mu.Lock()
	defer e.logs.mu.Unlock()
	return e.logs.b.String()
}

// requestLevel waits for the request log line of the request with this ID
// and returns its level.
func requestLevel(t *testing.T, e *env, id string) string {
	t.Helper()
	var level string
	waitFor(t, "the log line of "+id, func() bool {
		for _, l := range e.logs.lines() {
			if l["message"] == "request" && l["request_id"] == id {
				level, _ = l["level"].(string)
				return true
			}
		}
		return false
	})
	return level
}

// Probes and scrapes are logged at debug, whatever they answer; everything
// else as before.
func TestQuietProbes(t *testing.T) {
	e := newUnloadedEnv(t, debugLogs)
	get := func(method, path, id string) {
		e.do(e.request(method, path, "", nil, HeaderRequestID, id))
	}
	// Not ready yet: /readyz answers 503 and /v2/health/ready 400, as a
	// probe expects; still debug.
	get(http.MethodGet, "/readyz", "readyz-503")
	get(http.MethodGet, "/v2/health/ready", "v2ready-400")
	if err := e.s.Load(loadModels(t)...); err != nil {
		t.Fatal(err)
	}
	for id, level := range map[string]string{"readyz-503": "debug", "v2ready-400": "debug"} {
		if got := requestLevel(t, e, id); got != level {
			t.Errorf("%s: logged at %s, want %s", id, got, level)
		}
	}
	for _, tc := range []struct {
		method, path, id, level string
	}{
		{"GET", "/healthz", "healthz", "debug"},
		{"HEAD", "/healthz", "healthz-head", "debug"},
		{"GET", "/readyz?x=1", "readyz", "debug"},
		{"GET", "/metrics", "metrics", "debug"},
		{"GET", "/v2/health/live", "v2live", "debug"},
		{"GET", "/v2/health/ready", "v2ready", "debug"},
		{"GET", "/v1/models", "models", "info"},
		{"GET", "/openapi.yaml", "openapi", "info"},
		{"GET", "/v2/models/conv", "v2model", "info"},
		{"GET", "/v1/models/nope", "models-404", "warn"},
		{"POST", "/healthz", "healthz-post", "warn"}, // a 405, not a probe
	} {
		get(tc.method, tc.path, tc.id)
		if got := requestLevel(t, e, tc.id); got != tc.level {
			t.Errorf("%s %s: logged at %s, want %s", tc.method, tc.path, got, tc.level)
		}
	}
}

// gRPC's probes too: health checks, liveness, readiness.
func TestQuietGRPCProbes(t *testing.T) {
	g := newGRPCEnv(t, debugLogs)
	ctx := t.Context()
	if _, err := g.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.client.ServerLive(ctx, &inference.ServerLiveRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.client.ServerReady(ctx, &inference.ServerReadyRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.client.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: "conv"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/grpc.health.v1.Health/Check":                  "debug",
		"/inference.GRPCInferenceService/ServerLive":    "debug",
		"/inference.GRPCInferenceService/ServerReady":   "debug",
		"/inference.GRPCInferenceService/ModelMetadata": "info",
	}
	got := map[string]string{}
	waitFor(t, "the gRPC log lines", func() bool {
		for _, l := range g.logs.lines() {
			if r, ok := l["route"].(string); ok && l["method"] == "gRPC" {
				got[r], _ = l["level"].(string)
			}
		}
		return len(got) == len(want)
	})
	for m, level := range want {
		if got[m] != level {
			t.Errorf("%s: logged at %s, want %s", m, got[m], level)
		}
	}
}
