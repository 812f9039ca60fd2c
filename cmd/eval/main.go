// Command eval evaluates every model in a weights source on the MNIST test
// images, prints the main quality table (Markdown) and writes the
// evaluation report: docs/report/evaluation-report.md and its PNGs.
//
//	go run ./cmd/eval --data ../shared/mnist                  # embedded weights, report in docs/report
//	go run ./cmd/eval --data ../shared/mnist --weights weights
//	go run ./cmd/eval --data ../shared/mnist --limit 500 --report ""
//
// Every directory of the weights source holding a manifest.json is a model.
// Each is handled by its task: an autoencoder's reconstructions are scored
// on clean and on noisy digits (and, if its manifest says it was trained on
// noise, it is reported as a denoiser); a classifier scores clean, noisy and
// denoised digits. Models named X and X-unpenalised are twins: the same
// network trained with and without a penalty, compared on the penalty's
// figure (the sparsity of the code, or the norm of its Jacobian).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aeserve/aeserve/internal/model"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "eval:", err)
		os.Exit(1)
	}
}

// run parses args, evaluates, prints the tables to out and writes the
// report; progress goes to log.
func run(args []string, out, log io.Writer) error {
	fl := flag.NewFlagSet("eval", flag.ContinueOnError)
	fl.SetOutput(log)
	cfg := config{args: args}
	fl.StringVar(&cfg.data, "data", "mnist", "directory holding the MNIST IDX files")
	fl.StringVar(&cfg.weights, "weights", "", "weights directory, one subdirectory per model (default: the embedded weights)")
	models := fl.String("models", "", "comma-separated models to evaluate (default: every model in the weights)")
	int8 := fl.String("int8", "", `comma-separated models the int8 section runs at int8 beside float32 (default: every model evaluated with an int8 path; "none": no int8 section figures)`)
	fl.StringVar(&cfg.report, "report", "docs/report", `directory for evaluation-report.md and its PNGs ("": write no report)`)
	fl.IntVar(&cfg.limit, "limit", 0, "evaluate on only the first N test images (0: all 10,000)")
	fl.IntVar(&cfg.pcaTrain, "pca-train", 0, "fit PCA on only the first N training images (0: the 54,000 that training uses)")
	writeScores := fl.String("write-scores", "", "write each autoencoder's score distribution on the test digits (and a variational autoencoder's sample figures) into the manifests of this weights directory (e.g. weights)")
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "usage: eval [flags]\n\n%s\n\nflags:\n", strings.TrimSpace(usageText))
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	if cfg.limit < 0 || cfg.pcaTrain < 0 {
		return errors.New("--limit and --pca-train must not be negative")
	}
	if *models != "" {
		cfg.models = strings.Split(*models, ",")
	}
	if *int8 != "" {
		cfg.int8 = strings.Split(*int8, ",")
	}
	cfg.log = log
	start := time.Now()
	res, err := evaluateAll(cfg)
	if err != nil {
		return err
	}
	if err := writeTables(out, res); err != nil {
		return err
	}
	if *writeScores != "" {
		if cfg.limit > 0 {
			return errors.New("--write-scores needs every test image: drop --limit")
		}
		for _, a := range res.auto {
			err := model.UpdateManifest(*writeScores, a.m.Name, func(m *model.Manifest) {
				m.Metrics.Scores = a.scores
				if a.gen != nil && a.gen.samples != nil {
					m.Metrics.Samples = a.gen.samples
				}
			})
			if err != nil {
				return fmt.Errorf("--write-scores: %w", err)
			}
		}
		fmt.Fprintf(log, "eval: wrote the score distributions (and sample figures) into %s\n", *writeScores)
	}
	if cfg.report != "" {
		if err := writeReport(cfg.report, res); err != nil {
			return err
		}
		fmt.Fprintf(log, "eval: wrote %s\n", reportPath(cfg.report))
	}
	fmt.Fprintf(log, "eval: done in %s\n", time.Since(start).Round(time.Second))
	return nil
}

const usageText = `
Evaluates every model of the weights source (every directory holding a
manifest.json) on the MNIST test images: BCE, MSE, PSNR and SSIM of each
autoencoder on clean digits and on noisy ones (factors 0.3, 0.5 and 0.7),
PCA baselines with the dense codes' sizes fitted on the training split,
classification accuracy on clean, noisy and denoised digits, and the
sparsity and Jacobian figures of the penalised twins, and the models with
an int8 path at int8 beside float32 (quality, and images per second at
batch 64 and 1). Prints the main table
and writes evaluation-report.md with sample grids, filters, code-space
scatter plots and links to the loss curves.`
