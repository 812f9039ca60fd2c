package train

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/aeserve/aeserve/internal/model"
)

func shortRun(t *testing.T, noise float64) (*Result, string) {
	t.Helper()
	out := t.TempDir()
	cfg := Config{
		Name: "tiny", DataDir: anyMNIST(t), OutDir: out,
		Epochs: 2, BatchSize: 32, LR: 2e-3, Noise: noise, Seed: 3,
		ValImages: 256, Limit: 512, TestLimit: 128, Log: zerolog.Nop(),
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res, out
}

func TestShortTrainingLowersLoss(t *testing.T) {
	res, out := shortRun(t, 0.5)
	if len(res.TrainLoss) != 2 || len(res.ValLoss) != 2 {
		t.Fatalf("losses per epoch: %v / %v", res.TrainLoss, res.ValLoss)
	}
	// ln 2 ≈ 0.693 is the BCE of an untrained sigmoid output of 0.5.
	if res.ValLoss[0] >= 0.69 || res.ValLoss[1] >= res.ValLoss[0] {
		t.Fatalf("validation loss did not fall: %v", res.ValLoss)
	}
	if res.Metrics.TestImages != 128 || res.Metrics.NoisyPSNR <= 0 || res.Metrics.PSNR <= 0 {
		t.Fatalf("metrics %+v", res.Metrics)
	}
	m, err := model.LoadDir(out, "tiny")
	if err != nil {
		t.Fatal(err)
	}
	if m.Fingerprint != res.Model.Fingerprint || m.Manifest.Training.Epochs != 2 || m.Manifest.Metrics.BCE != res.Metrics.BCE {
		t.Fatalf("saved manifest does not match the run: %+v", m.Manifest)
	}
	for _, f := range []string{"loss.png", "samples.png"} {
		b, err := os.ReadFile(filepath.Join(out, "tiny", f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(bytes.NewReader(b)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

// Same seed, data, build and thread count: the same weights, bit for bit.
func TestTrainingIsReproducible(t *testing.T) {
	a, _ := shortRun(t, 0)
	b, _ := shortRun(t, 0)
	if a.Model.Fingerprint != b.Model.Fingerprint {
		t.Fatalf("fingerprints differ: %s vs %s", a.Model.Fingerprint, b.Model.Fingerprint)
	}
}

func TestEvaluateScoresIdentityAndNoise(t *testing.T) {
	test, err := Load(anyMNIST(t), "t10k")
	if err != nil {
		t.Fatal(err)
	}
	p := model.ArchConv.InitParams(1)
	m, err := model.FromParams("x", model.Manifest{Architecture: model.ArchConv.Name}, p)
	if err != nil {
		t.Fatal(err)
	}
	met, err := Evaluate(m, &Set{Images: test.Images[:64*model.ImageLen], Labels: test.Labels[:64], N: 64}, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	// The reference: noise factor 0.5 leaves the noisy input at about 9.4 dB.
	if met.NoisyPSNR < 9.0 || met.NoisyPSNR > 9.8 || met.TestImages != 64 {
		t.Fatalf("noisy input PSNR %.2f dB over %d images, want ≈ 9.4", met.NoisyPSNR, met.TestImages)
	}
}

// A run never silently replaces a model: the shipped weights are one
// "--out weights" away.
func TestRunRefusesToReplaceAModel(t *testing.T) {
	_, out := shortRun(t, 0)
	cfg := Config{Name: "tiny", DataDir: anyMNIST(t), OutDir: out, Epochs: 1, BatchSize: 32, ValImages: 256, Limit: 64,
		TestLimit: 32, Log: zerolog.Nop()}
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second run into the same directory: %v, want ErrExists naming --force", err)
	}
	cfg.Force = true
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("with Force: %v", err)
	}
}

// Noise figures belong to models trained on noise: a clean model's manifest
// and log say nothing of a noisy input it never had.
func TestNoiseFiguresOnlyForNoisyModels(t *testing.T) {
	for _, noise := range []float64{0, 0.5} {
		var logs bytes.Buffer
		out := t.TempDir()
		cfg := Config{Name: "tiny", DataDir: anyMNIST(t), OutDir: out, Epochs: 1, BatchSize: 32, Noise: noise, Seed: 3,
			ValImages: 128, Limit: 128, TestLimit: 64, Log: zerolog.New(&logs)}
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		manifest, err := os.ReadFile(filepath.Join(out, "tiny", "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		for what, text := range map[string]string{"manifest": string(manifest), "log": logs.String()} {
			if has := strings.Contains(text, "noisy_psnr_db"); has != (noise > 0) {
				t.Errorf("noise %v: the %s mentions noisy_psnr_db: %v", noise, what, has)
			}
		}
	}
}

// A variational autoencoder trains on its negative ELBO, selects on it
// (per pixel, the training loss's scale), reproducibly from its seed, and
// its manifest records the test ELBO that ELBO gives again.
func TestVAETrainsOnItsELBO(t *testing.T) {
	run := func() (*Result, string) {
		cfg, err := Preset("vae2")
		if err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		cfg.DataDir, cfg.OutDir, cfg.Log = anyMNIST(t), out, zerolog.Nop()
		cfg.Epochs, cfg.BatchSize, cfg.ValImages, cfg.Limit, cfg.TestLimit = 2, 32, 256, 512, 128
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return res, out
	}
	a, out := run()
	met := a.Metrics
	if !(met.NegELBO > 0 && met.KL > 0 && met.KL < met.NegELBO) || met.ELBOSeed != ELBOSeed {
		t.Fatalf("metrics %+v", met)
	}
	if !(a.ValLoss[1] < a.ValLoss[0]) || a.ValLoss[0] > 0.69 {
		t.Errorf("validation loss (negative ELBO per pixel) did not fall: %v", a.ValLoss)
	}
	m, err := model.LoadDir(out, "vae2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Manifest.Training.Loss, "KL[q(z|x)") {
		t.Errorf("loss %q does not name the KL", m.Manifest.Training.Loss)
	}
	test, err := Load(anyMNIST(t), "t10k")
	if err != nil {
		t.Fatal(err)
	}
	elbo, kl, err := ELBO(m, &Set{Images: test.Images[:128*model.ImageLen], Labels: test.Labels[:128], N: 128}, ELBOSeed)
	if err != nil {
		t.Fatal(err)
	}
	if elbo != met.NegELBO || kl != met.KL {
		t.Errorf("ELBO gives %v (KL %v), the manifest %v (KL %v)", elbo, kl, met.NegELBO, met.KL)
	}
	if b, _ := run(); b.Model.Fingerprint != a.Model.Fingerprint {
		t.Errorf("the same seed gave weights %s, then %s", a.Model.Fingerprint, b.Model.Fingerprint)
	}
	// Draws from the prior: the same seed, the same images; a classifier
	// (untrained here) sees each of them once.
	s1, err := SamplePrior(m, 16, 5)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := SamplePrior(m, 16, 5)
	if len(s1) != 16*model.ImageLen || !slices.Equal(s1, s2) {
		t.Fatal("SamplePrior is not a function of its seed")
	}
	cls, err := model.FromParams("c", model.Manifest{Architecture: model.ArchCNN.Name}, model.ArchCNN.InitParams(1))
	if err != nil {
		t.Fatal(err)
	}
	q, err := SampleQuality(m, cls, 16, 5)
	if err != nil {
		t.Fatal(err)
	}
	var total int
	for _, c := range q.Digits {
		total += c
	}
	if total != 16 || len(q.Digits) != 10 || !(q.MeanTopProbability > 0.1 && q.MeanTopProbability <= 1) {
		t.Errorf("sample quality %+v", q)
	}
}
