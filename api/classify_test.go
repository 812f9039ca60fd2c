package api_test

import (
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/server"
	"github.com/aeserve/aeserve/internal/train"
	"github.com/aeserve/aeserve/weights"
)

// realServer serves every embedded model on loopback.
func realServer(t *testing.T) *api.Client {
	t.Helper()
	s, err := server.New(server.Config{})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := fs.ReadDir(weights.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	var ms []*model.Model
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		m, err := model.LoadFS(weights.FS, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	if err := s.Load(ms...); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.Close(t.Context())
	})
	return &api.Client{BaseURL: ts.URL}
}

func testDigits(t *testing.T, from, n int) (pngs [][]byte, labels []uint8) {
	t.Helper()
	dir := "../../shared/mnist"
	if _, err := os.Stat(dir); err != nil {
		dir = "/work/shared/mnist"
	}
	set, err := train.Load(dir, "t10k")
	if err != nil {
		t.Fatalf("MNIST test digits are required: %v", err)
	}
	for i := from; i < from+n; i++ {
		b, err := digit.EncodePNG(set.Image(i))
		if err != nil {
			t.Fatal(err)
		}
		pngs = append(pngs, b)
	}
	return pngs, set.Labels[from : from+n]
}

func TestClientClassify(t *testing.T) {
	c := realServer(t)
	ctx := t.Context()
	pngs, labels := testDigits(t, 500, 12)
	res, err := c.Classify(ctx, api.ClassifyOptions{}, pngs...)
	if err != nil {
		t.Fatal(err)
	}
	correct := 0
	for i, r := range res.Results {
		if r.Digit == int(labels[i]) {
			correct++
		}
	}
	if res.Model != "classifier" || len(res.Results) != len(pngs) || correct < 11 {
		t.Errorf("%s: %d results, %d correct", res.Model, len(res.Results), correct)
	}
	// One image comes back in the single form; the client gives the same shape.
	one, err := c.Classify(ctx, api.ClassifyOptions{Denoise: true}, pngs[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Results) != 1 || one.Denoiser != "denoise" || one.DenoiserFingerprint == "" {
		t.Errorf("denoised single answer %+v", one)
	}
	var p *api.Problem
	if _, err := c.Classify(ctx, api.ClassifyOptions{Denoiser: "denoise"}, pngs[0]); !errors.As(err, &p) || p.Status != http.StatusBadRequest {
		t.Errorf("Denoiser without Denoise: %v, want a 400 problem", err)
	}
	if _, err := c.Classify(ctx, api.ClassifyOptions{Model: "conv"}, pngs[0]); !errors.As(err, &p) || p.Type != server.ProblemTypeBase+"unsupported-operation" {
		t.Errorf("classify with an autoencoder: %v, want unsupported-operation", err)
	}
}
