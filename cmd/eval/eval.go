package main

import (
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"gorgonia.org/tensor"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/evaluate"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/plot"
	"github.com/aeserve/aeserve/internal/quality"
	"github.com/aeserve/aeserve/internal/train"
	"github.com/aeserve/aeserve/weights"
)

// What the report measures, beyond the flags.
var (
	// noiseFactors are the denoising table's columns; a denoiser trained
	// at another factor adds its own.
	noiseFactors = []float64{0.3, 0.5, 0.7}
)

const (
	classifyNoise = 0.5  // the noisy and denoised digits the classifier sees
	viewDigits    = 2000 // test digits in each code-space scatter plot
	gridDigits    = 10   // test digits in each sample grid
	unpenalised   = "-unpenalised"
)

type config struct {
	args            []string // as given, for the report's header
	data, weights   string
	report          string
	models          []string // nil: every model found
	int8            []string // --int8: nil is every model with an int8 path, ["none"] none
	limit, pcaTrain int
	log             io.Writer
	// factors replaces noiseFactors, for tests; the classifier's and the
	// denoisers' factors are always added.
	factors []float64
}

// draw reports whether the pictures are wanted (their inputs cost time).
func (c config) draw() bool { return c.report != "" }

// results is everything the tables and the report show.
type results struct {
	cfg       config
	fsys      fs.FS
	test      *train.Set
	pcaTrainN int // training images the PCA baselines were fitted on
	factors   []float64
	input     map[float64]evaluate.Scores // the noisy digits themselves
	auto      []*autoResult               // autoencoders, in presentation order
	pca       []*pcaResult                // by k
	cls       *classResult                // the classifier, or nil
	others    []*model.Model              // further classifiers, not used
	sparse    [][]*autoResult             // twin groups: penalised first
	jacobian  [][]*autoResult
	trans     *transmission // nil without the compact or conv model
	int8      *int8Result   // nil when no model is evaluated at int8
}

type autoResult struct {
	m                  *model.Model
	noise              float64 // training noise factor: > 0 is a denoiser
	codeNumbers        int
	codeBytes          int
	clean              evaluate.Scores
	noisy              map[float64]evaluate.Scores
	accClean, accNoisy float64 // the classifier on the outputs (NaN: none)
	grid               [][]float32
	view               *codeView
	viewNote           string // why there is no view
	filters            *filters
	sparsity           *evaluate.Sparsity
	jac                *evaluate.Jacobian
	jacNote            string                   // why there is no Jacobian figure
	scores             *model.ScoreDistribution // on the clean test digits
	auc                map[string][2]float64    // ROC AUC (MSE, BCE) of digits against each non-digit kind, and "all"
	gen                *genResult               // a Gaussian code's figures and pictures, or nil
}

// Anomaly scores: how many non-digits of each kind, and their seed.
const (
	nonDigitsPerKind = 1000
	nonDigitsSeed    = 20261201
)

type pcaResult struct {
	k                  int
	codeBytes          int
	clean              evaluate.Scores
	noisy              map[float64]evaluate.Scores
	accClean, accNoisy float64
}

type classResult struct {
	m                *model.Model
	clean, noisy     float64
	filters          *filters
	runner           *model.Runner
	classes          int
	labels           []uint8
	manifestAccuracy float64
}

type codeView struct {
	x, y      []float64
	labels    []uint8
	explained [2]float64
}

// filters are a model's first-layer weights as images.
type filters struct {
	what       string // for the caption
	tiles      []float32
	n, tw, th  int
	cols, zoom int
	gap        int
}

func (c *classResult) accuracy(images []float32) (float64, error) {
	probs, err := c.runner.Run(images, len(c.labels))
	if err != nil {
		return 0, err
	}
	return evaluate.Accuracy(probs, c.labels, c.classes), nil
}

// logf reports progress.
func (c config) logf(format string, args ...any) {
	fmt.Fprintf(c.log, "eval: "+format+"\n", args...)
}

