package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/aeserve/aeserve/internal/evaluate"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/plot"
	"github.com/aeserve/aeserve/internal/train"
)

// ReportFile is the report's name in its directory.
const ReportFile = "evaluation-report.md"

// The report's sections, in order: the test checks every one is written.
// Sections of the report, by their index in sections.
const (
	secModels = iota
	secReconstruction
	secDenoising
	secClassification
	secSparsity
	secJacobian
	secAnomalies
	secGenerative
	secGrids
	secLossCurves
	secFilters
	secCodeSpaces
	secTransmission
	secInt8
)

var sections = []string{
	"## Models",
	"## Reconstruction",
	"## Denoising",
	"## Classification",
	"## Sparsity",
	"## Jacobian",
	"## Anomaly scores",
	"## Generative models",
	"## Sample grids",
	"## Loss curves",
	"## First-layer filters",
	"## Code spaces",
	"## Transmission",
	"## Reduced precision (int8)",
}

func reportPath(dir string) string { return filepath.Join(dir, ReportFile) }

// writeTables prints the main table, and the classifier's if there is one.
func writeTables(w io.Writer, res *results) error {
	var b strings.Builder
	reconstructionTable(&b, res)
	if res.cls != nil {
		b.WriteString("\n")
		classifierTable(&b, res)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func trainedOn(noise float64) string {
	if noise > 0 {
		return fmt.Sprintf("noise %.1f", noise)
	}
	return "clean"
}

func reconstructionTable(b *strings.Builder, res *results) {
	b.WriteString("| model | fingerprint | architecture | trained on | code numbers | code bytes | BCE | MSE | PSNR (dB) | SSIM |\n")
	b.WriteString("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, a := range res.auto {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %d | %d | %s |\n", a.m.Name, a.m.Fingerprint, a.m.Arch.Name,
			trainedOn(a.noise), a.codeNumbers, a.codeBytes, scoreCells(a.clean.BCE, a.clean.MSE, a.clean.PSNR, a.clean.SSIM))
	}
	for _, p := range res.pca {
		fmt.Fprintf(b, "| PCA-%d | – | PCA, %d components | clean | %d | %d | %s |\n", p.k, p.k, p.k, p.codeBytes,
			scoreCells(p.clean.BCE, p.clean.MSE, p.clean.PSNR, p.clean.SSIM))
	}
}

func scoreCells(bce, mse, psnr, ssim float64) string {
	return fmt.Sprintf("%.4f | %.5f | %.2f | %.4f", bce, mse, psnr, ssim)
}

func classifierTable(b *strings.Builder, res *results) {
	c := res.cls
	fmt.Fprintf(b, "| model | fingerprint | architecture | accuracy, clean digits | accuracy, noisy digits (%.1f) |\n", classifyNoise)
	b.WriteString("| --- | --- | --- | ---: | ---: |\n")
	fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", c.m.Name, c.m.Fingerprint, c.m.Arch.Name, pct(c.clean), pct(c.noisy))
}

func pct(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.2f%%", 100*v)
}

// writeReport writes the report and its PNGs into dir, removing PNGs of
// an earlier report that this one no longer uses.
func writeReport(dir string, res *results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r := &reportWriter{dir: dir, res: res, written: map[string]bool{}}
	md, err := r.markdown()
	if err != nil {
		return err
	}
	if err := os.WriteFile(reportPath(dir), []byte(md), 0o644); err != nil {
		return err
	}
	return r.removeStale()
}

type reportWriter struct {
	dir     string
	res     *results
	b       strings.Builder
	written map[string]bool // PNGs written this time
}

func (r *reportWriter) printf(format string, args ...any) { fmt.Fprintf(&r.b, format, args...) }

// png draws a picture into the report directory and returns its link.
func (r *reportWriter) png(name string, draw func(io.Writer) error) (string, error) {
	var buf bytes.Buffer
	if err := draw(&buf); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, name), buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	r.written[name] = true
	return name, nil
}

// Our PNGs' names, for removing stale ones.
var pngPrefixes = []string{"samples-", "filters-", "codes-", "loss-", "vae-"}

