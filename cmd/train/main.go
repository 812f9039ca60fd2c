// Command train trains one of aeserve's models on MNIST and writes its
// weights, manifest, loss curve and sample grid.
//
//	go run ./cmd/train --model conv --data ../shared/mnist --out weights
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/train"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		name     = flag.String("model", "conv", fmt.Sprintf("model to train, one of %v", train.Models))
		data     = flag.String("data", "mnist", "directory holding the MNIST IDX files")
		download = flag.Bool("download", false, "download MNIST into --data if it is missing (checked against built-in SHA-256 sums)")
		mirror   = flag.String("mirror", train.DefaultMirror, "MNIST mirror URL used by --download")
		out      = flag.String("out", "weights", "weights root directory; the model is written to OUT/MODEL")
		force    = flag.Bool("force", false, "replace OUT/MODEL if it exists (for the repository's weights/: the shipped weights)")
		epochs   = flag.Int("epochs", 0, "epochs (0: the preset's)")
		batch    = flag.Int("batch", 0, "batch size (0: the preset's)")
		lr       = flag.Float64("lr", 0, "Adam learning rate (0: the preset's)")
		noise    = flag.Float64("noise", -1, "input noise factor (-1: the preset's)")
		seed     = flag.Int64("seed", 0, "random seed (0: the preset's)")
		limit    = flag.Int("limit", 0, "train on only this many images (0: all)")
		contract = flag.Float64("contractive", -1, "weight of the contractive penalty (-1: the preset's)")
		spBeta   = flag.Float64("sparsity-beta", -1, "weight of the KL sparsity penalty (-1: the preset's)")
		spRho    = flag.Float64("sparsity-rho", -1, "target mean code activation of the KL sparsity penalty (-1: the preset's)")
		l1       = flag.Float64("l1", -1, "weight of the L1 activity penalty on the code (-1: the preset's)")
		kl       = flag.Float64("kl", -1, "weight β of a Gaussian code's KL to the prior N(0, I) (-1: the preset's)")
		level    = flag.String("log-level", "info", "log level")
	)
	flag.Parse()
	lvl, err := zerolog.ParseLevel(*level)
	if err != nil {
		return err
	}
	log := zerolog.New(os.Stderr).Level(lvl).With().Timestamp().Logger()
	cfg, err := train.Preset(*name)
	if err != nil {
		return err
	}
	if *epochs > 0 {
		cfg.Epochs = *epochs
	}
	if *batch > 0 {
		cfg.BatchSize = *batch
	}
	if *lr > 0 {
		cfg.LR = *lr
	}
	if *noise >= 0 {
		cfg.Noise = *noise
	}
	if *seed != 0 {
		cfg.Seed = *seed
	}
	for _, o := range []struct {
		v   float64
		dst *float64
	}{{*contract, &cfg.Objective.Contractive}, {*spBeta, &cfg.Objective.SparsityBeta},
		{*spRho, &cfg.Objective.SparsityRho}, {*l1, &cfg.Objective.L1}, {*kl, &cfg.Objective.KL}} {
		if o.v >= 0 {
			*o.dst = o.v
		}
	}
	cfg.Limit, cfg.DataDir, cfg.OutDir, cfg.Log, cfg.Force = *limit, *data, *out, log, *force

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *download {
		if err := train.Download(ctx, *mirror, *data, log); err != nil {
			return err
		}
	}
	res, err := train.Run(ctx, cfg)
	if err != nil {
		return err
	}
	switch met := res.Metrics; {
	case cfg.Arch.Task == model.TaskClassifier:
		fmt.Printf("%s: test accuracy %.2f%%, cross-entropy %.4f, fingerprint %s\n", cfg.Name, 100*met.Accuracy, met.CE, res.Model.Fingerprint)
	case cfg.Noise > 0:
		fmt.Printf("%s: test BCE %.4f, PSNR %.2f dB (noisy input %.2f dB), fingerprint %s\n", cfg.Name, met.BCE, met.PSNR, met.NoisyPSNR, res.Model.Fingerprint)
	default:
		fmt.Printf("%s: test BCE %.4f, PSNR %.2f dB, fingerprint %s\n", cfg.Name, met.BCE, met.PSNR, res.Model.Fingerprint)
	}
	return nil
}