func evaluateAll(cfg config) (*results, error) {
	var fsys fs.FS = weights.FS
	if cfg.weights != "" {
		fsys = os.DirFS(cfg.weights)
	}
	names := cfg.models
	if names == nil {
		var err error
		if names, err = discover(fsys); err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("no models (no directory with a manifest.json) in %s", sourceName(cfg))
		}
	}
	res := &results{cfg: cfg, fsys: fsys, input: map[float64]evaluate.Scores{}}
	var all []*model.Model
	for _, name := range presentationOrder(names) {
		m, err := model.LoadFS(fsys, name)
		if err != nil {
			return nil, err
		}
		all = append(all, m)
	}

	test, err := train.Load(cfg.data, "t10k")
	if err != nil {
		return nil, err
	}
	if cfg.limit > 0 && cfg.limit < test.N {
		test = &train.Set{Images: test.Images[:cfg.limit*model.ImageLen], Labels: test.Labels[:cfg.limit], N: cfg.limit}
	}
	res.test = test
	n := test.N

	// The noisy digits: one draw per pixel from the evaluation seed, the
	// same for every model, scaled by each factor.
	factors := slices.Clone(noiseFactors)
	if cfg.factors != nil {
		factors = slices.Clone(cfg.factors)
	}
	if !slices.Contains(factors, classifyNoise) {
		factors = append(factors, classifyNoise)
	}
	for _, m := range all {
		if f := m.Manifest.Training.NoiseFactor; f > 0 && m.Arch.Task == model.TaskAutoencoder && !slices.Contains(factors, f) {
			factors = append(factors, f)
		}
	}
	slices.Sort(factors)
	res.factors = factors
	noisy := map[float64][]float32{}
	for _, f := range factors {
		noisy[f] = evaluate.Noisy(test.Images, f, train.EvalNoiseSeed)
		res.input[f] = evaluate.Score(noisy[f], test.Images, n)
	}

	// The classifier first, so that every autoencoder's outputs can be
	// classified as they are made.
	for _, m := range all {
		if m.Arch.Task != model.TaskClassifier {
			continue
		}
		if res.cls != nil {
			res.others = append(res.others, m)
			continue
		}
		t0 := time.Now()
		r, err := m.NewRunner(model.Classifier)
		if err != nil {
			return nil, err
		}
		c := &classResult{m: m, runner: r, classes: m.Arch.Classes(), labels: test.Labels, manifestAccuracy: m.Manifest.Metrics.Accuracy}
		if c.clean, err = c.accuracy(test.Images); err != nil {
			return nil, err
		}
		if c.noisy, err = c.accuracy(noisy[classifyNoise]); err != nil {
			return nil, err
		}
		if cfg.draw() {
			c.filters = firstLayer(m)
		}
		res.cls = c
		cfg.logf("%s: accuracy %.4f clean, %.4f noisy (%s)", m.Name, c.clean, c.noisy, time.Since(t0).Round(time.Millisecond))
	}
	defer func() {
		if res.cls != nil {
			res.cls.runner.Close()
		}
	}()

	kinds := twinKinds(all)
	for _, m := range all {
		if m.Arch.Task != model.TaskAutoencoder {
			continue
		}
		a, err := evaluateAuto(cfg, m, test, noisy, res.cls, kinds[m.Name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		res.auto = append(res.auto, a)
	}
	res.sparse, res.jacobian = twinGroups(res.auto, kinds)

	if err := evaluatePCA(res, noisy); err != nil {
		return nil, err
	}
	if res.trans, err = evaluateTransmission(cfg, res, all); err != nil {
		return nil, fmt.Errorf("transmission: %w", err)
	}
	if res.int8, err = evaluateInt8(cfg, res, all, noisy[classifyNoise]); err != nil {
		return nil, fmt.Errorf("int8: %w", err)
	}
	return res, nil
}

// discover lists the models of a weights source: its directories holding a
// manifest.json, sorted.
func discover(fsys fs.FS) ([]string, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		// Not e.IsDir(): a symbolic link to a model's directory counts.
		if _, err := fs.Stat(fsys, path.Join(e.Name(), "manifest.json")); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// shownFirst is the order in which the report shows the models it knows,
// families together; other models follow by name.
var shownFirst = []string{"conv", "denoise", "dense", "deep", "sparse", "sparse-unpenalised",
	"contractive", "contractive-unpenalised", "vae", "vae2", "classifier"}

func presentationOrder(names []string) []string {
	rank := func(n string) int {
		if i := slices.Index(shownFirst, n); i >= 0 {
			return i
		}
		return len(shownFirst)
	}
	out := slices.Clone(names)
	slices.SortStableFunc(out, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	return out
}

func sourceName(cfg config) string {
	if cfg.weights == "" {
		return "the embedded weights"
	}
	return cfg.weights
}

// What a twin group compares.
type twinKind int

const (
	noTwin twinKind = iota
	sparsityTwin
	jacobianTwin
)

// twinKinds finds the penalised models and their unpenalised twins: a
// model whose objective has a KL sparsity term (or, failing a recognisable
// objective, whose name starts with "sparse") is compared on sparsity, one
// with a Jacobian penalty (or named "contractive…") on its Jacobian; a
// model named X-unpenalised is compared with X.
func twinKinds(all []*model.Model) map[string]twinKind {
	kinds := map[string]twinKind{}
	for _, m := range all {
		if m.Arch.Task != model.TaskAutoencoder || strings.HasSuffix(m.Name, unpenalised) {
			continue
		}
		loss := m.Manifest.Training.Loss
		var k twinKind
		switch {
		case strings.Contains(loss, "KL("):
			k = sparsityTwin
		case strings.Contains(loss, "‖J‖"):
			k = jacobianTwin
		case strings.HasPrefix(m.Name, "sparse"):
			k = sparsityTwin
		case strings.HasPrefix(m.Name, "contractive"):
			k = jacobianTwin
		default:
			continue
		}
		kinds[m.Name] = k
		kinds[m.Name+unpenalised] = k
	}
	return kinds
}

// twinGroups returns the sparsity and Jacobian groups, each the penalised
// model then its twin if present.
func twinGroups(auto []*autoResult, kinds map[string]twinKind) (sparse, jac [][]*autoResult) {
	byName := map[string]*autoResult{}
	for _, a := range auto {
		byName[a.m.Name] = a
	}
	for _, a := range auto {
		k := kinds[a.m.Name]
		if k == noTwin || strings.HasSuffix(a.m.Name, unpenalised) {
			continue
		}
		g := []*autoResult{a}
		if t, ok := byName[a.m.Name+unpenalised]; ok {
			g = append(g, t)
		}
		if k == sparsityTwin {
			sparse = append(sparse, g)
		} else {
			jac = append(jac, g)
		}
	}
	return sparse, jac
}

func evaluateAuto(cfg config, m *model.Model, test *train.Set, noisy map[float64][]float32, cls *classResult, kind twinKind) (*autoResult, error) {
	t0 := time.Now()
	n := test.N
	latent := m.Arch.LatentShape()
	a := &autoResult{
		m:           m,
		noise:       m.Manifest.Training.NoiseFactor,
		codeNumbers: prod(latent),
		codeBytes:   api.BinarySize(append([]int{1}, latent...), api.DTypeFloat32),
		noisy:       map[float64]evaluate.Scores{},
		accClean:    math.NaN(),
		accNoisy:    math.NaN(),
	}
	full, err := m.NewRunner(model.Full)
	if err != nil {
		return nil, err
	}
	defer full.Close()
	g := min(gridDigits, n)
	out, err := full.Run(test.Images, n)
	if err != nil {
		return nil, err
	}
	a.clean = evaluate.Score(out, test.Images, n)
	if err := a.anomaly(full, test.Images, out, n); err != nil {
		return nil, err
	}
	if cls != nil {
		if a.accClean, err = cls.accuracy(out); err != nil {
			return nil, err
		}
	}
	if a.noise == 0 {
		a.grid = [][]float32{test.Images[:g*model.ImageLen], out[:g*model.ImageLen]}
	}
	for f, in := range sortedNoise(noisy) {
		out, err := full.Run(in, n)
		if err != nil {
			return nil, err
		}
		a.noisy[f] = evaluate.Score(out, test.Images, n)
		if cls != nil && f == classifyNoise {
			if a.accNoisy, err = cls.accuracy(out); err != nil {
				return nil, err
			}
		}
		if f == a.noise {
			a.grid = [][]float32{test.Images[:g*model.ImageLen], in[:g*model.ImageLen], out[:g*model.ImageLen]}
		}
	}

	// Codes: of every test digit for the twins' figures, else only those
	// the scatter plot shows.
	codesN := 0
	if kind != noTwin {
		codesN = n
	}
	if cfg.draw() {
		codesN = max(codesN, min(n, viewDigits))
	}
	var codes []float32
	if codesN > 0 {
		enc, err := m.NewRunner(model.Encoder)
		if err != nil {
			return nil, err
		}
		codes, err = enc.Run(test.Images[:codesN*model.ImageLen], codesN)
		enc.Close()
		if err != nil {
			return nil, err
		}
	}
	k := a.codeNumbers
	switch kind {
	case sparsityTwin:
		s := evaluate.SparsityOf(codes, n, k)
		a.sparsity = &s
	case jacobianTwin:
		w, note := sigmoidCodeLayer(m, test.Images, codes, min(n, 64))
		if w != nil {
			j := evaluate.JacobianOf(codes, n, k, w)
			a.jac = &j
		}
		a.jacNote = note
	}
	if cfg.draw() {
		// A view that cannot be had (too few digits, codes that are not
		// finite) is noted in the report rather than failing it.
		vn := min(n, viewDigits)
		if x, y, ex, err := evaluate.CodeView(codes[:vn*k], vn, k); err != nil {
			a.viewNote = err.Error()
		} else {
			a.view = &codeView{x: x, y: y, labels: test.Labels[:vn], explained: ex}
		}
		a.filters = firstLayer(m)
	}
	if m.Arch.Generative() {
		if a.gen, err = evaluateGenerative(cfg, m, test, cls); err != nil {
			return nil, err
		}
		cfg.logf("%s: negative ELBO %.2f nats (KL %.2f)", m.Name, a.gen.elbo, a.gen.kl)
	}
	cfg.logf("%s: PSNR %.2f dB clean, SSIM %.4f (%s)", m.Name, a.clean.PSNR, a.clean.SSIM, time.Since(t0).Round(time.Millisecond))
	return a, nil
}

// sortedNoise yields the noisy sets in order of factor.
func sortedNoise(noisy map[float64][]float32) func(func(float64, []float32) bool) {
	return func(yield func(float64, []float32) bool) {
		fs := make([]float64, 0, len(noisy))
		for f := range noisy {
			fs = append(fs, f)
		}
		slices.Sort(fs)
		for _, f := range fs {
			if !yield(f, noisy[f]) {
				return
			}
		}
	}
}

// sigmoidCodeLayer returns the weights W [k, 784] of m's code layer if its
// encoder is one dense sigmoid layer, encoder.fc1, as the closed form of
// the Jacobian needs: the encoder must hold that layer only, and computing
// σ(Wx + b) for the first n test digits must give the encoder's codes.
// Otherwise it returns nil and why.
func sigmoidCodeLayer(m *model.Model, images, codes []float32, n int) ([]float32, string) {
	specs, err := m.Arch.Specs(model.Encoder)
	if err != nil || len(specs) != 2 || specs[0].Name != "encoder.fc1.weight" || specs[1].Name != "encoder.fc1.bias" {
		return nil, "its encoder is not the single dense layer encoder.fc1"
	}
	w, b := data(m, specs[0].Name), data(m, specs[1].Name)
	k := len(b)
	if k == 0 || len(w) != k*model.ImageLen || len(codes) < n*k {
		return nil, "its code layer's weights do not have the shape [code, 784]"
	}
	h := evaluate.SigmoidLayer(images, n, w, b)
	for i, v := range h {
		if math.Abs(float64(v-codes[i])) > 1e-4 {
			return nil, "its code is not σ(Wx + b) of encoder.fc1 (not a sigmoid layer)"
		}
	}
	return w, ""
}

// data returns a loaded tensor's values.
func data(m *model.Model, name string) []float32 {
	t, ok := m.Params()[name]
	if !ok {
		return nil
	}
	v, _ := t.Data().([]float32)
	return v
}

func shape(m *model.Model, name string) tensor.Shape {
	if t, ok := m.Params()[name]; ok {
		return t.Shape()
	}
	return nil
}

// firstLayer returns m's first stored layer's weights as images where they
// make sense: a convolution on one input channel as its kernels, a dense
// layer on the 784 pixels as its rows, each normalised on its own.
func firstLayer(m *model.Model) *filters {
	specs, err := m.Arch.Specs(m.Arch.Stored()[0])
	if err != nil || len(specs) == 0 {
		return nil
	}
	name := specs[0].Name
	layer := strings.TrimSuffix(name, ".weight")
	w, s := data(m, name), shape(m, name)
	f := &filters{}
	switch {
	case len(s) == 4 && s[1] == 1:
		f.n, f.th, f.tw = s[0], s[2], s[3]
		f.cols, f.zoom, f.gap = 8, 12, 6
		f.what = fmt.Sprintf("the %d %d×%d kernels of its first convolution, `%s`", f.n, f.th, f.tw, layer)
	case len(s) == 2 && s[1] == model.ImageLen:
		f.n, f.th, f.tw = s[0], model.ImageSide, model.ImageSide
		f.cols, f.zoom, f.gap = 16, 1, 2
		if f.n <= 64 {
			f.cols, f.zoom = 8, 2
		}
		f.what = fmt.Sprintf("the %d rows of its first encoder layer, `%s`, each the 28×28 image of the weights from the pixels to one unit", f.n, layer)
	default:
		return nil
	}
	tiles, err := plot.Normalise(w, f.n)
	if err != nil {
		return nil
	}
	f.tiles = tiles
	return f
}

func prod(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}

// evaluatePCA fits one PCA on the training images with as many components
// as the largest dense code, and scores the reconstructions from the first
// k components for every dense code size k.
func evaluatePCA(res *results, noisy map[float64][]float32) error {
	var ks []int
	for _, a := range res.auto {
		if l := a.m.Arch.LatentShape(); len(l) == 1 && l[0] <= model.ImageLen && !slices.Contains(ks, l[0]) {
			ks = append(ks, l[0])
		}
	}
	if len(ks) == 0 {
		return nil
	}
	slices.Sort(ks)
	t0 := time.Now()
	all, err := train.Load(res.cfg.data, "train")
	if err != nil {
		return err
	}
	defaults := train.Config{}
	defaults.Defaults()
	nTrain := all.N - defaults.ValImages // the images training uses
	if nTrain < 2 {
		// A training file smaller than the validation split (the subset a
		// fresh clone's tests use): fit on all of it; the report says how many.
		nTrain = all.N
	}
	if p := res.cfg.pcaTrain; p > 0 && p < nTrain {
		nTrain = p
	}
	res.pcaTrainN = nTrain
	p, err := quality.FitPCA(all.Images, nTrain, model.ImageLen, ks[len(ks)-1])
	if err != nil {
		return err
	}
	res.cfg.logf("PCA: fitted %d components on %d training images (%s)", ks[len(ks)-1], nTrain, time.Since(t0).Round(time.Millisecond))
	test := res.test
	n := test.N
	for _, k := range ks {
		res.pca = append(res.pca, &pcaResult{k: k, codeBytes: api.BinarySize([]int{1, k}, api.DTypeFloat32),
			noisy: map[float64]evaluate.Scores{}, accClean: math.NaN(), accNoisy: math.NaN()})
	}
	outs := evaluate.PCAReconstruct(p, ks, test.Images, n)
	for i, r := range res.pca {
		r.clean = evaluate.Score(outs[i], test.Images, n)
		if res.cls != nil {
			if r.accClean, err = res.cls.accuracy(outs[i]); err != nil {
				return err
			}
		}
	}
	for f, in := range sortedNoise(noisy) {
		outs := evaluate.PCAReconstruct(p, ks, in, n)
		for i, r := range res.pca {
			r.noisy[f] = evaluate.Score(outs[i], test.Images, n)
			if res.cls != nil && f == classifyNoise {
				if r.accNoisy, err = res.cls.accuracy(outs[i]); err != nil {
					return err
				}
			}
		}
	}
	res.cfg.logf("PCA: %v scored (%s)", ks, time.Since(t0).Round(time.Millisecond))
	return nil
}

// anomaly scores every clean test digit's reconstruction error (its
// distribution goes in the manifest with --write-scores) and tells digits
// from drawn non-digits by it: the ROC AUC of each score, per kind.
func (a *autoResult) anomaly(full *model.Runner, images, out []float32, n int) error {
	digits := quality.Scores(images, out, n, model.ImageLen)
	mse, bce := make([]float64, n), make([]float64, n)
	for i, s := range digits {
		mse[i], bce[i] = s.MSE, s.BCE
	}
	others, kinds := evaluate.NonDigits(nonDigitsPerKind, nonDigitsSeed)
	no := len(kinds)
	oout, err := full.Run(others, no)
	if err != nil {
		return err
	}
	byKind := map[string][2][]float64{}
	for i, s := range quality.Scores(others, oout, no, model.ImageLen) {
		for _, k := range []string{kinds[i], "all"} {
			v := byKind[k]
			v[0], v[1] = append(v[0], s.MSE), append(v[1], s.BCE)
			byKind[k] = v
		}
	}
	a.auc = map[string][2]float64{}
	for k, v := range byKind {
		a.auc[k] = [2]float64{quality.ROCAUC(mse, v[0]), quality.ROCAUC(bce, v[1])}
	}
	a.scores = &model.ScoreDistribution{Images: n, MSE: quality.PercentilesOf(mse), BCE: quality.PercentilesOf(bce)}
	return nil
}