func (r *reportWriter) removeStale() error {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".png") || r.written[name] {
			continue
		}
		for _, p := range pngPrefixes {
			if strings.HasPrefix(name, p) {
				if err := os.Remove(filepath.Join(r.dir, name)); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

func (r *reportWriter) markdown() (string, error) {
	res := r.res
	cfg := res.cfg
	n := res.test.N
	r.printf("# Evaluation report\n\n")
	r.printf("Every model of the weights measured on the MNIST test digits, written by `cmd/eval`. To reproduce it, run from the repository root\n\n")
	r.printf("```sh\n%s\n```\n\n", command(cfg.args))
	r.printf("| | |\n| --- | --- |\n")
	r.printf("| date (UTC) | %s |\n", time.Now().UTC().Format("2006-01-02 15:04"))
	r.printf("| CPU | %s |\n", cpuModel())
	r.printf("| GOMAXPROCS | %d |\n", runtime.GOMAXPROCS(0))
	r.printf("| Go | %s %s/%s |\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	r.printf("| build (SGEMM) | %s |\n", model.SGEMMBackend)
	r.printf("| weights | %s |\n", weightsLabel(cfg))
	r.printf("| test images | %s of the MNIST test file (t10k) |\n", countOf(n, 10000))
	if len(res.pca) > 0 {
		r.printf("| PCA fitted on | the first %s images of the MNIST training file |\n", thousands(res.pcaTrainN))
	}
	r.printf("| noise | clip(x + f·N(0,1), 0, 1): one N(0,1) draw per pixel, in pixel order, from Go's `math/rand` seeded with %d (`train.EvalNoiseSeed`); the same draws for every model and every factor f |\n", train.EvalNoiseSeed)
	r.printf("| code-space views | the first %s test digits |\n\n", thousands(min(n, viewDigits)))
	r.printf("Metrics: BCE is the binary cross-entropy of the output (clipped to [1e-7, 1−1e-7]) against the clean digit, mean per pixel; MSE is over all pixels in [0, 1]; PSNR = 10·log10(1/MSE); SSIM is the mean over digits of the structural similarity of Wang et al. (2004) on the 28×28 images (11×11 Gaussian window, σ 1.5, as scikit-image computes it). Code size is the code's numbers per digit and the bytes of one digit's code in the binary float32 latent format, header included. Everything but the date and CPU lines is reproducible with the same GOMAXPROCS.\n\n")

	r.models()
	r.reconstruction()
	r.denoising()
	r.classification()
	r.sparsity()
	r.jacobian()
	r.anomalies()
	if err := r.generative(); err != nil {
		return "", err
	}
	if err := r.grids(); err != nil {
		return "", err
	}
	if err := r.lossCurves(); err != nil {
		return "", err
	}
	if err := r.filters(); err != nil {
		return "", err
	}
	if err := r.codeSpaces(); err != nil {
		return "", err
	}
	if err := r.transmission(); err != nil {
		return "", err
	}
	r.int8()
	return r.b.String(), nil
}

func (r *reportWriter) models() {
	res := r.res
	r.printf("%s\n\n", sections[secModels])
	r.printf("Every directory of the weights with a `manifest.json`. The fingerprint identifies the weights (the first 8 bytes of a SHA-256 over the stage files' SHA-256s); the server reports the same one. Epochs: the one whose weights were kept (lowest validation loss) of those run.\n\n")
	r.printf("| model | task | architecture | fingerprint | trained on | objective | epochs | training seed |\n")
	r.printf("| --- | --- | --- | --- | --- | --- | ---: | ---: |\n")
	all := []*model.Model{}
	for _, a := range res.auto {
		all = append(all, a.m)
	}
	if res.cls != nil {
		all = append(all, res.cls.m)
	}
	all = append(all, res.others...)
	for _, m := range all {
		t := m.Manifest.Training
		input := trainedOn(t.NoiseFactor)
		if m.Arch.Task == model.TaskClassifier {
			input = "clean"
		}
		epochs := fmt.Sprintf("%d", t.Epochs)
		if t.SelectedEpoch > 0 {
			epochs = fmt.Sprintf("%d of %d", t.SelectedEpoch, t.Epochs)
		}
		r.printf("| %s | %s | %s | %s | %s | %s | %s | %d |\n", m.Name, m.Arch.Task, m.Arch.Name, m.Fingerprint, input, t.Loss, epochs, t.Seed)
	}
	for _, m := range res.others {
		r.printf("\n`%s` is a second classifier; the classification section uses `%s` only.\n", m.Name, res.cls.m.Name)
	}
	r.printf("\n")
}

func (r *reportWriter) reconstruction() {
	res := r.res
	r.printf("%s\n\n", sections[secReconstruction])
	r.printf("Every autoencoder on the %s clean test digits, denoisers included (their noisy inputs are in the next section)", thousands(res.test.N))
	if len(res.pca) > 0 {
		r.printf(", and PCA with as many components as each dense code has numbers: the linear autoencoder with the least squared error, fitted on %s training images, its reconstructions clipped to [0, 1]", thousands(res.pcaTrainN))
	} else {
		r.printf(". No autoencoder has a dense code, so there is no PCA baseline of the same size")
	}
	r.printf(".\n\n")
	reconstructionTable(&r.b, res)
	r.printf("\n")
}

func (r *reportWriter) denoising() {
	res := r.res
	r.printf("%s\n\n", sections[secDenoising])
	r.printf("PSNR (dB) and SSIM against the clean digit, for the noisy digits themselves and for each model's output from them, at noise factors %s. ", joinFactors(res.factors))
	var denoisers []string
	for _, a := range res.auto {
		if a.noise > 0 {
			denoisers = append(denoisers, fmt.Sprintf("`%s` (trained at %.1f)", a.m.Name, a.noise))
		}
	}
	switch len(denoisers) {
	case 0:
		r.printf("No model was trained on noise: every row shows what a model trained on clean digits makes of noisy ones.\n\n")
	default:
		r.printf("Trained on noise: %s; the other models were trained on clean digits and are shown for contrast.\n\n", strings.Join(denoisers, ", "))
	}
	r.printf("| model | trained on |")
	for _, f := range res.factors {
		r.printf(" PSNR @%.1f | SSIM @%.1f |", f, f)
	}
	r.printf("\n| --- | --- |%s\n", strings.Repeat(" ---: | ---: |", len(res.factors)))
	r.printf("| noisy input | – |")
	for _, f := range res.factors {
		s := res.input[f]
		r.printf(" %.2f | %.4f |", s.PSNR, s.SSIM)
	}
	r.printf("\n")
	rows := func(noiseTrained bool) {
		for _, a := range res.auto {
			if (a.noise > 0) != noiseTrained {
				continue
			}
			r.printf("| %s | %s |", a.m.Name, trainedOn(a.noise))
			for _, f := range res.factors {
				s := a.noisy[f]
				r.printf(" %.2f | %.4f |", s.PSNR, s.SSIM)
			}
			r.printf("\n")
		}
	}
	rows(true)
	rows(false)
	for _, p := range res.pca {
		r.printf("| PCA-%d | clean |", p.k)
		for _, f := range res.factors {
			s := p.noisy[f]
			r.printf(" %.2f | %.4f |", s.PSNR, s.SSIM)
		}
		r.printf("\n")
	}
	r.printf("\n")
}

func (r *reportWriter) classification() {
	res := r.res
	r.printf("%s\n\n", sections[secClassification])
	c := res.cls
	if c == nil {
		r.printf("No classifier among the models evaluated, so there is nothing to report here.\n\n")
		return
	}
	r.printf("`%s` (trained on clean digits only) classifies the %s test digits as they are, with noise of factor %.1f added (the denoising section's noisy digits), and after an autoencoder has reconstructed them from the noisy and from the clean digits.", c.m.Name, thousands(res.test.N), classifyNoise)
	if c.manifestAccuracy > 0 {
		r.printf(" Its manifest records %s on the clean test digits at the end of training.", pct(c.manifestAccuracy))
	}
	r.printf("\n\n")
	classifierTable(&r.b, res)
	r.printf("\n| digits given to the classifier | trained on | accuracy, noisy (%.1f) → model | accuracy, clean → model |\n", classifyNoise)
	r.printf("| --- | --- | ---: | ---: |\n")
	r.printf("| as they are (no model) | – | %s | %s |\n", pct(c.noisy), pct(c.clean))
	rows := func(noiseTrained bool) {
		for _, a := range res.auto {
			if (a.noise > 0) == noiseTrained {
				r.printf("| reconstructed by %s | %s | %s | %s |\n", a.m.Name, trainedOn(a.noise), pct(a.accNoisy), pct(a.accClean))
			}
		}
	}
	rows(true)
	rows(false)
	for _, p := range res.pca {
		r.printf("| reconstructed by PCA-%d | clean | %s | %s |\n", p.k, pct(p.accNoisy), pct(p.accClean))
	}
	r.printf("\n")
}

func (r *reportWriter) sparsity() {
	res := r.res
	r.printf("%s\n\n", sections[secSparsity])
	if len(res.sparse) == 0 {
		r.printf("No model with a sparsity penalty (and no `X`/`X%s` twins compared on it) among the models evaluated.\n\n", unpenalised)
		return
	}
	r.printf("The code of each of the %s test digits: the share of code units below %g on that digit (median over digits), the mean activation over all units and digits, and the dead units, never above %g on any test digit. Twins: the same network trained with and without the penalty.\n\n",
		thousands(res.test.N), evaluate.InactiveBelow, evaluate.DeadAtMost)
	r.printf("| model | penalty | code units | units below %g per digit (median) | mean activation | dead units | PSNR (dB) |\n", evaluate.InactiveBelow)
	r.printf("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, g := range res.sparse {
		for _, a := range g {
			s := a.sparsity
			r.printf("| %s | %s | %d | %.1f%% | %.4f | %d (%.1f%%) | %.2f |\n", a.m.Name, penalty(a.m.Manifest.Training.Loss), s.Units,
				100*s.MedianInactive, s.MeanActivation, s.Dead, 100*float64(s.Dead)/float64(s.Units), a.clean.PSNR)
		}
	}
	r.printf("\n")
}

func (r *reportWriter) jacobian() {
	res := r.res
	r.printf("%s\n\n", sections[secJacobian])
	if len(res.jacobian) == 0 {
		r.printf("No model with a contractive (Jacobian) penalty (and no `X`/`X%s` twins compared on it) among the models evaluated.\n\n", unpenalised)
		return
	}
	r.printf("For a code layer h = σ(Wx + b), the Frobenius norm of its Jacobian with respect to the input is ‖J‖²_F = Σ_j (h_j(1−h_j))² Σ_i W_ji², W the encoder's weights `encoder.fc1.weight` [code, 784]; the table gives the mean over the %s test digits of ‖J‖_F, and of ‖J‖²_F (what the penalty weighs). A smaller norm is a code that moves less when the digit does.\n\n", thousands(res.test.N))
	r.printf("| model | penalty | code units | mean ‖J‖_F | mean ‖J‖²_F | PSNR (dB) |\n")
	r.printf("| --- | --- | ---: | ---: | ---: | ---: |\n")
	var notes []string
	for _, g := range res.jacobian {
		for _, a := range g {
			if a.jac == nil {
				r.printf("| %s | %s | %d | – | – | %.2f |\n", a.m.Name, penalty(a.m.Manifest.Training.Loss), a.codeNumbers, a.clean.PSNR)
				notes = append(notes, fmt.Sprintf("`%s` has no figure: %s.", a.m.Name, a.jacNote))
				continue
			}
			r.printf("| %s | %s | %d | %.4f | %.4f | %.2f |\n", a.m.Name, penalty(a.m.Manifest.Training.Loss), a.codeNumbers, a.jac.MeanNorm, a.jac.MeanNorm2, a.clean.PSNR)
		}
	}
	if len(notes) > 0 {
		r.printf("\n%s\n", strings.Join(notes, " "))
	}
	r.printf("\n")
}

func (r *reportWriter) anomalies() {
	res := r.res
	r.printf("%s\n\n", sections[secAnomalies])
	if len(res.auto) == 0 {
		r.printf("No autoencoder among the models evaluated.\n\n")
		return
	}
	r.printf("Every reconstruction and denoise answers each image's reconstruction error, its MSE and BCE against the input (headers, or fields in JSON), and `POST /v1/score` answers them alone: a digit like the training digits reconstructs well, anything else does not. Here each autoencoder's error on the %s clean test digits against %s drawn non-digits of each kind (uniform noise at random densities; rectangles, rings, crosses and grids of dots; capital letters that no digit resembles, stroked as MNIST digits are; seed %d): the ROC AUC of each score (1 = every non-digit scores above every digit, 0.5 = no better than chance), and the test digits' percentiles, which `GET /v1/models/{name}` gives as `metrics.scores` to set a threshold by.\n\n",
		thousands(res.test.N), thousands(nonDigitsPerKind), nonDigitsSeed)
	r.printf("| model | AUC, noise | AUC, shapes | AUC, letters | AUC, all (MSE) | AUC, all (BCE) | test digits' MSE p50 | p99 | p99.9 |\n")
	r.printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, a := range res.auto {
		r.printf("| %s | %.4f | %.4f | %.4f | %.4f | %.4f | %.5f | %.5f | %.5f |\n", a.m.Name,
			a.auc[evaluate.KindNoise][0], a.auc[evaluate.KindShapes][0], a.auc[evaluate.KindLetters][0], a.auc["all"][0], a.auc["all"][1],
			a.scores.MSE.P50, a.scores.MSE.P99, a.scores.MSE.P999)
	}
	r.printf("\n")
}

func (r *reportWriter) grids() error {
	res := r.res
	r.printf("%s\n\n", sections[secGrids])
	g := min(gridDigits, res.test.N)
	r.printf("The first %d test digits: the original, the noisy input for a model trained on noise (at its training factor, the same noisy digits for every such model), and the model's output.\n\n", g)
	for _, a := range res.auto {
		link, err := r.png("samples-"+a.m.Name+".png", func(w io.Writer) error { return plot.SampleGrid(w, a.grid) })
		if err != nil {
			return err
		}
		rows := "original, output"
		if a.noise > 0 {
			rows = fmt.Sprintf("original, noisy input (%.1f), output", a.noise)
		}
		r.printf("**%s** (rows: %s)\n\n![%s samples](%s)\n\n", a.m.Name, rows, a.m.Name, link)
	}
	return nil
}

func (r *reportWriter) lossCurves() error {
	res := r.res
	r.printf("%s\n\n", sections[secLossCurves])
	r.printf("Per epoch of training: the training objective in blue (with its penalty, for a penalised model; the mean over the epoch's steps) and the validation loss in orange (an autoencoder's BCE, a classifier's cross-entropy, on the 6,000 held-out training images). Drawn by training beside the weights and linked from there; a curve training did not leave on disk is drawn here from the manifest's losses.\n\n")
	var cells [][2]string
	var models []*model.Model
	for _, a := range res.auto {
		models = append(models, a.m)
	}
	if res.cls != nil {
		models = append(models, res.cls.m)
	}
	for _, m := range models {
		link, err := r.lossLink(m)
		if err != nil {
			return err
		}
		cell := fmt.Sprintf("![%s loss](%s)", m.Name, link)
		if link == "" {
			cell = "no losses recorded"
		}
		cells = append(cells, [2]string{m.Name, cell})
	}
	r.imageTable(cells)
	return nil
}

// lossLink links the loss curve training wrote beside the weights, if it
// is on disk, or draws one from the manifest.
func (r *reportWriter) lossLink(m *model.Model) (string, error) {
	if p := r.lossOnDisk(m.Name); p != "" {
		absDir, err1 := filepath.Abs(r.dir)
		absP, err2 := filepath.Abs(p)
		if err := errors.Join(err1, err2); err != nil {
			return "", err
		}
		rel, err := filepath.Rel(absDir, absP)
		if err == nil {
			return filepath.ToSlash(rel), nil
		}
	}
	t := m.Manifest.Training
	if !anyFinite(t.TrainLoss) && !anyFinite(t.ValLoss) {
		return "", nil
	}
	return r.png("loss-"+m.Name+".png", func(w io.Writer) error { return plot.LossCurve(w, t.TrainLoss, t.ValLoss) })
}

func anyFinite(v []float64) bool {
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			return true
		}
	}
	return false
}

// penalty is what an objective adds to the task's loss (see
// model.Objective.Describe), or "none".
func penalty(loss string) string {
	if _, p, ok := strings.Cut(loss, " + "); ok {
		return p
	}
	return "none"
}

// lossOnDisk finds a model's loss.png as a file: in the --weights
// directory, or for the embedded weights in the source tree's weights/
// directory (the working directory being the repository's root) if it is
// the embedded file.
func (r *reportWriter) lossOnDisk(name string) string {
	cfg := r.res.cfg
	if cfg.weights != "" {
		p := filepath.Join(cfg.weights, name, "loss.png")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
			return p
		}
		return ""
	}
	embedded, err := fs.ReadFile(r.res.fsys, name+"/loss.png")
	if err != nil {
		return ""
	}
	p := filepath.Join("weights", name, "loss.png")
	if disk, err := os.ReadFile(p); err == nil && bytes.Equal(disk, embedded) {
		return p
	}
	return ""
}

