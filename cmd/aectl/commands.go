package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/aeserve/aeserve/api"
)

// commands are aectl's subcommands, in the order of aectl help.
var commands = []*command{encodeCmd, decodeCmd, reconstructCmd, denoiseCmd, scoreCmd, classifyCmd,
	sampleCmd, interpolateCmd, modelsCmd}

const fitHelp = "prepare images of any size as MNIST did: invert dark-on-light, crop to the ink, scale, centre"

var encodeCmd = &command{
	name:    "encode",
	args:    "IMAGE...",
	summary: "PNG images → one latent holding a row per image",
	help: `Encode digits into one latent with a row per image, in order, and write it to
stdout or -o FILE: in the compact binary format by default (6,287 bytes an image
with conv, 141 with dense), or as JSON with --json. IMAGE is a PNG file, or -
for stdin.

  aectl encode digit.png > digit.lat
  aectl encode --model compact --quant int8 digit.png > digit.lat   # 47 bytes
  aectl encode --model dense a.png b.png -o ab.lat
  aectl encode --json digit.png`,
	flags: func(fs *flag.FlagSet) func(*env, *common, []string) error {
		model := fs.String("model", "", "the autoencoder `NAME` (default: the server's, conv)")
		fit := fs.Bool("fit", false, fitHelp)
		quant := fs.String("quant", "", "send the latent as `DTYPE`: float32 (default), float16, or int8 where the model offers it (compact: 47 bytes a digit)")
		asJSON := fs.Bool("json", false, "write the latent as JSON instead of binary")
		out := fs.String("o", "", "write the latent to `FILE` (default: stdout)")
		return func(e *env, cm *common, files []string) error {
			if len(files) == 0 {
				return usagef("no images: name PNG files, or - for stdin")
			}
			if !*asJSON && (*out == "" || *out == "-") && isTerminal(e.stdout) {
				return usagef("not writing a binary latent to a terminal: redirect stdout, or use -o FILE or --json")
			}
			pngs, err := readImages(e, files)
			if err != nil {
				return err
			}
			opts := api.EncodeOptions{Model: *model, Fit: *fit, Quant: *quant}
			if *asJSON {
				opts.Encoding = api.LatentJSON
			}
			ctx, cancel := cm.context()
			defer cancel()
			l, err := cm.svc.Encode(ctx, opts, pngs...)
			if err != nil {
				return cm.wrap(err)
			}
			var b []byte
			if *asJSON {
				b, err = json.Marshal(l)
				b = append(b, '\n')
			} else {
				b, err = l.MarshalBinary()
			}
			if err != nil {
				return err
			}
			if *out == "" {
				*out = "-"
			}
			return writeFile(e, *out, b)
		}
	},
}

var decodeCmd = &command{
	name:    "decode",
	args:    "[LATENT]",
	summary: "a latent → its PNG images",
	help: `Decode a latent back into digits, one PNG per row. LATENT is a file written by
aectl encode, in the binary format or JSON (told apart by the first byte; or say
--json-in), or - or nothing for stdin. The weights that made the latent decode
it: the server finds them by the latent's fingerprint.

One image goes to stdout or -o FILE; several go into the directory -o DIR, as
LATENT.0.decoded.png, LATENT.1.decoded.png, …

  aectl decode digit.lat > digit.png
  aectl encode a.png b.png | aectl decode -o out/`,
	flags: func(fs *flag.FlagSet) func(*env, *common, []string) error {
		model := fs.String("model", "", "refuse a latent that model `NAME` did not make")
		jsonIn := fs.Bool("json-in", false, "the latent is JSON (otherwise told by its first byte)")
		out := fs.String("o", "", "write the image to `PATH`, or the images into directory PATH (default: stdout)")
		return func(e *env, cm *common, files []string) error {
			if len(files) > 1 {
				return usagef("one latent at a time, got %d files", len(files))
			}
			name := "-"
			if len(files) == 1 {
				name = files[0]
			}
			b, display, err := readInput(e, name)
			if err != nil {
				return err
			}
			l, enc, err := parseLatent(display, b, *jsonIn)
			if err != nil {
				return err
			}
			rows := 1
			if len(l.Shape) >= 2 {
				rows = l.Shape[0]
			}
			stem := "latent"
			if name != "-" {
				stem = fileStem(name)
			}
			names := make([]string, rows)
			for i := range names {
				if rows == 1 {
					names[i] = stem + ".decoded.png"
				} else {
					names[i] = fmt.Sprintf("%s.%0*d.decoded.png", stem, len(strconv.Itoa(rows-1)), i)
				}
			}
			dst, err := plan(e, *out, names, nil)
			if err != nil {
				return err
			}
			ctx, cancel := cm.context()
			defer cancel()
			pngs, err := cm.svc.Decode(ctx, l, api.DecodeOptions{Model: *model, Encoding: enc})
			if err != nil {
				return cm.wrap(err)
			}
			return dst.write(e, pngs)
		}
	},
}

