package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/aeserve/aeserve/internal/evaluate"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/vec"
)

// The int8 section (issue 18): each model of --int8 (default: every model
// evaluated whose architecture has an int8 path) run at int8 beside its
// float32 self, on the same test digits, and timed at two batch sizes.
// Everything else in the report is float32.

// int8Batches are the batch sizes the section times.
var int8Batches = []int{64, 1}

type int8Result struct {
	auto    []*int8Auto
	cls     *int8Class
	speed   []int8Speed
	denoise string // the denoiser of the classifier's denoised digits ("" none)
	vnni    bool   // the products ran the AVX-512 VNNI assembly
}

type int8Auto struct {
	name                   string
	clean, noisy           [2]evaluate.Scores // float32, int8
	agreeClean, agreeNoisy float64            // PSNR of int8's outputs against float32's
}

type int8Class struct {
	name                   string
	clean, noisy, denoised [2]float64 // accuracy: float32, int8
	denoiserInt8           bool       // the int8 column's denoiser ran at int8 too
}

type int8Speed struct {
	name  string
	stage model.Half
	batch int
	ips   [2]float64 // images/s: float32, int8 (medians)
}

// int8Names resolves --int8 against the models evaluated: nil (the flag's
// default) means every model with an int8 path; "none" none.
func int8Names(cfg config, all []*model.Model) ([]string, error) {
	if slices.Equal(cfg.int8, []string{"none"}) {
		return nil, nil
	}
	var names []string
	for _, m := range all {
		if cfg.int8 == nil && m.Arch.Int8Inference() {
			names = append(names, m.Name)
		}
	}
	for _, n := range cfg.int8 {
		i := slices.IndexFunc(all, func(m *model.Model) bool { return m.Name == n })
		switch {
		case i < 0:
			return nil, fmt.Errorf("--int8: model %q is not among those evaluated", n)
		case !all[i].Arch.Int8Inference():
			return nil, fmt.Errorf("--int8: model %s (architecture %s) has no int8 path", n, all[i].Arch.Name)
		}
		names = append(names, n)
	}
	return names, nil
}

func evaluateInt8(cfg config, res *results, all []*model.Model, noisy []float32) (*int8Result, error) {
	names, err := int8Names(cfg, all)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	t0 := time.Now()
	test := res.test
	n := test.N
	out := &int8Result{vnni: vec.Int8Accelerated()}
	byName := map[string]*model.Model{}
	q := map[string]*model.Model{} // the int8 twins
	for _, m := range all {
		byName[m.Name] = m
	}
	for _, name := range names {
		m, err := model.LoadFS(res.fsys, name)
		if err != nil {
			return nil, err
		}
		if err := m.UseInt8(); err != nil {
			return nil, err
		}
		q[name] = m
	}
	run := func(m *model.Model, h model.Half, in []float32) ([]float32, error) {
		r, err := m.NewRunner(h)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return r.Run(in, len(in)/r.InLen())
	}
	for _, name := range names {
		f, i := byName[name], q[name]
		if f.Arch.Task != model.TaskAutoencoder {
			continue
		}
		a := &int8Auto{name: name}
		for j, in := range [][]float32{test.Images, noisy} {
			fo, err := run(f, model.Full, in)
			if err != nil {
				return nil, err
			}
			io, err := run(i, model.Full, in)
			if err != nil {
				return nil, err
			}
			s := [2]evaluate.Scores{evaluate.Score(fo, test.Images, n), evaluate.Score(io, test.Images, n)}
			agree := evaluate.Score(io, fo, n).PSNR
			if j == 0 {
				a.clean, a.agreeClean = s, agree
			} else {
				a.noisy, a.agreeNoisy = s, agree
			}
		}
		out.auto = append(out.auto, a)
	}

	// The classifier: float32 throughout against int8 throughout (its
	// denoiser at int8 too when it is in the section).
	if c := res.cls; c != nil && q[c.m.Name] != nil {
		ci := q[c.m.Name]
		k := &int8Class{name: c.m.Name}
		var denoiser string
		for _, a := range res.auto {
			if a.noise > 0 {
				denoiser = a.m.Name
				break
			}
		}
		accuracy := func(m *model.Model, images []float32) (float64, error) {
			probs, err := run(m, model.Classifier, images)
			if err != nil {
				return 0, err
			}
			return evaluate.Accuracy(probs, test.Labels, m.Arch.Classes()), nil
		}
		for p, m := range []*model.Model{c.m, ci} {
			if k.clean[p], err = accuracy(m, test.Images); err != nil {
				return nil, err
			}
			if k.noisy[p], err = accuracy(m, noisy); err != nil {
				return nil, err
			}
			if denoiser == "" {
				k.denoised[p] = math.NaN()
				continue
			}
			d := byName[denoiser]
			if p == 1 && q[denoiser] != nil {
				d, k.denoiserInt8 = q[denoiser], true
			}
			den, err := run(d, model.Full, noisy)
			if err != nil {
				return nil, err
			}
			if k.denoised[p], err = accuracy(m, den); err != nil {
				return nil, err
			}
		}
		out.cls, out.denoise = k, denoiser
	}

	// Speed: each model's served stage, float32 and int8 timed in turn,
	// three times each; medians.
	for _, name := range names {
		h := model.Full
		if byName[name].Arch.Task == model.TaskClassifier {
			h = model.Classifier
		}
		for _, batch := range int8Batches {
			sp := int8Speed{name: name, stage: h, batch: min(batch, n)}
			var samples [2][]float64
			for range 3 {
				for p, m := range []*model.Model{byName[name], q[name]} {
					ips, err := imagesPerSecond(m, h, test.Images[:sp.batch*model.ImageLen], sp.batch)
					if err != nil {
						return nil, err
					}
					samples[p] = append(samples[p], ips)
				}
			}
			for p := range samples {
				slices.Sort(samples[p])
				sp.ips[p] = samples[p][1]
			}
			out.speed = append(out.speed, sp)
		}
	}
	cfg.logf("int8: %s (%s)", strings.Join(names, ", "), time.Since(t0).Round(time.Millisecond))
	return out, nil
}