// imageTable lays out captioned pictures two to a row.
func (r *reportWriter) imageTable(cells [][2]string) {
	for i := 0; i < len(cells); i += 2 {
		row := cells[i:min(i+2, len(cells))]
		for _, c := range row {
			r.printf("| %s ", c[0])
		}
		r.printf("|\n")
		r.printf("%s|\n", strings.Repeat("| --- ", len(row)))
		for _, c := range row {
			r.printf("| %s ", c[1])
		}
		r.printf("|\n\n")
	}
}

func (r *reportWriter) filters() error {
	res := r.res
	r.printf("%s\n\n", sections[secFilters])
	r.printf("What each model's first layer looks for, each filter min-max normalised on its own (black: its most negative weight, white: its most positive): for a convolution its kernels, enlarged; for a dense encoder the weights from the 784 pixels to each unit of its first layer, as a 28×28 image (the encoder's filters rather than the decoder's basis images, so that every model shows what it responds to).\n\n")
	type item struct {
		name string
		f    *filters
	}
	var items []item
	for _, a := range res.auto {
		items = append(items, item{a.m.Name, a.filters})
	}
	if res.cls != nil {
		items = append(items, item{res.cls.m.Name, res.cls.filters})
	}
	for _, it := range items {
		if it.f == nil {
			r.printf("**%s**: its first layer has no image form.\n\n", it.name)
			continue
		}
		f := it.f
		link, err := r.png("filters-"+it.name+".png", func(w io.Writer) error {
			return plot.TileGrid(w, f.tiles, f.n, f.tw, f.th, f.cols, f.zoom, f.gap)
		})
		if err != nil {
			return err
		}
		r.printf("**%s**: %s.\n\n![%s filters](%s)\n\n", it.name, f.what, it.name, link)
	}
	return nil
}