var reconstructCmd = imagesCommand("reconstruct", "reconstructed",
	"PNG images → the autoencoder's reconstructions",
	`Run digits through a whole autoencoder (encoder, then decoder) and write what
comes out: how much of a digit its code keeps.`,
	"aectl reconstruct digit.png > same.png\n  aectl reconstruct --model dense a.png b.png -o out/",
	func(s service, ctx context.Context, o api.ImageOptions, pngs [][]byte) ([][]byte, error) {
		return s.Reconstruct(ctx, o, pngs...)
	})

var denoiseCmd = imagesCommand("denoise", "denoised",
	"noisy PNG images → clean ones",
	`Clean noisy digits with a denoising autoencoder (the server's default is the
model trained on noise, denoise; aectl models says which are).`,
	"aectl denoise noisy.png > clean.png\n  aectl denoise a.png b.png -o out/",
	func(s service, ctx context.Context, o api.ImageOptions, pngs [][]byte) ([][]byte, error) {
		return s.Denoise(ctx, o, pngs...)
	})

// imagesCommand is a command that sends images and writes images back, one
// per input: to stdout or -o FILE for one, as DIR/NAME.SUFFIX.png for several.
func imagesCommand(name, suffix, summary, help, examples string,
	call func(service, context.Context, api.ImageOptions, [][]byte) ([][]byte, error)) *command {
	return &command{
		name:    name,
		args:    "IMAGE...",
		summary: summary,
		help: help + `

IMAGE is a PNG file, or - for stdin. One image goes to stdout or -o FILE;
several go into the directory -o DIR, each named after its input:
a.png becomes DIR/a.` + suffix + `.png.

  ` + examples,
		flags: func(fs *flag.FlagSet) func(*env, *common, []string) error {
			model := fs.String("model", "", "the autoencoder `NAME` (default: the server's)")
			fit := fs.Bool("fit", false, fitHelp)
			out := fs.String("o", "", "write the image to `PATH`, or the images into directory PATH (default: stdout)")
			return func(e *env, cm *common, files []string) error {
				if len(files) == 0 {
					return usagef("no images: name PNG files, or - for stdin")
				}
				if err := stdinOnce(files); err != nil {
					return err
				}
				names := make([]string, len(files))
				for i, f := range files {
					stem := "stdin"
					if f != "-" {
						stem = fileStem(f)
					}
					names[i] = stem + "." + suffix + ".png"
				}
				dst, err := plan(e, *out, names, files)
				if err != nil {
					return err
				}
				pngs, err := readImages(e, files)
				if err != nil {
					return err
				}
				ctx, cancel := cm.context()
				defer cancel()
				got, err := call(cm.svc, ctx, api.ImageOptions{Model: *model, Fit: *fit}, pngs)
				if err != nil {
					return cm.wrap(err)
				}
				return dst.write(e, got)
			}
		},
	}
}

