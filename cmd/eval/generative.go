package main

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/plot"
	"github.com/aeserve/aeserve/internal/train"
)

// The generative models (a Gaussian code: the variational autoencoders):
// the negative ELBO, what the classifier makes of draws from the prior, and
// their pictures: samples, interpolations and, for a 2-number code, the
// manifold the decoder draws over the plane.

const (
	priorGrid     = 64 // draws from the prior in the samples picture
	interpSteps   = 10 // images per interpolation strip, ends included
	manifoldSide  = 20 // points per side of a 2-D code's manifold
	manifoldTails = 0.05
)

// interpPairs are the test digits interpolated between (the first ten test
// digits are 7 2 1 0 4 1 4 9 5 9).
var interpPairs = [][2]int{{0, 1}, {2, 3}, {4, 7}, {3, 8}}

type genResult struct {
	elbo, kl float64
	samples  *model.SampleQuality // nil without a classifier
	prior    []float32            // priorGrid draws, for the picture
	interp   [][]float32          // one strip per pair
	pairs    [][2]int
	manifold []float32 // manifoldSide² images, for a 2-number code
}

// evaluateGenerative measures a model with a Gaussian code and, when the
// report is wanted, draws its pictures.
func evaluateGenerative(cfg config, m *model.Model, test *train.Set, cls *classResult) (*genResult, error) {
	g := &genResult{}
	var err error
	if g.elbo, g.kl, err = train.ELBO(m, test, train.ELBOSeed); err != nil {
		return nil, err
	}
	if cls != nil {
		if g.samples, err = train.SampleQuality(m, cls.m, train.Samples, train.SampleSeed); err != nil {
			return nil, err
		}
	}
	if !cfg.draw() {
		return g, nil
	}
	if g.prior, err = train.SamplePrior(m, priorGrid, train.SampleSeed); err != nil {
		return nil, err
	}
	enc, err := m.NewRunner(model.Encoder)
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	dec, err := m.NewRunner(model.Decoder)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	l := m.Arch.InLen(model.Decoder)
	for _, p := range interpPairs {
		if p[0] >= test.N || p[1] >= test.N {
			continue
		}
		ab, err := enc.Run(append(append([]float32(nil), test.Image(p[0])...), test.Image(p[1])...), 2)
		if err != nil {
			return nil, err
		}
		z := make([]float32, 0, interpSteps*l)
		for i := range interpSteps {
			t := float32(i) / float32(interpSteps-1)
			for j := range l {
				z = append(z, ab[j]+t*(ab[l+j]-ab[j]))
			}
		}
		strip, err := dec.Run(z, interpSteps)
		if err != nil {
			return nil, err
		}
		g.interp, g.pairs = append(g.interp, strip), append(g.pairs, p)
	}
	if l == 2 {
		// The plane through the prior's quantiles, from 5% to 95% on each
		// axis, so that equal steps hold equal probability; y grows upwards.
		z := make([]float32, 0, 2*manifoldSide*manifoldSide)
		q := func(i int) float32 {
			p := manifoldTails + (1-2*manifoldTails)*float64(i)/float64(manifoldSide-1)
			return float32(math.Sqrt2 * math.Erfinv(2*p-1))
		}
		for row := range manifoldSide {
			for col := range manifoldSide {
				z = append(z, q(col), q(manifoldSide-1-row))
			}
		}
		if g.manifold, err = dec.Run(z, manifoldSide*manifoldSide); err != nil {
			return nil, err
		}
	}
	return g, nil
}

func (r *reportWriter) generative() error {
	res := r.res
	r.printf("%s\n\n", sections[secGenerative])
	var gens []*autoResult
	for _, a := range res.auto {
		if a.gen != nil {
			gens = append(gens, a)
		}
	}
	if len(gens) == 0 {
		r.printf("No model with a Gaussian code (a variational autoencoder) among the models evaluated.\n\n")
		return nil
	}
	r.printf("A variational autoencoder's encoder gives a Gaussian q(z|x) per digit; its latent, served and decoded by `/v1/reconstruct`, is the mean. The negative ELBO on the %s test digits is, per digit in nats, the KL from q(z|x) to the prior N(0, I) in closed form plus the BCE summed over the 784 pixels at one z = μ + ε·σ per digit, ε from Go's `math/rand` seeded with %d (`train.ELBOSeed`). Samples: %s codes drawn from the prior (seed %d, `train.SampleSeed`, as `POST /v1/sample?seed=%d&n=%d` draws the first %d of them) decoded, and classified by `%s`: its mean top-class probability (how digit-like they are) and how many it took for each digit.\n\n",
		thousands(res.test.N), train.ELBOSeed, thousands(train.Samples), train.SampleSeed, train.SampleSeed, priorGrid, priorGrid, clsName(res))
	r.printf("| model | latent | PSNR from the mean (dB) | −ELBO (nats) | KL (nats) | samples' mean top probability | samples per digit, 0 to 9 |\n")
	r.printf("| --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, a := range gens {
		top, hist := "–", "–"
		if s := a.gen.samples; s != nil {
			top = fmt.Sprintf("%.3f", s.MeanTopProbability)
			cells := make([]string, len(s.Digits))
			for i, c := range s.Digits {
				cells[i] = fmt.Sprint(c)
			}
			hist = strings.Join(cells, " · ")
		}
		r.printf("| %s | %d | %.2f | %.2f | %.2f | %s | %s |\n", a.m.Name, a.codeNumbers, a.clean.PSNR, a.gen.elbo, a.gen.kl, top, hist)
	}
	r.printf("\n")
	for _, a := range gens {
		g := a.gen
		if g.prior == nil {
			continue
		}
		link, err := r.png("vae-samples-"+a.m.Name+".png", func(w io.Writer) error {
			return plot.TileGrid(w, g.prior, priorGrid, 28, 28, 8, 2, 2)
		})
		if err != nil {
			return err
		}
		r.printf("**%s**: %d draws from the prior\n\n![%s samples from the prior](%s)\n\n", a.m.Name, priorGrid, a.m.Name, link)
		if len(g.interp) > 0 {
			link, err := r.png("vae-interpolation-"+a.m.Name+".png", func(w io.Writer) error { return plot.SampleGrid(w, g.interp) })
			if err != nil {
				return err
			}
			var pairs []string
			for _, p := range g.pairs {
				pairs = append(pairs, fmt.Sprintf("%d → %d", p[0], p[1]))
			}
			r.printf("**%s**: interpolations, %d steps from one test digit's mean to another's, both ends included (test digits %s), as `POST /v1/interpolate?k=%d` answers them\n\n![%s interpolations](%s)\n\n",
				a.m.Name, interpSteps, strings.Join(pairs, ", "), interpSteps, a.m.Name, link)
		}
		if g.manifold != nil {
			link, err := r.png("vae-manifold-"+a.m.Name+".png", func(w io.Writer) error {
				return plot.TileGrid(w, g.manifold, manifoldSide*manifoldSide, 28, 28, manifoldSide, 1, 0)
			})
			if err != nil {
				return err
			}
			r.printf("**%s**: the learnt manifold, the decoder over a %d×%d grid of its 2-number code, at the prior's quantiles from %g to %g on each axis (first number left to right, second bottom to top)\n\n![%s manifold](%s)\n\n",
				a.m.Name, manifoldSide, manifoldSide, manifoldTails, 1-manifoldTails, a.m.Name, link)
		}
	}
	return nil
}

func clsName(res *results) string {
	if res.cls == nil {
		return "a classifier (none was evaluated)"
	}
	return res.cls.m.Name
}
