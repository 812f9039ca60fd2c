package server

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/aeserve/aeserve/api/inference"
	"github.com/aeserve/aeserve/internal/testcert"
)

// Tokens of the tests' token files.
const (
	tokenOne   = "tok-one-7f3a9c"
	tokenTwo   = "Tok.Two+/=="
	tokenThree = "tok-three-c0ffee"
	tokenWrong = "wrong-secret-5e11"
)

func tokenFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func withTokens(file string) envOption {
	return func(c *Config) { c.AuthTokensFile = file }
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// wantUnauthorized checks a 401: the challenge, and the problem (or, under
// /v2, the protocol's error) saying unauthorized.
func wantUnauthorized(t *testing.T, r *reply, invalidToken bool) {
	t.Helper()
	wantStatus(t, r, http.StatusUnauthorized)
	want := `Bearer realm="aeserve"`
	if invalidToken {
		want += `, error="invalid_token"`
	}
	if got := r.Header.Get("WWW-Authenticate"); got != want {
		t.Errorf("%s: WWW-Authenticate %q, want %q", r.Request.URL.Path, got, want)
	}
	if r.Request.Method == http.MethodHead {
		return
	}
	if isV2(r.Request) {
		var v struct{ Error string }
		if err := json.Unmarshal(r.body, &v); err != nil || !strings.HasPrefix(v.Error, "unauthorized: ") {
			t.Errorf("%s: body %s, want the V2 error unauthorized", r.Request.URL.Path, r.body)
		}
		return
	}
	if p := r.problem(t); p.Type != ProblemTypeBase+kindUnauthorized {
		t.Errorf("%s: problem %+v", r.Request.URL.Path, p)
	}
}

// With a token file, /v1 and /v2 need one of its tokens; probes, metrics,
// the spec and V2 health stay open; the token never reaches the log.
func TestAuthHTTP(t *testing.T) {
	file := tokenFile(t, "# the ops team\n\n  "+tokenOne+"  \r\n"+tokenTwo+"\n")
	e := newEnv(t, withTokens(file), checkEveryUse)
	img := mustPNG(t, 3)

	for _, path := range []string{"/v1/models", "/v1/models/conv", "/v2", "/v2/models/conv", "/v2/models/conv/ready", "/nope", "/v2/nope"} {
		wantUnauthorized(t, e.get(path), false)
		wantUnauthorized(t, e.get(path, bearer(tokenWrong)...), true)
		wantUnauthorized(t, e.do(e.request(http.MethodHead, path, "", nil)), false)
	}
	wantUnauthorized(t, e.post("/v1/encode", ctPNG, img), false)
	wantUnauthorized(t, e.post("/v1/encode", ctPNG, img, "Authorization", "Basic "+tokenOne), false)
	wantUnauthorized(t, e.post("/v1/encode", ctPNG, img, "Authorization", "Bearer"), false)
	wantUnauthorized(t, e.post("/v2/models/conv/infer", ctJSON, []byte(`{}`), bearer(tokenWrong)...), true)
	// An escaped path is the route it names (routeOnEscapedPath).
	wantUnauthorized(t, e.get("/%761/models"), false)

	wantStatus(t, e.get("/v1/models", bearer(tokenOne)...), http.StatusOK)
	wantStatus(t, e.get("/v1/models", "Authorization", "bearer "+tokenTwo), http.StatusOK) // the scheme is case-insensitive
	wantStatus(t, e.post("/v1/encode", ctPNG, img, bearer(tokenTwo)...), http.StatusOK)
	wantStatus(t, e.get("/v2/models/conv", bearer(tokenOne)...), http.StatusOK)
	wantStatus(t, e.get("/nope", bearer(tokenOne)...), http.StatusNotFound)
	wantStatus(t, e.get("/%761/models", bearer(tokenOne)...), http.StatusOK)

	for _, path := range []string{"/healthz", "/readyz?probe=1", "/metrics", "/openapi.yaml", "/v2/health/live", "/v2/health/ready", "/%68ealthz"} {
		wantStatus(t, e.get(path), http.StatusOK)
	}

	metrics := e.get("/metrics").String()
	for _, want := range []string{
		`aeserve_http_requests_total{code="401",method="GET",route="/v1/models"} 3`,
		`aeserve_http_requests_total{code="401",method="POST",route="/v1/encode"} 3`,
		`aeserve_http_requests_total{code="401",method="GET",route="unmatched"} 4`,
		`aeserve_auth_tokens 2`,
		`aeserve_auth_reload_errors_total 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var refused int
	waitFor(t, "the 401 log lines", func() bool {
		refused = 0
		for _, l := range e.logs.lines() {
			if l["status"] == float64(http.StatusUnauthorized) && l["problem"] == kindUnauthorized && l["level"] == "warn" {
				refused++
			}
		}
		return refused >= 25
	})
	if logs := logText(e); strings.Contains(logs, tokenOne) || strings.Contains(logs, tokenTwo) || strings.Contains(logs, tokenWrong) {
		t.Error("a token is in the log")
	}

	// The file changes: the new tokens replace the old ones.
	testcert.Replace(t, file, []byte(tokenThree+"\n"))
	wantUnauthorized(t, e.get("/v1/models", bearer(tokenOne)...), true)
	wantStatus(t, e.get("/v1/models", bearer(tokenThree)...), http.StatusOK)

	// A file that cannot be used keeps the tokens in force, once logged and
	// counted per change.
	testcert.Replace(t, file, []byte("# nothing yet\n\n"))
	wantStatus(t, e.get("/v1/models", bearer(tokenThree)...), http.StatusOK)
	wantStatus(t, e.get("/v1/models", bearer(tokenThree)...), http.StatusOK)
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.get("/v1/models", bearer(tokenThree)...), http.StatusOK)
	wantUnauthorized(t, e.get("/v1/models", bearer(tokenOne)...), true)
	metrics = e.get("/metrics").String()
	if !strings.Contains(metrics, "aeserve_auth_reload_errors_total 2") || !strings.Contains(metrics, "aeserve_auth_tokens 1") {
		t.Errorf("after two unusable files: %s", grepLines(metrics, "aeserve_auth_"))
	}
	errs := 0
	for _, l := range e.logs.lines() {
		if l["message"] == "bearer tokens not reloaded: the previous tokens stay in force" && l["level"] == "error" {
			errs++
		}
	}
	if errs != 2 {
		t.Errorf("%d error lines for unusable token files, want 2", errs)
	}
}

// The ops listener never asks for a token.
func TestAuthOpsListenerOpen(t *testing.T) {
	e := newServedEnv(t, nil, withTokens(tokenFile(t, tokenOne)))
	wantUnauthorized(t, e.get("/v1/models"), false)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(e.opsURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("ops %s: %d", path, resp.StatusCode)
		}
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// gRPC takes the token in the metadata; health, liveness and readiness stay
// open.
func TestAuthGRPC(t *testing.T) {
	g := newGRPCEnv(t, withTokens(tokenFile(t, tokenOne+"\n"+tokenTwo)))
	ctx := t.Context()
	with := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	_, err := g.client.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: "conv"})
	wantCode(t, err, codes.Unauthenticated, "unauthorized: this route needs a bearer token")
	_, err = g.client.ModelMetadata(with(tokenWrong), &inference.ModelMetadataRequest{Name: "conv"})
	wantCode(t, err, codes.Unauthenticated, "unauthorized: the bearer token is not valid")
	// One token, not two.
	_, err = g.client.ModelMetadata(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tokenOne, "authorization", "Bearer "+tokenTwo),
		&inference.ModelMetadataRequest{Name: "conv"})
	wantCode(t, err, codes.Unauthenticated, "unauthorized")
	px, _ := mnistDigit(t, 0)
	_, err = g.client.ModelInfer(ctx, &inference.ModelInferRequest{ModelName: "conv", Inputs: []*inference.ModelInferRequest_InferInputTensor{
		{Name: "images", Datatype: "FP32", Shape: []int64{1, 784}, Contents: &inference.InferTensorContents{Fp32Contents: px}}}})
	wantCode(t, err, codes.Unauthenticated, "unauthorized")

	if _, err := g.client.ModelMetadata(with(tokenOne), &inference.ModelMetadataRequest{Name: "conv"}); err != nil {
		t.Errorf("with a token: %v", err)
	}
	res, err := g.client.ModelInfer(with(tokenTwo), &inference.ModelInferRequest{ModelName: "conv", Inputs: []*inference.ModelInferRequest_InferInputTensor{
		{Name: "images", Datatype: "FP32", Shape: []int64{1, 784}, Contents: &inference.InferTensorContents{Fp32Contents: px}}}})
	if err != nil || len(res.GetOutputs()) != 1 {
		t.Errorf("infer with a token: %v", err)
	}
	if r, err := g.client.ServerLive(ctx, &inference.ServerLiveRequest{}); err != nil || !r.GetLive() {
		t.Errorf("ServerLive without a token: %v %v", r, err)
	}
	if r, err := g.client.ServerReady(ctx, &inference.ServerReadyRequest{}); err != nil || !r.GetReady() {
		t.Errorf("ServerReady without a token: %v %v", r, err)
	}
	if r, err := g.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health without a token: %v %v", r, err)
	}
	if !strings.Contains(g.get("/metrics").String(),
		`aeserve_grpc_requests_total{code="Unauthenticated",method="/inference.GRPCInferenceService/ModelMetadata"} 3`) {
		t.Error("the refused calls are not counted")
	}
	if logs := logText(g.env); strings.Contains(logs, tokenOne) || strings.Contains(logs, tokenWrong) {
		t.Error("a token is in the log")
	}
}

// A token file that is missing, empty (comments only) or has a line that
// is not a token is refused by New (cmd/server exits 2), naming the file
// and line but not the line's content.
func TestAuthTokenFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, content, want string
	}{
		{"empty", "", "holds no tokens"},
		{"comments only", "# a\n\n   \n#b\n", "holds no tokens"},
		{"space inside", tokenOne + "\nsecret with-space\n", "line 2: not a bearer token"},
		{"equals inside", "# x\nsecret=xyz\n", "line 2: not a bearer token"},
		{"non-ASCII", "sécret\n", "line 1: not a bearer token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := tokenFile(t, tc.content)
			_, err := New(Config{AuthTokensFile: file})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), file) {
				t.Fatalf("New: %v, want an error naming %s and saying %q", err, file, tc.want)
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "sécret") {
				t.Errorf("the error shows the file's content: %v", err)
			}
		})
	}
	missing := filepath.Join(t.TempDir(), "none")
	if _, err := New(Config{AuthTokensFile: missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := New(Config{AuthTokensFile: t.TempDir()}); err == nil {
		t.Error("a directory as the token file")
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header, token string
		ok            bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER  abc ", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"Bearerabc", "", false},
		{"", "", false},
	} {
		if tok, ok := bearerToken(tc.header); tok != tc.token || ok != tc.ok {
			t.Errorf("%q: %q %v, want %q %v", tc.header, tok, ok, tc.token, tc.ok)
		}
	}
}