var classifyCmd = &command{
	name:    "classify",
	args:    "IMAGE...",
	summary: "PNG images → their digits",
	help: `Classify digits: print each image's digit and its probability, one line per
image in order ("7 (p=0.998)", after "FILE: " when there are several), or the
server's whole answer, every class's probability, with --json. IMAGE is a PNG
file, or - for stdin.

  aectl classify digit.png
  aectl classify --denoise noisy.png
  aectl classify --json *.png`,
	flags: func(fs *flag.FlagSet) func(*env, *common, []string) error {
		model := fs.String("model", "", "the classifier `NAME` (default: the server's)")
		denoise := fs.Bool("denoise", false, "clean the images with a denoising autoencoder first")
		denoiser := fs.String("denoiser", "", "that autoencoder's `NAME` (default: the server's, denoise); implies --denoise")
		fit := fs.Bool("fit", false, fitHelp)
		asJSON := fs.Bool("json", false, "print the answer as JSON")
		return func(e *env, cm *common, files []string) error {
			if len(files) == 0 {
				return usagef("no images: name PNG files, or - for stdin")
			}
			pngs, err := readImages(e, files)
			if err != nil {
				return err
			}
			opts := api.ClassifyOptions{Model: *model, Denoise: *denoise || *denoiser != "", Denoiser: *denoiser, Fit: *fit}
			ctx, cancel := cm.context()
			defer cancel()
			res, err := cm.svc.Classify(ctx, opts, pngs...)
			if err != nil {
				return cm.wrap(err)
			}
			if *asJSON {
				return writeJSON(e.stdout, res)
			}
			var b strings.Builder
			for i, r := range res.Results {
				if len(files) > 1 {
					fmt.Fprintf(&b, "%s: ", displayName(files[i]))
				}
				p := float32(0)
				if r.Digit >= 0 && r.Digit < len(r.Probabilities) {
					p = r.Probabilities[r.Digit]
				}
				fmt.Fprintf(&b, "%d (p=%.3f)\n", r.Digit, p)
			}
			_, err = io.WriteString(e.stdout, b.String())
			return err
		}
	},
}

// scorer is the service of the score command: /v1/score has no V2 form.
type scorer interface {
	Score(ctx context.Context, opts api.ScoreOptions, pngs ...[]byte) (*api.Scores, error)
}

var scoreCmd = &command{
	name:    "score",
	args:    "IMAGE...",
	summary: "images → their anomaly scores (reconstruction errors)",
	help: `Score images by how badly an autoencoder reconstructs them: print each image's
mean squared error and binary cross-entropy per pixel, one line per image in
order ("mse=0.0112 bce=0.0716", after "FILE: " when there are several), or the
server's answer with --json. A digit like MNIST's scores low; compare with the
model's distribution on the test digits (aectl models NAME). IMAGE is a PNG,
JPEG or GIF file, or - for stdin. Over /v1 only (not --v2 or --grpc).

  aectl score digit.png
  aectl score --model dense *.png`,
	flags: func(fs *flag.FlagSet) func(*env, *common, []string) error {
		model := fs.String("model", "", "the autoencoder `NAME` (default: the server's, conv; dense tells digits from other things best)")
		fit := fs.Bool("fit", false, fitHelp)
		asJSON := fs.Bool("json", false, "print the answer as JSON")
		return func(e *env, cm *common, files []string) error {
			if len(files) == 0 {
				return usagef("no images: name image files, or - for stdin")
			}
			sc, ok := cm.svc.(scorer)
			if !ok {
				return usagef("score is a /v1 route with no Open Inference Protocol form: drop --v2 and --grpc")
			}
			pngs, err := readImages(e, files)
			if err != nil {
				return err
			}
			ctx, cancel := cm.context()
			defer cancel()
			res, err := sc.Score(ctx, api.ScoreOptions{Model: *model, Fit: *fit}, pngs...)
			if err != nil {
				return cm.wrap(err)
			}
			if *asJSON {
				return writeJSON(e.stdout, res)
			}
			var b strings.Builder
			for i, s := range res.Scores {
				if len(files) > 1 {
					fmt.Fprintf(&b, "%s: ", displayName(files[i]))
				}
				fmt.Fprintf(&b, "mse=%.4g bce=%.4g\n", s.MSE, s.BCE)
			}
			_, err = io.WriteString(e.stdout, b.String())
			return err
		}
	},
}