func (r *reportWriter) codeSpaces() error {
	res := r.res
	r.printf("%s\n\n", sections[secCodeSpaces])
	r.printf("The codes of the first %s test digits projected onto their own first two principal components (a PCA of each model's codes; for a convolutional code, of its flattened numbers), coloured by the digit's label. The share of the codes' variance each axis explains is under the model's name.\n\n", thousands(min(res.test.N, viewDigits)))
	var cells [][2]string
	for _, a := range res.auto {
		v := a.view
		if v == nil {
			cells = append(cells, [2]string{a.m.Name, "no view: " + a.viewNote})
			continue
		}
		link, err := r.png("codes-"+a.m.Name+".png", func(w io.Writer) error {
			return plot.Scatter(w, v.x, v.y, v.labels, "PC1", "PC2")
		})
		if err != nil {
			return err
		}
		caption := fmt.Sprintf("%s (PC1 %.1f%%, PC2 %.1f%%)", a.m.Name, 100*v.explained[0], 100*v.explained[1])
		cells = append(cells, [2]string{caption, fmt.Sprintf("![%s codes](%s)", a.m.Name, link)})
	}
	if len(cells) == 0 {
		r.printf("No autoencoder among the models evaluated.\n\n")
	}
	r.imageTable(cells)
	return nil
}

// command is how to run the evaluation again: the flags as given.
func command(args []string) string {
	parts := []string{"go run ./cmd/eval"}
	for _, a := range args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:@+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// cpuModel is /proc/cpuinfo's first model name, else the architecture.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

func weightsLabel(cfg config) string {
	if cfg.weights == "" {
		return "embedded in the binary (package `weights`, the repository's `weights/`)"
	}
	return fmt.Sprintf("`%s`", cfg.weights)
}

func countOf(n, total int) string {
	if n == total {
		return "all " + thousands(n)
	}
	return "the first " + thousands(n)
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func joinFactors(fs []float64) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, fmt.Sprintf("%.1f", f))
	}
	if len(parts) < 2 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}
