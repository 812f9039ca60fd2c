package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/rs/zerolog"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/plot"
	"github.com/aeserve/aeserve/internal/quality"
)

// Config is one training run.
type Config struct {
	Name        string          // model name: the weights directory's subfolder
	Arch        *model.Arch     // the network
	Objective   model.Objective // penalties beyond the task's loss
	Description string          // one line for the manifest
	DataDir     string          // holds the MNIST IDX files
	OutDir      string          // weights root; the model goes to OutDir/Name
	Epochs      int             // passes over the training split
	BatchSize   int             // images per Adam step
	LR          float64         // Adam learning rate
	Noise       float64         // σ of the Gaussian input noise; 0 trains a plain autoencoder
	Seed        int64           // weights init, shuffling and noise
	ValImages   int             // held out from the end of the training file for validation
	Limit       int             // if > 0, use only this many training images (tests, smoke runs)
	TestLimit   int             // if > 0, evaluate on only this many test images
	LogEvery    int             // steps between progress lines
	// Force lets a run replace a model already in OutDir; without it a run
	// refuses, so that retraining never silently replaces shipped weights.
	Force bool
	Log   zerolog.Logger
}

// Defaults fills unset fields with the classic tutorial's settings.
func (c *Config) Defaults() {
	if c.Arch == nil {
		c.Arch = model.ArchConv
	}
	if c.Epochs == 0 {
		c.Epochs = 10
	}
	if c.BatchSize == 0 {
		c.BatchSize = 128
	}
	if c.LR == 0 {
		c.LR = 1e-3
	}
	if c.ValImages == 0 {
		c.ValImages = 6000
	}
	if c.LogEvery == 0 {
		c.LogEvery = 50
	}
}

// ErrExists is a run refused because its output directory already holds the model.
var ErrExists = errors.New("model exists")

// EvalNoiseSeed fixes the test-set noise so every evaluation of a denoiser
// scores the same noisy inputs.
const EvalNoiseSeed = 20261125

// Result is what a run produced.
type Result struct {
	Model     *model.Model
	TrainLoss []float64
	ValLoss   []float64
	Metrics   model.Metrics
}

