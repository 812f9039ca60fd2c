package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/server"
	"github.com/aeserve/aeserve/weights"
)

// A server with --auth-tokens answers 401 until the client has its Token,
// which it then sends on every request.
func TestClientToken(t *testing.T) {
	const token = "client-token-42"
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Config{AuthTokensFile: file})
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.LoadFS(weights.FS, "conv")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(m); err != nil {
		t.Fatal(err)
	}
	var sent []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent = append(sent, r.Header.Get("Authorization"))
		s.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		ts.Close()
		s.Close(context.Background())
	})
	ctx := t.Context()
	seven := readFile("testdata/seven.png")

	c := &api.Client{BaseURL: ts.URL}
	_, err = c.Models(ctx)
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != http.StatusUnauthorized || !strings.HasSuffix(p.Type, ":unauthorized") {
		t.Fatalf("without a token: %v, want a 401 unauthorized problem", err)
	}
	c.Token = "wrong"
	if _, err := c.Encode(ctx, api.EncodeOptions{}, seven); !errors.As(err, &p) || p.Status != http.StatusUnauthorized {
		t.Errorf("with a wrong token: %v", err)
	}
	c.Token = token
	if _, err := c.Models(ctx); err != nil {
		t.Errorf("with the token: %v", err)
	}
	l, err := c.Encode(ctx, api.EncodeOptions{}, seven)
	if err != nil {
		t.Fatal(err)
	}
	if imgs, err := c.Decode(ctx, l, api.DecodeOptions{}); err != nil || len(imgs) != 1 {
		t.Errorf("decode with the token: %v", err)
	}
	want := []string{"", "Bearer wrong", "Bearer " + token, "Bearer " + token, "Bearer " + token}
	if strings.Join(sent, "|") != strings.Join(want, "|") {
		t.Errorf("Authorization headers sent %q, want %q", sent, want)
	}
}
