// Command eval measures the served models on the 10,000 MNIST test images
// and prints the quality table README shows.
//
//	go run ./cmd/eval --data ../shared/mnist            # embedded weights
//	go run ./cmd/eval --data ../shared/mnist --weights weights
package main

import (
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/train"
	"github.com/aeserve/aeserve/weights"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "eval:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fl := flag.NewFlagSet("eval", flag.ContinueOnError)
	data := fl.String("data", "mnist", "directory holding the MNIST IDX files")
	dir := fl.String("weights", "", "weights directory (default: the embedded weights)")
	models := fl.String("models", "conv,denoise", "comma-separated models to evaluate")
	limit := fl.Int("limit", 0, "evaluate only the first N test images (0: all 10,000)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	var fsys fs.FS = weights.FS
	if *dir != "" {
		fsys = os.DirFS(*dir)
	}
	test, err := train.Load(*data, "t10k")
	if err != nil {
		return err
	}
	if *limit > 0 && *limit < test.N {
		test = &train.Set{Images: test.Images[:*limit*model.ImageLen], Labels: test.Labels[:*limit], N: *limit}
	}
	fmt.Fprintln(out, "| model | fingerprint | input | test images | BCE | MSE | PSNR (dB) | noisy input PSNR (dB) |")
	fmt.Fprintln(out, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
	for _, name := range strings.Split(*models, ",") {
		m, err := model.LoadFS(fsys, name)
		if err != nil {
			return err
		}
		noise := m.Manifest.Training.NoiseFactor
		met, err := train.Evaluate(m, test, noise)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		input, noisy := "clean", "–"
		if noise > 0 {
			input = fmt.Sprintf("clip(x + %.1f·N(0,1), 0, 1), seed %d", noise, train.EvalNoiseSeed)
			noisy = fmt.Sprintf("%.2f", met.NoisyPSNR)
		}
		fmt.Fprintf(out, "| %s | %s | %s | %d | %.4f | %.5f | %.2f | %s |\n",
			name, m.Fingerprint, input, met.TestImages, met.BCE, met.MSE, met.PSNR, noisy)
	}
	return nil
}
