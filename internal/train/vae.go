package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand"

	"github.com/aeserve/aeserve/internal/model"
)

// The figures of a model with a Gaussian code (a variational autoencoder):
// its negative ELBO, and how digit-like its draws from the prior are.

// ELBOSeed fixes the ε of the test set's ELBO estimate, so that every
// evaluation of a model gives the same figure.
const ELBOSeed = EvalNoiseSeed

// SampleSeed and Samples are the draws from the prior whose digits the
// classifier judges (SampleQuality).
const (
	SampleSeed = 20261202
	Samples    = 1000
)

// ELBO estimates a Gaussian-code model's negative evidence lower bound on a
// set, in nats per image: KL(q(z|x) ‖ N(0, I)) in closed form plus the
// binary cross-entropy summed over the image's pixels, against the decoding
// of one z = μ + ε·σ, ε drawn from seed (item by item, in order). kl is the
// KL part. Outputs are clipped to [1e-7, 1 − 1e-7], as every BCE here is.
func ELBO(m *model.Model, set *Set, seed int64) (negELBO, kl float64, err error) {
	if !m.Arch.Gaussian {
		return 0, 0, fmt.Errorf("train: %s has no Gaussian code, so no ELBO", m.Name)
	}
	if set.N == 0 || len(set.Images) != set.N*model.ImageLen {
		return 0, 0, errors.New("train: ELBO: no images")
	}
	post, err := m.NewRunner(model.Posterior)
	if err != nil {
		return 0, 0, err
	}
	defer post.Close()
	dec, err := m.NewRunner(model.Decoder)
	if err != nil {
		return 0, 0, err
	}
	defer dec.Close()
	l := m.Arch.InLen(model.Decoder)
	rng := rand.New(rand.NewSource(seed))
	const chunk = 256
	z := make([]float32, chunk*l)
	var bce float64
	for lo := 0; lo < set.N; lo += chunk {
		k := min(chunk, set.N-lo)
		x := set.Images[lo*model.ImageLen : (lo+k)*model.ImageLen]
		p, err := post.Run(x, k)
		if err != nil {
			return 0, 0, err
		}
		for i := 0; i < k; i++ {
			mu, lv := p[i*2*l:i*2*l+l], p[i*2*l+l:(i+1)*2*l]
			kl += model.KLToPrior(mu, lv)
			for j := range mu {
				z[i*l+j] = mu[j] + float32(rng.NormFloat64())*float32(math.Exp(0.5*float64(lv[j])))
			}
		}
		y, err := dec.Run(z[:k*l], k)
		if err != nil {
			return 0, 0, err
		}
		for i, t := range x {
			yv := math.Min(math.Max(float64(y[i]), 1e-7), 1-1e-7)
			tv := float64(t)
			bce -= tv*math.Log(yv) + (1-tv)*math.Log(1-yv)
		}
	}
	n := float64(set.N)
	return (bce + kl) / n, kl / n, nil
}

// SamplePrior decodes n draws from the prior N(0, I) of a Gaussian-code
// model (model.PriorSample, from seed): n new images.
func SamplePrior(m *model.Model, n int, seed int64) ([]float32, error) {
	if !m.Arch.Generative() {
		return nil, fmt.Errorf("train: %s cannot be sampled (no Gaussian code)", m.Name)
	}
	dec, err := m.NewRunner(model.Decoder)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	return dec.Run(model.PriorSample(n, m.Arch.InLen(model.Decoder), seed), n)
}

// SampleQuality has classifier cls judge n images drawn from the prior of
// m: a generative model's samples should look like digits (a confident top
// class) and like every digit (all ten predicted).
func SampleQuality(m, cls *model.Model, n int, seed int64) (*model.SampleQuality, error) {
	images, err := SamplePrior(m, n, seed)
	if err != nil {
		return nil, err
	}
	probs, err := Classify(cls, images, n)
	if err != nil {
		return nil, err
	}
	k := cls.Arch.Classes()
	q := &model.SampleQuality{Samples: n, Seed: seed, Classifier: cls.Name,
		ClassifierFingerprint: cls.Fingerprint.String(), Digits: make([]int, k)}
	var top float64
	for i := 0; i < n; i++ {
		p := probs[i*k : (i+1)*k]
		d := argmax(p)
		q.Digits[d]++
		top += float64(p[d])
	}
	q.MeanTopProbability = top / float64(n)
	return q, nil
}