// generator is the service of sample and interpolate: routes of a
// variational autoencoder, with no V2 form.
type generator interface {
	Sample(ctx context.Context, opts api.SampleOptions) ([][]byte, int64, error)
	Interpolate(ctx context.Context, opts api.InterpolateOptions, a, b []byte) ([][]byte, error)
}

var _ generator = (*api.Client)(nil)

func generatorOf(cm *common, name string) (generator, error) {
	g, ok := cm.svc.(generator)
	if !ok {
		return nil, usagef("%s is a /v1 route with no Open Inference Protocol form: drop --v2 and --grpc", name)
	}
	return g, nil
}

// numbered names n images stem.0.png … stem.(n−1).png, the numbers padded
// to the same width so that they sort.
func numbered(stem string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s.%0*d.png", stem, len(strconv.Itoa(n-1)), i)
	}
	return names
}

var sampleCmd = &command{
	name:    "sample",
	args:    "",
	summary: "new digits drawn from a variational autoencoder",
	help: `Draw new digits: codes from the prior N(0, I) of a variational autoencoder
(vae by default, vae2 with its 2-number code), decoded. The same seed draws the
same digits; without --seed the server chooses one, and the files are named
after it, sample-SEED.K.png, so that any draw can be had again. One digit
(-n 1) goes to stdout or -o FILE; several into the directory -o DIR. Over /v1
only.

  aectl sample -n 16 -o samples/
  aectl sample -n 1 --seed 7 > seven.png
  aectl sample --model vae2 --seed 1 -o samples/`,
	flags: func(fs *flag.FlagSet) func(*env, *common, []string) error {
		model := fs.String("model", "", "a variational autoencoder `NAME` (default: the server's, vae)")
		n := fs.Int("n", api.DefaultSamples, fmt.Sprintf("how many digits, 1 to %d", api.MaxSamples))
		seed := fs.Int64("seed", -1, "draw from `SEED`, 0 or more (default: the server chooses)")
		out := fs.String("o", "", "write the digit to `PATH`, or the digits into directory PATH (default: stdout)")
		return func(e *env, cm *common, files []string) error {
			if len(files) > 0 {
				return usagef("sample takes no files (got %q): the flags say what to draw", files)
			}
			if *n < 1 || *n > api.MaxSamples {
				return usagef("-n %d: draw 1 to %d digits", *n, api.MaxSamples)
			}
			g, err := generatorOf(cm, "sample")
			if err != nil {
				return err
			}
			// Where the digits go is settled before anything is drawn; the
			// names carry the seed, known only then.
			if _, err := plan(e, *out, numbered("sample", *n), nil); err != nil {
				return err
			}
			opts := api.SampleOptions{Model: *model, N: *n}
			if *seed >= 0 {
				opts.Seed = seed
			}
			ctx, cancel := cm.context()
			defer cancel()
			pngs, used, err := g.Sample(ctx, opts)
			if err != nil {
				return cm.wrap(err)
			}
			dst, err := plan(e, *out, numbered(fmt.Sprintf("sample-%d", used), *n), nil)
			if err != nil {
				return err
			}
			return dst.write(e, pngs)
		}
	},
}