// Run trains a model and keeps the weights of the epoch with the lowest
// validation loss (checkpointed as each new best is found), then evaluates
// them on the test set and writes the manifest with the metrics, a loss
// curve (loss.png) and, for an autoencoder, a sample grid (samples.png)
// beside the weights.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.Defaults()
	arch := cfg.Arch
	log := cfg.Log.With().Str("model", cfg.Name).Logger()
	if existing := filepath.Join(cfg.OutDir, cfg.Name, "manifest.json"); !cfg.Force {
		if _, err := os.Stat(existing); err == nil {
			return nil, fmt.Errorf("%w: %s holds model %s already; pass --force to replace it, or --out another directory",
				ErrExists, filepath.Join(cfg.OutDir, cfg.Name), cfg.Name)
		}
	}
	all, err := Load(cfg.DataDir, "train")
	if err != nil {
		return nil, err
	}
	if cfg.ValImages >= all.N {
		return nil, fmt.Errorf("train: %d validation images leave none to train on (%d in all)", cfg.ValImages, all.N)
	}
	trainN := all.N - cfg.ValImages
	val := &Set{Images: all.Images[trainN*model.ImageLen:], Labels: all.Labels[trainN:], N: cfg.ValImages}
	if cfg.Limit > 0 && cfg.Limit < trainN {
		trainN = cfg.Limit
	}
	if trainN < cfg.BatchSize {
		return nil, fmt.Errorf("train: %d training images, fewer than one batch of %d", trainN, cfg.BatchSize)
	}
	test, err := Load(cfg.DataDir, "t10k")
	if err != nil {
		return nil, err
	}
	if cfg.TestLimit > 0 && cfg.TestLimit < test.N {
		test = &Set{Images: test.Images[:cfg.TestLimit*model.ImageLen], Labels: test.Labels[:cfg.TestLimit], N: cfg.TestLimit}
	}

	params := arch.InitParams(cfg.Seed)
	tg, err := model.NewTrainGraph(arch, params, cfg.BatchSize, cfg.Objective)
	if err != nil {
		return nil, err
	}
	// A Gaussian code's ε: a stream of its own, from the run's seed.
	tg.SeedNoise(cfg.Seed + 1)
	vm := G.NewTapeMachine(tg.G, G.BindDualValues(tg.Learnables...))
	defer vm.Close()
	solver := NewAdam(cfg.LR)
	learnables := G.NodesToValueGrads(tg.Learnables)

	rng := rand.New(rand.NewSource(cfg.Seed))
	bs := cfg.BatchSize
	classify := arch.Task == model.TaskClassifier
	xT := tensor.New(tensor.WithShape(tg.X.Shape()...), tensor.Of(tensor.Float32))
	tT := tensor.New(tensor.WithShape(tg.T.Shape()...), tensor.Of(tensor.Float32))
	xs, ts := xT.Data().([]float32), tT.Data().([]float32)
	classes := arch.Classes()
	steps := trainN / bs // the remainder of each shuffled epoch is skipped: fixed graph shape

	man := model.Manifest{
		Name:         cfg.Name,
		Architecture: arch.Name,
		Description:  cfg.Description,
		Training: model.Training{
			Data:         "MNIST training file: first images for training, last for validation",
			TrainImages:  trainN,
			ValImages:    cfg.ValImages,
			BatchSize:    bs,
			LearningRate: cfg.LR,
			Optimizer:    "adam (β1 0.9, β2 0.999, ε 1e-8)",
			Loss:         cfg.Objective.Describe(arch.Task),
			NoiseFactor:  cfg.Noise,
			Seed:         cfg.Seed,
			Threads:      runtime.GOMAXPROCS(0),
			SGEMM:        model.SGEMMBackend,
			GoVersion:    runtime.Version(),
		},
	}
	res := &Result{}
	log.Info().Str("architecture", arch.Name).Str("loss", man.Training.Loss).Int("train_images", trainN).
		Int("validation_images", cfg.ValImages).Int("epochs", cfg.Epochs).
		Int("batch_size", bs).Float64("lr", cfg.LR).Float64("noise", cfg.Noise).Int64("seed", cfg.Seed).Msg("training started")
	start := time.Now()
	perm := make([]int, trainN)
	var best model.Params
	bestLoss := math.Inf(1)
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		for i := range perm {
			perm[i] = i
		}
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		var sum float64
		epochStart := time.Now()
		for step := 0; step < steps; step++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			for k := 0; k < bs; k++ {
				copy(xs[k*model.ImageLen:(k+1)*model.ImageLen], all.Image(perm[step*bs+k]))
			}
			switch {
			case classify:
				clear(ts)
				for k := 0; k < bs; k++ {
					ts[k*classes+int(all.Labels[perm[step*bs+k]])] = 1
				}
			case cfg.Noise > 0:
				copy(ts, xs)
				AddNoise(xs, ts, cfg.Noise, rng)
			default:
				copy(ts, xs)
			}
			if err := G.Let(tg.X, xT); err != nil {
				return nil, err
			}
			if err := G.Let(tg.T, tT); err != nil {
				return nil, err
			}
			if err := vm.RunAll(); err != nil {
				return nil, fmt.Errorf("train: step %d: %w", step, err)
			}
			loss := float64(*tg.Loss.Value().(*G.F32))
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return nil, fmt.Errorf("train: epoch %d step %d: loss is %v", epoch, step, loss)
			}
			sum += loss
			if err := solver.Step(learnables); err != nil {
				return nil, fmt.Errorf("train: adam: %w", err)
			}
			vm.Reset()
			if done := step + 1; done%cfg.LogEvery == 0 || done == steps {
				el := time.Since(start).Seconds()
				total := float64((epoch-1)*steps + done)
				rate := total * float64(bs) / el
				eta := time.Duration(float64(cfg.Epochs*steps)-total) * time.Duration(float64(bs)/rate*float64(time.Second))
				log.Info().Int("epoch", epoch).Int("step", done).Int("steps", steps).Float64("loss", sum/float64(done)).
					Float64("images_per_sec", math.Round(rate)).Str("eta", eta.Round(time.Second).String()).Msg("progress")
			}
		}
		trainLoss := sum / float64(steps)
		m, err := model.FromParams(cfg.Name, man, params)
		if err != nil {
			return nil, err
		}
		vmet, err := evaluate(m, val, cfg.Noise, EvalNoiseSeed+1, nil)
		if err != nil {
			return nil, err
		}
		valLoss := vmet.BCE
		ev := log.Info().Int("epoch", epoch).Float64("train_loss", trainLoss)
		switch {
		case classify:
			valLoss = vmet.CE
			ev = ev.Float64("val_accuracy", vmet.Accuracy)
		case arch.Gaussian:
			// What the objective estimates: the negative ELBO, per pixel
			// as the training loss is.
			valLoss = vmet.NegELBO / model.ImageLen
			ev = ev.Float64("val_psnr_db", vmet.PSNR).Float64("val_neg_elbo_nats", vmet.NegELBO)
		default:
			ev = ev.Float64("val_psnr_db", vmet.PSNR)
		}
		res.TrainLoss = append(res.TrainLoss, trainLoss)
		res.ValLoss = append(res.ValLoss, valLoss)
		improved := valLoss < bestLoss
		ev.Float64("val_loss", valLoss).Bool("best", improved).Str("took", time.Since(epochStart).Round(time.Second).String()).Msg("epoch done")

		man.Training.Epochs = epoch
		man.Training.TrainLoss = res.TrainLoss
		man.Training.ValLoss = res.ValLoss
		el := time.Since(start).Seconds()
		man.Training.Seconds = math.Round(el)
		man.Training.ImagesPerSec = math.Round(float64(epoch*steps*bs) / el)
		if improved {
			// Select on validation data, never the test set: the weights kept
			// (and checkpointed) are those of the best epoch so far.
			bestLoss, best = valLoss, params.Clone()
			man.Training.SelectedEpoch = epoch
		}
		if _, err := model.Save(cfg.OutDir, man, best); err != nil {
			return nil, fmt.Errorf("train: checkpoint: %w", err)
		}
	}

	m, err := model.FromParams(cfg.Name, man, best)
	if err != nil {
		return nil, err
	}
	grid := &gridRows{}
	met, err := evaluate(m, test, cfg.Noise, EvalNoiseSeed, grid)
	if err != nil {
		return nil, err
	}
	if !classify {
		if met.Scores, err = ScoreDistribution(m, test); err != nil {
			return nil, err
		}
	}
	man.Metrics = met
	man.Training.FinishedAtUTC = time.Now().UTC().Format(time.RFC3339)
	saved, err := model.Save(cfg.OutDir, man, best)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.OutDir, cfg.Name)
	if err := writePNG(filepath.Join(dir, "loss.png"), func(f *os.File) error { return plot.LossCurve(f, res.TrainLoss, res.ValLoss) }); err != nil {
		return nil, err
	}
	if !classify {
		if err := writePNG(filepath.Join(dir, "samples.png"), func(f *os.File) error { return plot.SampleGrid(f, grid.rows()) }); err != nil {
			return nil, err
		}
	}
	ev := log.Info()
	if classify {
		ev = ev.Float64("test_accuracy", met.Accuracy).Float64("test_cross_entropy", met.CE)
	} else {
		ev = ev.Float64("test_bce", met.BCE).Float64("test_psnr_db", met.PSNR)
		if arch.Gaussian {
			ev = ev.Float64("test_neg_elbo_nats", met.NegELBO).Float64("test_kl_nats", met.KL)
		}
		if cfg.Noise > 0 {
			ev = ev.Float64("noisy_psnr_db", met.NoisyPSNR)
		}
	}
	ev.Int("selected_epoch", man.Training.SelectedEpoch).Str("fingerprint", saved.Fingerprint.String()).
		Str("took", time.Since(start).Round(time.Second).String()).Msg("training finished")
	res.Model, res.Metrics = saved, met
	return res, nil
}

