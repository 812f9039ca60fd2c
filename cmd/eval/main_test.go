package main

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/train"
	"github.com/aeserve/aeserve/weights"
)

var mnist = filepath.Join("..", "..", "..", "shared", "mnist")

// The shipped weights must meet the quality bar on all 10,000 test
// images, and evaluating them again must reproduce the manifest's figures.
func TestShippedWeightsMeetQualityBar(t *testing.T) {
	test, err := train.Load(mnist, "t10k")
	if err != nil {
		t.Fatal(err)
	}
	bars := map[string]func(model.Metrics) bool{
		"conv":    func(m model.Metrics) bool { return m.BCE <= 0.0685 && m.PSNR >= 25.7 },
		"denoise": func(m model.Metrics) bool { return m.PSNR >= 18.7 && m.NoisyPSNR < 10 },
	}
	for name, meets := range bars {
		m, err := model.LoadFS(weights.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := train.Evaluate(m, test, m.Manifest.Training.NoiseFactor)
		if err != nil {
			t.Fatal(err)
		}
		if got.TestImages != 10000 || !meets(got) {
			t.Errorf("%s: %+v misses the quality bar", name, got)
		}
		want := m.Manifest.Metrics
		if math.Abs(got.BCE-want.BCE) > 1e-4 || math.Abs(got.PSNR-want.PSNR) > 0.01 {
			t.Errorf("%s: evaluation gives BCE %.5f PSNR %.3f, manifest says %.5f / %.3f", name, got.BCE, got.PSNR, want.BCE, want.PSNR)
		}
	}
}

func TestEvalPrintsTable(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"--data", mnist, "--limit", "200"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[2], "| conv | ") || !strings.HasPrefix(lines[3], "| denoise | ") {
		t.Fatalf("table:\n%s", out.String())
	}
	if err := run([]string{"--data", mnist, "--models", "nope"}, &out); err == nil {
		t.Fatal("unknown model accepted")
	}
}