var interpolateCmd = &command{
	name:    "interpolate",
	args:    "IMAGE IMAGE",
	summary: "two PNG images → the digits between them",
	help: `Encode two digits with a variational autoencoder (vae by default) and decode K
codes evenly spaced from the first one's mean to the second's, both ends
included: a morph from one digit to the other. The digits go into the
directory -o DIR as A-B.0.png … A-B.(K-1).png, A and B the images' names. Over
/v1 only.

  aectl interpolate seven.png two.png -o morph/
  aectl interpolate -k 16 --model vae2 a.png b.png -o morph/`,
	flags: func(fs *flag.FlagSet) func(*env, *common, []string) error {
		model := fs.String("model", "", "a variational autoencoder `NAME` (default: the server's, vae)")
		k := fs.Int("k", api.DefaultSteps, fmt.Sprintf("how many digits, the two ends included: %d to %d", api.MinSteps, api.MaxSteps))
		fit := fs.Bool("fit", false, fitHelp)
		out := fs.String("o", "", "write the digits into directory `DIR`")
		return func(e *env, cm *common, files []string) error {
			if len(files) != 2 {
				return usagef("interpolate takes two images, the first and the last (got %d)", len(files))
			}
			if *k < api.MinSteps || *k > api.MaxSteps {
				return usagef("-k %d: %d to %d digits", *k, api.MinSteps, api.MaxSteps)
			}
			g, err := generatorOf(cm, "interpolate")
			if err != nil {
				return err
			}
			stems := make([]string, 2)
			for i, f := range files {
				stems[i] = "stdin"
				if f != "-" {
					stems[i] = fileStem(f)
				}
			}
			dst, err := plan(e, *out, numbered(stems[0]+"-"+stems[1], *k), nil)
			if err != nil {
				return err
			}
			pngs, err := readImages(e, files)
			if err != nil {
				return err
			}
			ctx, cancel := cm.context()
			defer cancel()
			got, err := g.Interpolate(ctx, api.InterpolateOptions{Model: *model, K: *k, Fit: *fit}, pngs[0], pngs[1])
			if err != nil {
				return cm.wrap(err)
			}
			return dst.write(e, got)
		}
	},
}

