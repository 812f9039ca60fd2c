package oip_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/aeserve/aeserve/api/oip"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/server"
	"github.com/aeserve/aeserve/weights"
)

// Both transports send Token, to a server run with --auth-tokens, which
// refuses them without it.
func TestToken(t *testing.T) {
	const token = "oip-token-7"
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Config{AuthTokensFile: file})
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.LoadFS(weights.FS, "dense")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(m); err != nil {
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
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- s.ServeAll(ctx, server.Listeners{API: apiLn, GRPC: grpcLn}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	conn, err := grpc.NewClient("passthrough:///"+grpcLn.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	px := make([]float32, 784)

	rest := &oip.Client{BaseURL: "http://" + apiLn.Addr().String(), MaxAttempts: 1}
	g := oip.NewGRPCClient(conn)
	g.MaxAttempts = 1
	for name, c := range map[string]interface {
		ModelMetadata(ctx context.Context, name, version string) (*oip.ModelMetadata, error)
		Reconstruct(ctx context.Context, model string, pixels []float32, opts oip.InferOptions) ([]float32, error)
		ServerReady(ctx context.Context) (bool, error)
	}{"REST": rest, "gRPC": g} {
		_, err := c.ModelMetadata(ctx, "dense", "")
		var e *oip.Error
		if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Code != codes.Unauthenticated || e.Kind() != "unauthorized" {
			t.Errorf("%s without a token: %v", name, err)
		}
		if ready, err := c.ServerReady(ctx); err != nil || !ready {
			t.Errorf("%s readiness needs no token: %v %v", name, ready, err)
		}
	}
	rest.Token, g.Token = token, token
	for name, c := range map[string]interface {
		ModelMetadata(ctx context.Context, name, version string) (*oip.ModelMetadata, error)
		Reconstruct(ctx context.Context, model string, pixels []float32, opts oip.InferOptions) ([]float32, error)
	}{"REST": rest, "gRPC": g} {
		if _, err := c.ModelMetadata(ctx, "dense", ""); err != nil {
			t.Errorf("%s with the token: %v", name, err)
		}
		if out, err := c.Reconstruct(ctx, "dense", px, oip.InferOptions{}); err != nil || len(out) != 784 {
			t.Errorf("%s infer with the token: %v", name, err)
		}
	}
}
