package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/aeserve/aeserve/api/inference"
	"github.com/aeserve/aeserve/internal/testcert"
)

// checkEveryUse makes the server look at its TLS and token files on every
// use, so that a test sees a change at the next request.
func checkEveryUse(c *Config) { c.reloadCheck = -1 }

func withTLS(certFile, keyFile string) envOption {
	return func(c *Config) { c.TLSCertFile, c.TLSKeyFile = certFile, keyFile }
}

// servedEnv is env e served by ServeAll on loopback listeners of its own:
// the API (its URL in e.ts.URL, https:// with TLS), gRPC and ops.
type servedEnv struct {
	*env
	grpcAddr, opsURL string
}

func newServedEnv(t *testing.T, pool *x509.CertPool, opts ...envOption) *servedEnv {
	t.Helper()
	e := newEnv(t, opts...)
	e.ts.Close()
	var lns [3]net.Listener
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
	}
	ctx, stop := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- e.s.ServeAll(ctx, Listeners{API: lns[0], GRPC: lns[1], Ops: lns[2]}) }()
	t.Cleanup(func() {
		stop()
		waitServed(t, served)
	})
	scheme := "http://"
	next := http.DefaultTransport
	if e.s.TLSConfig() != nil {
		scheme = "https://"
		// A connection per request, so that every request is a handshake.
		next = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}
	}
	e.ts.URL = scheme + lns[0].Addr().String()
	e.client = &http.Client{Transport: &validatingTransport{t: t, next: next}}
	return &servedEnv{env: e, grpcAddr: lns[1].Addr().String(), opsURL: "http://" + lns[2].Addr().String()}
}

// servedSerial is the serial number of the certificate the API serves now.
func (e *servedEnv) servedSerial() *big.Int {
	e.t.Helper()
	r := e.get("/healthz")
	wantStatus(e.t, r, http.StatusOK)
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		e.t.Fatal("not served over TLS")
	}
	return r.TLS.PeerCertificates[0].SerialNumber
}

func (e *servedEnv) metric(series string) float64 {
	e.t.Helper()
	return metricValue(e.t, e.get("/metrics").String(), series)
}

// With a certificate and key, the API and gRPC are served over TLS only
// (the ops listener stays plain HTTP), and the certificate is replaced when
// its files change; a pair that does not load then keeps the old one, is
// logged and counted.
func TestTLSServesAndReloads(t *testing.T) {
	dir := t.TempDir()
	a, b, c := testcert.New(t, "a", 10), testcert.New(t, "b", 20), testcert.New(t, "c", 30)
	certFile, keyFile := a.Write(t, dir)
	pool := testcert.Pool(a, b, c)
	e := newServedEnv(t, pool, withTLS(certFile, keyFile), checkEveryUse)

	if got := e.servedSerial(); got.Cmp(a.Cert.SerialNumber) != 0 {
		t.Fatalf("serves serial %v, want a's %v", got, a.Cert.SerialNumber)
	}
	wantStatus(t, e.get("/v1/models/conv"), http.StatusOK)
	notAfter := "aeserve_tls_certificate_not_after_timestamp_seconds"
	if got := e.metric(notAfter); got != float64(a.Cert.NotAfter.Unix()) {
		t.Errorf("%s %v, want a's %d", notAfter, got, a.Cert.NotAfter.Unix())
	}

	// Plain HTTP on the API port is refused; the ops port is plain HTTP.
	resp, err := http.Get("http://" + strings.TrimPrefix(e.ts.URL, "https://") + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS port: %d, want net/http's 400", resp.StatusCode)
	}
	resp, err = http.Get(e.opsURL + "/readyz")
	if err != nil {
		t.Fatalf("ops listener over plain HTTP: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("ops /readyz: %d", resp.StatusCode)
	}

	// gRPC: TLS with the same certificate, and nothing in plaintext.
	grpcLive := func(creds credentials.TransportCredentials) error {
		conn, err := grpc.NewClient("passthrough:///"+e.grpcAddr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, err = inference.NewGRPCInferenceServiceClient(conn).ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: "conv"})
		return err
	}
	if err := grpcLive(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})); err != nil {
		t.Errorf("gRPC over TLS: %v", err)
	}
	if err := grpcLive(insecure.NewCredentials()); err == nil {
		t.Error("gRPC in plaintext to the TLS listener succeeded")
	}

	// A new pair is served from the next handshake.
	b.Write(t, dir)
	if got := e.servedSerial(); got.Cmp(b.Cert.SerialNumber) != 0 {
		t.Fatalf("after replacing the files: serial %v, want b's %v", got, b.Cert.SerialNumber)
	}
	if got := e.metric(notAfter); got != float64(b.Cert.NotAfter.Unix()) {
		t.Errorf("%s %v, want b's %d", notAfter, got, b.Cert.NotAfter.Unix())
	}

	// A certificate with another's key, then a file that is not PEM: b stays,
	// each change is counted once and logged.
	testcert.Replace(t, certFile, c.CertPEM)
	for range 3 {
		if got := e.servedSerial(); got.Cmp(b.Cert.SerialNumber) != 0 {
			t.Fatalf("after a bad pair: serial %v, want b's %v still", got, b.Cert.SerialNumber)
		}
	}
	testcert.Replace(t, keyFile, []byte("not a key"))
	e.servedSerial()
	if got := e.metric("aeserve_tls_reload_errors_total"); got != 2 {
		t.Errorf("aeserve_tls_reload_errors_total %v, want 2", got)
	}
	if got := e.metric(notAfter); got != float64(b.Cert.NotAfter.Unix()) {
		t.Errorf("%s %v after failed reloads, want b's %d", notAfter, got, b.Cert.NotAfter.Unix())
	}
	errs := 0
	for _, l := range e.logs.lines() {
		if l["message"] == "TLS certificate not reloaded: serving the previous one" && l["level"] == "error" {
			errs++
		}
	}
	if errs != 2 {
		t.Errorf("%d error lines for the failed reloads, want 2", errs)
	}

	// The key arriving after its certificate completes the pair.
	testcert.Replace(t, keyFile, c.KeyPEM)
	if got := e.servedSerial(); got.Cmp(c.Cert.SerialNumber) != 0 {
		t.Fatalf("after the matching key: serial %v, want c's %v", got, c.Cert.SerialNumber)
	}
}

