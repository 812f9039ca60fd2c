package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aeserve/aeserve/internal/evaluate"
	"github.com/aeserve/aeserve/internal/mnistdata"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/train"
	"github.com/aeserve/aeserve/weights"
)

// mnist is where the tests read MNIST: the full set, or the committed subset (the whole test
// set, and 2,000 training images for the PCA baselines); see internal/mnistdata.
var mnist = func() string {
	d, _, err := mnistdata.Dir()
	if err != nil {
		return filepath.Join("..", "..", "..", "shared", "mnist") // the tests then report what is missing
	}
	return d
}()

// The shipped conv and denoise weights must meet the quality bar on
// all 10,000 test images, and evaluating any shipped model again must
// reproduce the figures its manifest records.
func TestShippedWeightsMeetQualityBar(t *testing.T) {
	if testing.Short() {
		t.Skip("evaluates every shipped model on all 10,000 test images")
	}
	// Only the factor the classifier and the denoisers need: 0.5.
	res, err := evaluateAll(config{data: mnist, log: io.Discard, factors: []float64{}})
	if err != nil {
		t.Fatal(err)
	}
	if res.test.N != 10000 {
		t.Fatalf("%d test images", res.test.N)
	}
	bars := map[string]func(a *autoResult) bool{
		"conv": func(a *autoResult) bool { return a.clean.BCE <= 0.0685 && a.clean.PSNR >= 25.7 },
		"denoise": func(a *autoResult) bool {
			return a.noisy[0.5].PSNR >= 18.7 && res.input[0.5].PSNR < 10 && a.noisy[0.5].SSIM > res.input[0.5].SSIM
		},
		"compact": func(a *autoResult) bool { return a.clean.PSNR >= 23.4 },
	}
	// compact's digits sent alone as 47-byte int8 latents keep the bar too,
	// and a JPEG needs several times the bytes for the same PSNR.
	rates := map[string]float64{}
	var jpegMatch *evaluate.Rate
	for i, r := range res.trans.rates {
		rates[r.Method] = r.PSNR
		if strings.HasSuffix(r.Method, "matching compact int8's PSNR") {
			jpegMatch = &res.trans.rates[i]
		}
		if r.Method == "compact latent, int8" && (r.Bytes != 47 || r.PSNR < 23.4) {
			t.Errorf("compact int8: %.0f bytes, %.2f dB; want 47 bytes and ≥ 23.4 dB", r.Bytes, r.PSNR)
		}
	}
	if _, ok := rates["compact latent, int8"]; !ok || jpegMatch == nil {
		t.Errorf("transmission rates %v lack compact int8 or its JPEG", rates)
	} else if jpegMatch.Bytes < 3*47 {
		t.Errorf("a JPEG matching compact int8 takes %.0f bytes, under three times 47", jpegMatch.Bytes)
	}
	seen := map[string]bool{}
	for _, a := range res.auto {
		name := a.m.Name
		seen[name] = true
		if meets, ok := bars[name]; ok && !meets(a) {
			t.Errorf("%s: clean %+v, noisy %+v misses the quality bar", name, a.clean, a.noisy)
		}
		// The manifest scores the model on what it was trained on.
		got, want := a.clean, a.m.Manifest.Metrics
		if a.noise > 0 {
			got = a.noisy[a.noise]
			if math.Abs(res.input[a.noise].PSNR-want.NoisyPSNR) > 0.01 {
				t.Errorf("%s: noisy input PSNR %.3f, manifest says %.3f", name, res.input[a.noise].PSNR, want.NoisyPSNR)
			}
		}
		if want.TestImages == res.test.N && (math.Abs(got.BCE-want.BCE) > 1e-4 || math.Abs(got.PSNR-want.PSNR) > 0.01) {
			t.Errorf("%s: evaluation gives BCE %.5f PSNR %.3f, manifest says %.5f / %.3f", name, got.BCE, got.PSNR, want.BCE, want.PSNR)
		}
		if !(got.SSIM > 0 && got.SSIM <= 1) {
			t.Errorf("%s: SSIM %v", name, got.SSIM)
		}
	}
	for name := range bars {
		if !seen[name] {
			t.Errorf("%s: not among the evaluated models", name)
		}
	}
	if c := res.cls; c != nil {
		if want := c.m.Manifest.Metrics; want.TestImages == res.test.N && math.Abs(c.clean-want.Accuracy) > 1e-4 {
			t.Errorf("%s: accuracy %.4f, manifest says %.4f", c.m.Name, c.clean, want.Accuracy)
		}
	}
}