// imagesPerSecond runs stage h on batch images over and over, into a reused
// buffer as the server does, for at least 300 ms after a warm-up pass.
func imagesPerSecond(m *model.Model, h model.Half, in []float32, batch int) (float64, error) {
	r, err := m.NewRunner(h)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	out := make([]float32, batch*r.OutLen())
	if err := r.RunInto(out, in, batch); err != nil {
		return 0, err
	}
	passes, start := 0, time.Now()
	for time.Since(start) < 300*time.Millisecond {
		if err := r.RunInto(out, in, batch); err != nil {
			return 0, err
		}
		passes++
	}
	return float64(passes*batch) / time.Since(start).Seconds(), nil
}

func (r *reportWriter) int8() {
	q := r.res.int8
	r.printf("%s\n\n", sections[secInt8])
	if q == nil {
		r.printf("No model was evaluated at int8 (`--int8 none`, or no model evaluated has an int8 path).\n\n")
		return
	}
	kernel := "the AVX-512 VNNI assembly (`VPDPBUSD`)"
	if !q.vnni {
		kernel = "the portable Go loop (this CPU has no AVX-512 VNNI)"
	}
	r.printf("The same weights run at int8, as the server's `--int8` runs them (opt-in; float32 is the default and every other section is float32): convolutions, transposed convolutions and dense layers as u8 × s8 products with int32 sums on %s, weights quantised per output channel, activations per image (the largest value maps to 255); a dense output layer (a dense decoder's last, into the sigmoid; the classifier's last, into the softmax) stays float32, a convolutional one runs int8. Noisy digits are the factor-%.1f digits of the sections above.\n\n", kernel, classifyNoise)
	if len(q.auto) > 0 {
		r.printf("| model | PSNR dB clean, float32 | int8 | SSIM clean, float32 | int8 | PSNR dB noisy %.1f, float32 | int8 | int8 against float32, PSNR dB (clean / noisy) |\n", classifyNoise)
		r.printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, a := range q.auto {
			r.printf("| %s | %.2f | %.2f | %.4f | %.4f | %.2f | %.2f | %.1f / %.1f |\n", a.name,
				a.clean[0].PSNR, a.clean[1].PSNR, a.clean[0].SSIM, a.clean[1].SSIM, a.noisy[0].PSNR, a.noisy[1].PSNR, a.agreeClean, a.agreeNoisy)
		}
		r.printf("\n")
	}
	if c := q.cls; c != nil {
		den := "–"
		if q.denoise != "" {
			den = "denoised by " + q.denoise
			if c.denoiserInt8 {
				den += " (at the same precision as the classifier)"
			} else {
				den += " (at float32 in both columns)"
			}
		}
		r.printf("| %s accuracy on | float32 | int8 |\n| --- | ---: | ---: |\n", c.name)
		r.printf("| clean digits | %s | %s |\n", pct(c.clean[0]), pct(c.clean[1]))
		r.printf("| noisy digits (%.1f) | %s | %s |\n", classifyNoise, pct(c.noisy[0]), pct(c.noisy[1]))
		r.printf("| noisy digits %s | %s | %s |\n\n", den, pct(c.denoised[0]), pct(c.denoised[1]))
	}
	r.printf("Speed, in images per second (median of three timings of at least 300 ms each, float32 and int8 in turn, into a reused buffer as the server runs; the run's CPU and GOMAXPROCS are in the header). Timings vary from run to run, and with whatever else the machine runs, unlike the rest of this report.\n\n")
	r.printf("| model | stage | batch | float32 images/s | int8 images/s | int8 / float32 |\n| --- | --- | ---: | ---: | ---: | ---: |\n")
	for _, s := range q.speed {
		r.printf("| %s | %s | %d | %s | %s | %.2f× |\n", s.name, s.stage, s.batch, thousands(int(s.ips[0])), thousands(int(s.ips[1])), s.ips[1]/s.ips[0])
	}
	r.printf("\n")
}