var modelsCmd = &command{
	name:    "models",
	args:    "[NAME]",
	summary: "the server's models, or one model's details",
	help: `List the models the server has loaded: name, task, latent shape per image, the
size of one image's binary latent, whether it was trained on noise (a
denoiser), and the fingerprint of its weights. With NAME, describe that model.
--json prints the server's answer.

With --v2 (or --grpc ADDR), show the server's V2 metadata and every V2 model
(a stage of a model: conv, conv.encoder, conv.decoder, classifier) with its
version, input and outputs; V2 has no list of models, so the names come from
/v1/models at --server. With NAME, describe that V2 model and say whether it
is ready.

  aectl models
  aectl models conv
  aectl models --v2 conv.encoder`,
	flags: func(fs *flag.FlagSet) func(*env, *common, []string) error {
		asJSON := fs.Bool("json", false, "print the answer as JSON")
		return func(e *env, cm *common, files []string) error {
			if len(files) > 1 {
				return usagef("one model at a time, got %d names", len(files))
			}
			ctx, cancel := cm.context()
			defer cancel()
			if v2, ok := cm.svc.(*v2Service); ok {
				name := ""
				if len(files) == 1 {
					name = files[0]
				}
				return cm.wrap(v2.models(ctx, e.stdout, name, *asJSON))
			}
			if len(files) == 1 {
				m, err := cm.svc.Model(ctx, files[0])
				if err != nil {
					return cm.wrap(err)
				}
				if *asJSON {
					return writeJSON(e.stdout, m)
				}
				return printModel(e.stdout, m)
			}
			ml, err := cm.svc.Models(ctx)
			if err != nil {
				return cm.wrap(err)
			}
			if *asJSON {
				return writeJSON(e.stdout, ml)
			}
			return printModels(e.stdout, ml)
		}
	},
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// shape reads like 32×7×7.
func shape(s []int) string {
	if len(s) == 0 {
		return "-"
	}
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.Itoa(d)
	}
	return strings.Join(parts, "×")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func printModels(w io.Writer, ml *api.ModelList) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTASK\tLATENT\tCODE BYTES\tTRAINED ON NOISE\tFINGERPRINT")
	for _, m := range ml.Models {
		code, noise := "-", "-"
		if m.Task == api.TaskAutoencoder {
			noise = yesNo(m.TrainedOnNoise)
		}
		if m.Code != nil {
			code = strconv.Itoa(m.Code.BinaryBytes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Task, shape(m.LatentShape), code, noise, m.Fingerprint)
	}
	return tw.Flush()
}

func printModel(w io.Writer, m *api.ModelInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "%s:\t%s\n", k, fmt.Sprintf(format, args...))
	}
	row("name", "%s", m.Name)
	row("architecture", "%s", m.Architecture)
	if m.Description != "" {
		row("description", "%s", m.Description)
	}
	row("task", "%s", m.Task)
	row("operations", "%s", strings.Join(m.Operations, ", "))
	row("halves served", "%s", strings.Join(m.Halves, ", "))
	row("input shape", "%s", shape(m.InputShape))
	if m.Task == api.TaskAutoencoder {
		row("latent shape", "%s", shape(m.LatentShape))
		if m.Code != nil {
			row("code", "%d numbers, %d bytes as a binary latent", m.Code.Numbers, m.Code.BinaryBytes)
		}
		row("trained on noise", "%s", yesNo(m.TrainedOnNoise))
	}
	if m.Classes > 0 {
		row("classes", "%d", m.Classes)
	}
	row("fingerprint", "%s", m.Fingerprint)
	if t := m.Training; t != nil {
		epochs := strconv.Itoa(t.Epochs) + " epochs"
		if t.SelectedEpoch > 0 {
			epochs += fmt.Sprintf(" (weights of epoch %d)", t.SelectedEpoch)
		}
		row("training", "%s, batch %d, learning rate %g, seed %d", epochs, t.BatchSize, t.LearningRate, t.Seed)
		if t.Data != "" {
			row("data", "%s", t.Data)
		}
		if t.Loss != "" {
			row("loss", "%s", t.Loss)
		}
		if t.NoiseFactor > 0 {
			row("noise factor", "%g", t.NoiseFactor)
		}
	}
	if mt := m.Metrics; mt != nil {
		var parts []string
		if mt.Accuracy != nil {
			parts = append(parts, fmt.Sprintf("accuracy %.2f%%", 100**mt.Accuracy))
		}
		if mt.BCE > 0 {
			parts = append(parts, fmt.Sprintf("BCE %.4f", mt.BCE))
		}
		if mt.PSNRdB > 0 {
			parts = append(parts, fmt.Sprintf("PSNR %.2f dB", mt.PSNRdB))
		}
		if mt.NoisyPSNRdB != nil {
			parts = append(parts, fmt.Sprintf("denoising PSNR %.2f dB", *mt.NoisyPSNRdB))
		}
		if len(parts) > 0 {
			row("test metrics", "%s", strings.Join(parts, ", "))
		}
		if mt.NegELBOnats != nil {
			kl := ""
			if mt.KLnats != nil {
				kl = fmt.Sprintf(" (KL %.2f)", *mt.KLnats)
			}
			row("negative ELBO", "%.2f nats per test digit%s", *mt.NegELBOnats, kl)
		}
		if sq := mt.Samples; sq != nil {
			row("samples", "%s takes %d draws from the prior for digits with mean top probability %.3f; per digit 0–9: %s",
				sq.Classifier, sq.Samples, sq.MeanTopProbability, strings.Trim(fmt.Sprint(sq.Digits), "[]"))
		}
		if d := mt.Scores; d != nil {
			for _, sc := range []struct {
				name string
				p    api.Percentiles
			}{{"MSE", d.MSE}, {"BCE", d.BCE}} {
				row("score "+sc.name, "p50 %.4g, p90 %.4g, p99 %.4g, p99.9 %.4g, max %.4g (%d test digits)",
					sc.p.P50, sc.p.P90, sc.p.P99, sc.p.P999, sc.p.Max, d.Images)
			}
		}
	}
	return tw.Flush()
}