// The shipped variational autoencoders meet the bar on all 10,000
// test digits (reconstruction from the mean ≥ 20.5 dB, negative ELBO ≤ 103
// nats, and draws from the prior that the classifier takes for digits, all
// ten of them), and their manifests record what evaluating them gives.
func TestShippedVAEMeetsQualityBar(t *testing.T) {
	if testing.Short() {
		t.Skip("evaluates the VAEs on all 10,000 test images")
	}
	test, err := train.Load(mnist, "t10k")
	if err != nil {
		t.Fatal(err)
	}
	if test.N != 10000 {
		t.Fatalf("%d test images", test.N)
	}
	cls, err := model.LoadFS(weights.FS, "classifier")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		psnr, elbo    float64 // at least, at most
		top           float64 // samples' mean top probability, at least
		allDigits     bool
		latentNumbers int
	}{
		{"vae", 20.5, 103, 0.8, true, 20},
		{"vae2", 13, 160, 0, false, 2}, // for pictures: no bar but sanity
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := model.LoadFS(weights.FS, tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if !m.Arch.Generative() || m.Arch.InLen(model.Decoder) != tc.latentNumbers {
				t.Fatalf("%s: architecture %s", tc.name, m.Arch.Name)
			}
			met, err := train.Evaluate(m, test, 0)
			if err != nil {
				t.Fatal(err)
			}
			q, err := train.SampleQuality(m, cls, train.Samples, train.SampleSeed)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: PSNR %.2f dB from the mean, negative ELBO %.2f nats (KL %.2f); samples' mean top probability %.3f, digits %v",
				tc.name, met.PSNR, met.NegELBO, met.KL, q.MeanTopProbability, q.Digits)
			if met.PSNR < tc.psnr || met.NegELBO > tc.elbo || q.MeanTopProbability < tc.top {
				t.Errorf("%s misses its bar: PSNR %.2f (≥ %g), negative ELBO %.2f (≤ %g), samples' top probability %.3f (≥ %g)",
					tc.name, met.PSNR, tc.psnr, met.NegELBO, tc.elbo, q.MeanTopProbability, tc.top)
			}
			if tc.allDigits && slices.Contains(q.Digits, 0) {
				t.Errorf("%s: the classifier sees digits %v in the samples: not all ten", tc.name, q.Digits)
			}
			want := m.Manifest.Metrics
			if math.Abs(met.PSNR-want.PSNR) > 0.01 || math.Abs(met.NegELBO-want.NegELBO) > 1e-6*want.NegELBO || math.Abs(met.KL-want.KL) > 1e-6*want.KL {
				t.Errorf("%s: evaluation gives PSNR %.3f, ELBO %.6f, KL %.6f; the manifest says %.3f, %.6f, %.6f",
					tc.name, met.PSNR, met.NegELBO, met.KL, want.PSNR, want.NegELBO, want.KL)
			}
			// The figures were computed on one kernel path; another rounds
			// differently in the last bits (the portable path's sums, the
			// sigmoid's polynomial), which moves the mean in its 8th digit
			// and could move a borderline sample to another digit.
			if s := want.Samples; s == nil || math.Abs(s.MeanTopProbability-q.MeanTopProbability) > 1e-5 || !digitsClose(s.Digits, q.Digits) ||
				s.ClassifierFingerprint != cls.Fingerprint.String() {
				t.Errorf("%s: the manifest's sample figures %+v are not the evaluation's %+v", tc.name, s, q)
			}
		})
	}
}

// digitsClose reports whether two counts of sampled digits differ by at most
// two samples in all.
func digitsClose(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	d := 0
	for i := range a {
		d += max(a[i]-b[i], b[i]-a[i])
	}
	return d <= 2
}