func writePNG(name string, draw func(*os.File) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := draw(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return f.Close()
}

// gridRows collects the first images of an evaluation for the sample grid.
type gridRows struct {
	orig, noisy, out []float32
}

const gridImages = 10

func (g *gridRows) rows() [][]float32 {
	if g.noisy == nil {
		return [][]float32{g.orig, g.out}
	}
	return [][]float32{g.orig, g.noisy, g.out}
}

// Evaluate scores m on a labelled set: an autoencoder's reconstruction
// (mean per-pixel BCE, MSE and PSNR of its output against the clean image;
// for a Gaussian code, of the mean's decoding, and the negative ELBO), a
// classifier's accuracy and mean cross-entropy. With noise > 0 an
// autoencoder's inputs are corrupted with clip(x + noise·N(0,1), 0, 1) from
// a fixed seed, and NoisyPSNR scores the corrupted inputs themselves.
func Evaluate(m *model.Model, set *Set, noise float64) (model.Metrics, error) {
	return evaluate(m, set, noise, EvalNoiseSeed, nil)
}

func evaluate(m *model.Model, set *Set, noise float64, seed int64, grid *gridRows) (model.Metrics, error) {
	n := set.N
	if n == 0 || len(set.Images) != n*model.ImageLen {
		return model.Metrics{}, errors.New("evaluate: no images")
	}
	if m.Arch.Task == model.TaskClassifier {
		return evaluateClassifier(m, set)
	}
	images := set.Images
	r, err := m.NewRunner(model.Full)
	if err != nil {
		return model.Metrics{}, err
	}
	defer r.Close()
	rng := rand.New(rand.NewSource(seed))
	const chunk = 256
	in := make([]float32, chunk*model.ImageLen)
	var bce, se, noisySE float64
	for lo := 0; lo < n; lo += chunk {
		k := min(chunk, n-lo)
		clean := images[lo*model.ImageLen : (lo+k)*model.ImageLen]
		x := in[:k*model.ImageLen]
		if noise > 0 {
			AddNoise(x, clean, noise, rng)
		} else {
			copy(x, clean)
		}
		out, err := r.Run(x, k)
		if err != nil {
			return model.Metrics{}, err
		}
		for i, t := range clean {
			y := math.Min(math.Max(float64(out[i]), 1e-7), 1-1e-7)
			tv := float64(t)
			bce -= tv*math.Log(y) + (1-tv)*math.Log(1-y)
			d := float64(out[i]) - tv
			se += d * d
			if noise > 0 {
				dn := float64(x[i]) - tv
				noisySE += dn * dn
			}
		}
		if grid != nil && lo == 0 {
			g := min(gridImages, k)
			grid.orig = append([]float32(nil), clean[:g*model.ImageLen]...)
			grid.out = append([]float32(nil), out[:g*model.ImageLen]...)
			if noise > 0 {
				grid.noisy = append([]float32(nil), x[:g*model.ImageLen]...)
			}
		}
	}
	px := float64(n * model.ImageLen)
	met := model.Metrics{TestImages: n, BCE: bce / px, MSE: se / px, PSNR: psnr(se / px)}
	if noise > 0 {
		met.NoisyPSNR = psnr(noisySE / px)
		met.NoiseFactor = noise
		met.NoiseSeed = seed
	}
	if m.Arch.Gaussian {
		var err error
		if met.NegELBO, met.KL, err = ELBO(m, set, seed); err != nil {
			return model.Metrics{}, err
		}
		met.ELBOSeed = seed
	}
	return met, nil
}

// ScoreDistribution runs an autoencoder's full model on a set's clean
// images and returns the distribution of their reconstruction errors.
func ScoreDistribution(m *model.Model, set *Set) (*model.ScoreDistribution, error) {
	r, err := m.NewRunner(model.Full)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out, err := r.Run(set.Images, set.N)
	if err != nil {
		return nil, err
	}
	scores := quality.Scores(set.Images, out, set.N, model.ImageLen)
	mse, bce := make([]float64, len(scores)), make([]float64, len(scores))
	for i, s := range scores {
		mse[i], bce[i] = s.MSE, s.BCE
	}
	return &model.ScoreDistribution{Images: set.N, MSE: quality.PercentilesOf(mse), BCE: quality.PercentilesOf(bce)}, nil
}

// evaluateClassifier scores a classifier's accuracy and mean cross-entropy.
func evaluateClassifier(m *model.Model, set *Set) (model.Metrics, error) {
	probs, err := Classify(m, set.Images, set.N)
	if err != nil {
		return model.Metrics{}, err
	}
	k := m.Arch.Classes()
	var correct int
	var ce float64
	for i := 0; i < set.N; i++ {
		p := probs[i*k : (i+1)*k]
		if argmax(p) == int(set.Labels[i]) {
			correct++
		}
		ce -= math.Log(math.Max(float64(p[set.Labels[i]]), 1e-12))
	}
	return model.Metrics{TestImages: set.N, Accuracy: float64(correct) / float64(set.N), CE: ce / float64(set.N)}, nil
}

// Classify runs a classifier over n images and returns their class
// probabilities, n × classes.
func Classify(m *model.Model, images []float32, n int) ([]float32, error) {
	r, err := m.NewRunner(model.Classifier)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Run(images, n)
}

func argmax(p []float32) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}

// psnr for pixels in [0,1]: 10·log10(1/MSE).
func psnr(mse float64) float64 {
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(1/mse)
}
