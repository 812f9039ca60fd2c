package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/server"
	"github.com/aeserve/aeserve/internal/testcert"
	"github.com/aeserve/aeserve/weights"
)

const secureToken = "aectl-token-3141"

// startSecureServer serves conv and the classifier over HTTPS and gRPC over TLS with a
// self-signed certificate (its PEM in caFile) and one token.
func startSecureServer(t *testing.T) (url, grpcAddr, caFile string) {
	t.Helper()
	dir := t.TempDir()
	pair := testcert.New(t, "aeserve", 30)
	cert, key := pair.Write(t, dir)
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte(secureToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Config{TLSCertFile: cert, TLSKeyFile: key, AuthTokensFile: tokens})
	if err != nil {
		t.Fatal(err)
	}
	var ms []*model.Model
	for _, name := range []string{"conv", "classifier"} {
		m, err := model.LoadFS(weights.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	if err := s.Load(ms...); err != nil {
		t.Fatal(err)
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.ServeAll(ctx, server.Listeners{API: apiLn, GRPC: grpcLn}) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	return "https://" + apiLn.Addr().String(), grpcLn.Addr().String(), cert
}

// runWith runs aectl with these environment variables (and no others).
func runWith(vars map[string]string, args ...string) result {
	var out, errOut bytes.Buffer
	code := run(args, bytes.NewReader(nil), &out, &errOut, func(k string) string { return vars[k] })
	return result{code, out.String(), errOut.String()}
}

// aectl sends the token (--token, $AECTL_TOKEN or --token-file), trusts
// --ca for https:// and for gRPC with --grpc-tls.
func TestTokenAndTLS(t *testing.T) {
	url, grpcAddr, ca := startSecureServer(t)
	dir := t.TempDir()
	img := writeDigits(t, dir, []string{"seven"}, 0)[0]
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("# for aectl\n\n"+secureToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, []byte("# no token yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := map[string]string{}
	withEnv := map[string]string{envToken: secureToken}

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"--token", noEnv, []string{"--server", url, "--ca", ca, "classify", "--token", secureToken, img}},
		{"--token before the command", noEnv, []string{"--server", url, "--ca", ca, "--token", secureToken, "classify", img}},
		{"AECTL_TOKEN", withEnv, []string{"--server", url, "--ca", ca, "classify", img}},
		{"--token-file", noEnv, []string{"classify", "--server", url, "--ca", ca, "--token-file", tokenFile, img}},
		{"--token-file over AECTL_TOKEN", map[string]string{envToken: "stale"}, []string{"--token-file", tokenFile, "classify", "--server", url, "--ca", ca, img}},
		{"V2 REST", withEnv, []string{"--v2", "--server", url, "--ca", ca, "classify", img}},
		{"gRPC over TLS", withEnv, []string{"--grpc", grpcAddr, "--grpc-tls", "--server", url, "--ca", ca, "classify", img}},
		{"gRPC, flags after the command", noEnv, []string{"classify", "--grpc", grpcAddr, "--grpc-tls", "--ca", ca, "--token", secureToken, img}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runWith(tc.env, tc.args...)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "7 (p=") {
				t.Errorf("exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
			}
		})
	}

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no token", noEnv, []string{"--server", url, "--ca", ca, "models"}, 1, "401 Unauthorized: this route needs a bearer token"},
		{"wrong token", noEnv, []string{"--server", url, "--ca", ca, "--token", "nope", "models"}, 1, "--token, --token-file or $AECTL_TOKEN"},
		{"no token over gRPC", noEnv, []string{"--grpc", grpcAddr, "--grpc-tls", "--ca", ca, "classify", img}, 1, "Unauthenticated: unauthorized"},
		{"untrusted certificate", withEnv, []string{"--server", url, "models"}, 1, "unknown authority (for a server's own certificate, give its CA with --ca FILE)"},
		{"untrusted certificate over gRPC", withEnv, []string{"--grpc", grpcAddr, "--grpc-tls", "--server", url, "classify", img}, 1, "unknown authority (for"},
		{"--token and --token-file", noEnv, []string{"--server", url, "--ca", ca, "models", "--token", "x", "--token-file", tokenFile}, 2, "not both"},
		{"--grpc-tls without --grpc", withEnv, []string{"--server", url, "--ca", ca, "models", "--grpc-tls"}, 2, "--grpc-tls needs --grpc"},
		{"missing token file", noEnv, []string{"--server", url, "models", "--token-file", filepath.Join(dir, "none")}, 1, "--token-file"},
		{"empty token file", noEnv, []string{"--server", url, "models", "--token-file", emptyFile}, 1, "holds no token"},
		{"CA file without certificates", withEnv, []string{"--server", url, "--ca", tokenFile, "models"}, 1, "no PEM certificates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runWith(tc.env, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
			for _, secret := range []string{secureToken, "nope"} {
				if strings.Contains(r.stderr, secret) {
					t.Errorf("stderr shows the token: %s", r.stderr)
				}
			}
		})
	}
}
