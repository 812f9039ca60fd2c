package api_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/mnistdata"
	"github.com/aeserve/aeserve/internal/server"
	"github.com/aeserve/aeserve/internal/train"
)

// realServer serves every embedded model on loopback (see exampleServer).
func realServer(t *testing.T) *api.Client {
	t.Helper()
	url, stop := exampleServer()
	t.Cleanup(stop)
	return &api.Client{BaseURL: url}
}

func testDigits(t *testing.T, from, n int) (pngs [][]byte, labels []uint8) {
	t.Helper()
	set, err := train.Load(mnistdata.Must(t), "t10k")
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