// testWeights makes a weights directory holding the shipped models and, for
// every architecture and role the report handles that is not shipped yet,
// a model with untrained weights: enough to exercise every section.
func testWeights(t *testing.T) (dir string, names []string) {
	t.Helper()
	dir = t.TempDir()
	err := fs.WalkDir(weights.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, p), 0o755)
		}
		b, err := fs.ReadFile(weights.FS, p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	fake := []struct {
		name string
		arch *model.Arch
		obj  model.Objective
	}{
		{"dense", model.ArchDense, model.Objective{}},
		{"deep", model.ArchDeep, model.Objective{}},
		{"sparse", model.ArchSigmoid128, model.Objective{SparsityRho: 0.05, SparsityBeta: 3}},
		{"sparse-unpenalised", model.ArchSigmoid128, model.Objective{}},
		{"contractive", model.ArchSigmoid64, model.Objective{Contractive: 0.1}},
		{"contractive-unpenalised", model.ArchSigmoid64, model.Objective{}},
		{"vae", model.ArchVAE, model.Objective{KL: 1}},
		{"vae2", model.ArchVAE2, model.Objective{KL: 1}},
		{"classifier", model.ArchCNN, model.Objective{}},
	}
	for i, f := range fake {
		if _, err := fs.Stat(weights.FS, path.Join(f.name, "manifest.json")); err == nil {
			continue // shipped
		}
		man := model.Manifest{Name: f.name, Architecture: f.arch.Name, Description: "untrained, for the test",
			Training: model.Training{Loss: f.obj.Describe(f.arch.Task), Seed: int64(i), Epochs: 2,
				TrainLoss: []float64{0.3, 0.2}, ValLoss: []float64{0.31, 0.25}}}
		if _, err := model.Save(dir, man, f.arch.InitParams(int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if names, err = discover(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return dir, names
}

// The command on a small subset writes every section, every picture it
// links, and lists every model in the table it prints.
func TestEvalWritesReport(t *testing.T) {
	wdir, names := testWeights(t)
	report := filepath.Join(t.TempDir(), "docs", "report")
	var out, log bytes.Buffer
	args := []string{"--data", mnist, "--weights", wdir, "--limit", "200", "--pca-train", "2000", "--report", report}
	if err := run(args, &out, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	stdout := out.String()
	for _, name := range names {
		if !strings.Contains(stdout, "\n| "+name+" | ") {
			t.Errorf("the table does not list %s:\n%s", name, stdout)
		}
	}
	for _, k := range []string{"32", "64", "128"} {
		if !strings.Contains(stdout, "\n| PCA-"+k+" | ") {
			t.Errorf("the table has no PCA-%s row:\n%s", k, stdout)
		}
	}

	md, err := os.ReadFile(filepath.Join(report, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	text := string(md)
	if !strings.Contains(text, "go run ./cmd/eval --data "+mnist) || !strings.Contains(text, fmt.Sprintf("seeded with %d", train.EvalNoiseSeed)) {
		t.Error("the header does not state the command and the noise seed")
	}
	at := 0
	for _, s := range sections {
		i := strings.Index(text, "\n"+s+"\n")
		if i < 0 {
			t.Errorf("section %q missing", s)
			continue
		}
		if n := strings.Count(text, "\n"+s+"\n"); n != 1 {
			t.Errorf("section %q appears %d times", s, n)
		}
		if i < at {
			t.Errorf("section %q out of order", s)
		}
		at = i
	}
	for _, want := range []string{
		"| denoise | noise 0.5 |",                  // denoising table
		"| reconstructed by denoise | noise 0.5 |", // classification of denoised digits
		"| sparse-unpenalised | none | 128 |",      // the sparsity twins
		"| contractive-unpenalised | none | 64 | ", // the Jacobian twins
		"| clean digits | ",                        // the int8 section: the classifier
		"| denoise | full | 64 | ",                 // its speed table
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if !regexp.MustCompile(`\n\| contractive \| [^|]*‖J‖²_F[^|]* \| 64 \| [0-9.]+ \| [0-9.]+ \|`).MatchString(text) {
		t.Error("report lacks the contractive model's Jacobian figures")
	}
	for _, name := range names {
		if !strings.Contains(text, "| "+name+" | ") {
			t.Errorf("the report's model table lacks %s", name)
		}
	}

	// Every picture linked is written and is a PNG: those drawn here, and
	// the loss curves linked where training left them.
	links := regexp.MustCompile(`!\[[^\]]*\]\(([^)]+)\)`).FindAllStringSubmatch(text, -1)
	kinds := map[string]int{}
	for _, l := range links {
		p := filepath.Join(report, filepath.FromSlash(l[1]))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("link %s: %v", l[1], err)
			continue
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("link %s is not a PNG", l[1])
		}
		kind, _, _ := strings.Cut(path.Base(l[1]), "-")
		kinds[kind]++
	}
	autoencoders := len(names) - 1 // all but the classifier
	if kinds["samples"] != autoencoders || kinds["codes"] != autoencoders || kinds["filters"] != len(names) ||
		kinds["loss"]+kinds["loss.png"] != len(names) {
		t.Errorf("pictures linked: %v, want %d sample grids and code views, %d filter images and loss curves", kinds, autoencoders, len(names))
	}
	// The variational autoencoders: samples and interpolations of both,
	// the manifold of the 2-number code.
	if kinds["vae"] != 5 || !strings.Contains(text, "![vae2 manifold](vae-manifold-vae2.png)") {
		t.Errorf("generative pictures: %d, want 5 with vae2's manifold", kinds["vae"])
	}
	if !regexp.MustCompile(`\n\| vae \| 20 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9 ·]+ \|`).MatchString(text) {
		t.Error("report lacks the VAE's ELBO and sample figures")
	}
	if !strings.Contains(text, "](../../") || !strings.Contains(text, "/conv/loss.png)") {
		t.Error("conv's loss curve is not linked where training wrote it")
	}

	// Stale pictures of an earlier report go; other files stay.
	stale, other := filepath.Join(report, "codes-gone.png"), filepath.Join(report, "notes.png")
	for _, p := range []string{stale, other} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args = []string{"--data", mnist, "--weights", wdir, "--models", "dense", "--limit", "20", "--pca-train", "100", "--report", report}
	if err := run(args, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("a stale picture was kept")
	}
	if _, err := os.Stat(other); err != nil {
		t.Error("a file that is not the report's was removed")
	}
}

func TestEvalFlags(t *testing.T) {
	var out, log bytes.Buffer
	if err := run([]string{"--help"}, &out, &log); err != nil {
		t.Errorf("--help: %v", err)
	}
	if !strings.Contains(log.String(), "-pca-train") || out.Len() != 0 {
		t.Errorf("--help printed %q to stdout and %q to stderr", out.String(), log.String())
	}
	if err := run([]string{"--data", mnist, "--models", "nope"}, &out, io.Discard); err == nil {
		t.Error("unknown model accepted")
	}
	for _, bad := range []string{"compact", "nope"} { // no int8 path; not evaluated
		if err := run([]string{"--data", mnist, "--models", "conv,compact", "--limit", "20", "--report", "", "--int8", bad}, &out, io.Discard); err == nil || !strings.Contains(err.Error(), "--int8") {
			t.Errorf("--int8 %s: %v", bad, err)
		}
	}
	if err := run([]string{"--bogus"}, &out, io.Discard); err == nil {
		t.Error("unknown flag accepted")
	}
	if err := run([]string{"--limit", "-1"}, &out, io.Discard); err == nil {
		t.Error("negative limit accepted")
	}

	// --report "" prints the table and writes nothing.
	data := mustAbs(t, mnist)
	dir := t.TempDir()
	t.Chdir(dir)
	out.Reset()
	if err := run([]string{"--data", data, "--models", "conv", "--limit", "50", "--report", ""}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[2], "| conv | ") {
		t.Errorf("table:\n%s", out.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("--report \"\" wrote %v", entries)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
