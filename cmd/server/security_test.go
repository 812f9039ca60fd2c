package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/aeserve/aeserve/api/inference"
	"github.com/aeserve/aeserve/internal/testcert"
)

// A TLS pair or token file that cannot be used, or half a pair, stops the
// server before it listens, with exit status 2.
func TestSecurityExitStatus(t *testing.T) {
	dir := t.TempDir()
	a, b := testcert.New(t, "a", 10), testcert.New(t, "b", 10)
	cert, key := a.Write(t, dir)
	otherKey := filepath.Join(dir, "b.key")
	empty := filepath.Join(dir, "empty-tokens")
	comments := filepath.Join(dir, "comment-tokens")
	for f, content := range map[string][]byte{otherKey: b.KeyPEM, empty: nil, comments: []byte("# none yet\n\n")} {
		if err := os.WriteFile(f, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name, args, stderr string
	}{
		{"certificate only", "--tls-cert " + cert, "--tls-key"},
		{"key only", "--tls-key " + key, "--tls-cert"},
		{"mismatched pair", "--tls-cert " + cert + " --tls-key " + otherKey, "private key does not match"},
		{"missing certificate", "--tls-cert " + missing + " --tls-key " + key, missing},
		{"empty token file", "--auth-tokens " + empty, "holds no tokens"},
		{"comments only", "--auth-tokens " + comments, "holds no tokens"},
		{"missing token file", "--auth-tokens " + missing, missing},
		{"origin null", "--cors-origins null", `"null"`},
		{"origin with a path", "--cors-origins https://a.example/app", "scheme://host[:port]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "AESERVE_TEST_RUN_MAIN=1", "AESERVE_TEST_ARGS=--addr 127.0.0.1:0 "+tc.args)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("%v, want exit status 2 saying %q\nstderr: %s", err, tc.stderr, stderr.String())
			}
		})
	}
}

// The whole server with every switch on: HTTPS and gRPC over TLS with a
// token, probes and metrics open on the plain-HTTP ops listener and on the
// API listener, CORS for the named origin.
func TestSecureRun(t *testing.T) {
	dir := t.TempDir()
	a := testcert.New(t, "aeserve", 30)
	cert, key := a.Write(t, dir)
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("# clients\ns3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sink := newLogSink()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	args := []string{"--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--workers", "1",
		"--models", "conv", "--tls-cert", cert, "--tls-key", key, "--auth-tokens", tokens, "--cors-origins", "https://app.example"}
	go func() { done <- run(ctx, args, env(nil), io.Discard, sink.pw) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	var base, ops string
	select {
	case addr := <-sink.addr:
		base = "https://" + addr
	case err := <-done:
		t.Fatalf("run returned before listening: %v", err)
	}
	ops = "http://" + <-sink.ops

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: testcert.Pool(a)}}}
	do := func(method, url string, header ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		c := client
		if strings.HasPrefix(url, "http://") {
			c = http.DefaultClient
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	deadline := time.Now().Add(time.Minute)
	for do("GET", ops+"/readyz").StatusCode != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, url := range []string{ops + "/healthz", ops + "/metrics", base + "/healthz", base + "/readyz", base + "/metrics"} {
		if r := do("GET", url); r.StatusCode != http.StatusOK {
			t.Errorf("%s without a token: %d", url, r.StatusCode)
		}
	}
	if r := do("GET", base+"/v1/models"); r.StatusCode != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("/v1/models without a token: %d %v", r.StatusCode, r.Header)
	}
	if r := do("GET", base+"/v1/models", "Authorization", "Bearer s3cret-token", "Origin", "https://app.example"); r.StatusCode != http.StatusOK ||
		r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("/v1/models with a token: %d %v", r.StatusCode, r.Header)
	}

	var grpcAddr string
	waitForLine := func(msg string) map[string]any {
		for range 1000 {
			sink.mu.Lock()
			for _, l := range sink.lines {
				if l["message"] == msg {
					sink.mu.Unlock()
					return l
				}
			}
			sink.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("no %q log line", msg)
		return nil
	}
	l := waitForLine("grpc listening")
	grpcAddr, _ = l["addr"].(string)
	if l["tls"] != true {
		t.Errorf("grpc listening: %v", l)
	}
	if l := waitForLine("starting"); l["tls"] != true || l["auth"] != true {
		t.Errorf("starting: %v", l)
	}
	conn, err := grpc.NewClient("passthrough:///"+grpcAddr,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: testcert.Pool(a), ServerName: "127.0.0.1"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	svc := inference.NewGRPCInferenceServiceClient(conn)
	if _, err := svc.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: "conv"}); grpcstatus.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC without a token: %v", err)
	}
	if _, err := svc.ModelMetadata(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer s3cret-token"),
		&inference.ModelMetadataRequest{Name: "conv"}); err != nil {
		t.Errorf("gRPC with a token: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	done <- nil // for the cleanup
}
