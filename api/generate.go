package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// HeaderSeed carries the seed of /v1/sample's draws: the one asked for, or
// the one the server chose. Asking again with it gives the same digits.
const HeaderSeed = "X-Seed"

// Bounds of /v1/sample's n and /v1/interpolate's k, and their defaults.
const (
	MaxSamples     = 64
	DefaultSamples = 8
	MinSteps       = 2
	MaxSteps       = 64
	DefaultSteps   = 8
)

// SampleQuality is a classifier's verdict on a generative model's draws
// from its prior: Samples images drawn from Seed, the classifier's mean
// top-class probability on them, and how many it took for each digit, 0 to 9.
type SampleQuality struct {
	Samples               int     `json:"samples"`
	Seed                  int64   `json:"seed"`
	Classifier            string  `json:"classifier"`
	ClassifierFingerprint string  `json:"classifier_fingerprint"`
	MeanTopProbability    float64 `json:"mean_top_probability"`
	Digits                []int   `json:"digits"`
}

// SampleOptions are /v1/sample's parameters; the zero value draws the
// server's default number of digits (8) from its default model (vae), with
// a seed the server chooses.
type SampleOptions struct {
	Model string // a model with a Gaussian code ("" for the server's default, vae)
	N     int    // digits to draw, 1 to MaxSamples (0 for the server's default)
	// Seed, if not nil, fixes the draws: the same seed, the same digits.
	// 0 to 2⁶³−1.
	Seed *int64
}

// InterpolateOptions are /v1/interpolate's parameters.
type InterpolateOptions struct {
	Model string // a model with a Gaussian code ("" for the server's default, vae)
	K     int    // images from the first to the second, inclusive: 2 to MaxSteps (0 for the server's default, 8)
	Fit   bool   // prepare images of any size as MNIST did
}

// Sample draws new digits from a variational autoencoder's prior and
// returns them as PNGs, with the seed they were drawn from.
func (c *Client) Sample(ctx context.Context, opts SampleOptions) (pngs [][]byte, seed int64, err error) {
	q := url.Values{}
	if opts.Model != "" {
		q.Set("model", opts.Model)
	}
	if opts.N != 0 {
		q.Set("n", strconv.Itoa(opts.N))
	}
	if opts.Seed != nil {
		q.Set("seed", strconv.FormatInt(*opts.Seed, 10))
	}
	want := opts.N
	if want == 0 {
		want = -1 // whatever the server's default is
	}
	pngs, h, err := c.imagesWithHeader(ctx, "/v1/sample", q, nil, "", want)
	if err != nil {
		return nil, 0, err
	}
	if seed, err = strconv.ParseInt(h.Get(HeaderSeed), 10, 64); err != nil {
		return nil, 0, fmt.Errorf("api: /v1/sample: the answer's %s header %q is not a seed", HeaderSeed, h.Get(HeaderSeed))
	}
	return pngs, seed, nil
}

// Interpolate encodes two images and decodes K points evenly spaced on the
// line between their codes (the means of a variational autoencoder's
// posteriors): K PNGs from the first image's reconstruction to the
// second's.
func (c *Client) Interpolate(ctx context.Context, opts InterpolateOptions, a, b []byte) ([][]byte, error) {
	if a == nil || b == nil {
		return nil, errors.New("api: interpolate: two images are needed")
	}
	body, ctype, err := multipartImages([][]byte{a, b})
	if err != nil {
		return nil, err
	}
	q := modelFit(opts.Model, opts.Fit)
	want := -1
	if opts.K != 0 {
		q.Set("k", strconv.Itoa(opts.K))
		want = opts.K
	}
	pngs, _, err := c.imagesWithHeader(ctx, "/v1/interpolate", q, body, ctype, want)
	return pngs, err
}

// imagesWithHeader is images, also returning the answer's header.
func (c *Client) imagesWithHeader(ctx context.Context, path string, q url.Values, body []byte, ctype string, want int) ([][]byte, http.Header, error) {
	r, err := c.do(ctx, http.MethodPost, path, q, body, ctype, MediaJSON)
	if err != nil {
		return nil, nil, err
	}
	pngs, err := decodeImages(path, r.body, want)
	return pngs, r.header, err
}