// By default the files are looked at no more than once a second.
func TestTLSReloadIsThrottled(t *testing.T) {
	dir := t.TempDir()
	a, b := testcert.New(t, "a", 10), testcert.New(t, "b", 20)
	certFile, keyFile := a.Write(t, dir)
	pool := testcert.Pool(a, b)
	e := newServedEnv(t, pool, withTLS(certFile, keyFile))
	e.servedSerial()
	addr := strings.TrimPrefix(e.ts.URL, "https://")
	dialSerial := func() *big.Int {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	dialSerial() // a look at the files: the next is a second away
	b.Write(t, dir)
	if got := dialSerial(); got.Cmp(a.Cert.SerialNumber) != 0 {
		t.Errorf("serial %v right after the change, want a's until the next look", got)
	}
	waitFor(t, "the new certificate", func() bool { return dialSerial().Cmp(b.Cert.SerialNumber) == 0 })
}

// A missing half, a missing file or a pair that does not match is refused
// by New (cmd/server exits 2).
func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	a, b := testcert.New(t, "a", 10), testcert.New(t, "b", 10)
	certFile, keyFile := a.Write(t, dir)
	otherKey := filepath.Join(dir, "b.key")
	if err := os.WriteFile(otherKey, b.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nnope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cert, key, want string
	}{
		{"certificate only", certFile, "", "both"},
		{"key only", "", keyFile, "both"},
		{"missing files", filepath.Join(dir, "none.pem"), filepath.Join(dir, "none.key"), "none.pem"},
		{"mismatched key", certFile, otherKey, "private key does not match"},
		{"not PEM", garbage, keyFile, "garbage.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{TLSCertFile: tc.cert, TLSKeyFile: tc.key})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error with %q", err, tc.want)
			}
		})
	}
	s, err := New(Config{TLSCertFile: certFile, TLSKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if tc := s.TLSConfig(); tc == nil || tc.MinVersion < tls.VersionTLS12 || tc.GetCertificate == nil {
		t.Errorf("TLSConfig %+v", tc)
	}
	if s, _ := New(Config{}); s.TLSConfig() != nil || s.HTTPServer().TLSConfig != nil {
		t.Error("TLS without a certificate")
	}
}

// A handshake that fails (a client that does not trust the certificate, a
// port scanner) is logged at debug, not as a warning per connection.
func TestTLSHandshakeErrorsAreQuiet(t *testing.T) {
	dir := t.TempDir()
	a := testcert.New(t, "a", 10)
	certFile, keyFile := a.Write(t, dir)
	e := newServedEnv(t, testcert.Pool(a), withTLS(certFile, keyFile), debugLogs)
	addr := strings.TrimPrefix(e.ts.URL, "https://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "\x16\x03\x01\x00\x05hello") // a broken ClientHello
	io.Copy(io.Discard, conn)
	conn.Close()
	var line map[string]any
	waitFor(t, "the handshake error's log line", func() bool {
		for _, l := range e.logs.lines() {
			if msg, _ := l["message"].(string); strings.HasPrefix(msg, "http: TLS handshake error") {
				line = l
				return true
			}
		}
		return false
	})
	if line["level"] != "debug" {
		t.Errorf("handshake error logged at %v, want debug", line["level"])
	}
}
