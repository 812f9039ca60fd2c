package server

import (
	"math/rand/v2"
	"net/http"
	"strconv"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/model"
)

// New digits from a model with a Gaussian code (a variational autoencoder):
// /v1/sample decodes draws from its prior N(0, I), /v1/interpolate decodes
// the line between the codes of two images. Both decode through the model's
// decoder batcher, as /v1/decode does, and answer one PNG holding the
// digits in a grid, or with Accept: application/json each digit's PNG.

// HeaderSeed is api.HeaderSeed: the seed /v1/sample drew from.
const HeaderSeed = api.HeaderSeed

// gridColumns is how many digits a row of a grid answer holds: the default
// eight samples, or an eight-step interpolation, make one row.
const gridColumns = 8

func (s *Server) sample(r *http.Request, q query) (*response, error) {
	n, err := intParam(q, "n", 1, api.MaxSamples, api.DefaultSamples)
	if err != nil {
		return nil, err
	}
	seed, err := seedParam(q)
	if err != nil {
		return nil, err
	}
	sv, err := s.pick(r, q, DefaultGenerateModel)
	if err != nil {
		return nil, err
	}
	if err := sv.supports(api.OpSample); err != nil {
		return nil, err
	}
	ct, err := mustNegotiate(r, ctPNG, ctJSON)
	if err != nil {
		return nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if len(body) > 0 {
		return nil, malformed("/v1/sample takes no body (this one has %d bytes): the query says what to draw (model, n, seed)", len(body))
	}
	infoOf(r.Context()).images = n
	y, err := s.decodeCodes(r, sv, model.PriorSample(n, sv.m.Arch.InLen(model.Decoder), seed), n)
	if err != nil {
		return nil, err
	}
	res, err := gridResponse(sv, y, n, ct)
	if err != nil {
		return nil, err
	}
	res.header = http.Header{HeaderSeed: {strconv.FormatInt(seed, 10)}}
	return res, nil
}

func (s *Server) interpolate(r *http.Request, q query) (*response, error) {
	k, err := intParam(q, "k", api.MinSteps, api.MaxSteps, api.DefaultSteps)
	if err != nil {
		return nil, err
	}
	o, err := parseImageOpts(q)
	if err != nil {
		return nil, err
	}
	sv, err := s.pick(r, q, DefaultGenerateModel)
	if err != nil {
		return nil, err
	}
	if err := sv.supports(api.OpInterpolate); err != nil {
		return nil, err
	}
	if err := checkImageType(r); err != nil {
		return nil, err
	}
	ct, err := mustNegotiate(r, ctPNG, ctJSON)
	if err != nil {
		return nil, err
	}
	enc, err := sv.batcher(model.Encoder)
	if err != nil {
		return nil, err
	}
	// As readImages, with the count checked before anything is decoded.
	imgs, err := s.splitImages(r, o.fit)
	if err != nil {
		return nil, err
	}
	if len(imgs) != 2 {
		return nil, malformed("/v1/interpolate takes exactly two images, the first and the last of the line (got %d)", len(imgs))
	}
	release, err := s.reserve(sv, model.Encoder, len(imgs))
	if err != nil {
		return nil, err
	}
	px, err := s.decodeImages(r, imgs, o.fit)
	release()
	if err != nil {
		return nil, err
	}
	pre, err := s.prepare(r, px, len(imgs), o)
	if err != nil {
		return nil, err
	}
	infoOf(r.Context()).images = k
	mu, err := enc.Do(r.Context(), px, len(imgs))
	if err != nil {
		return nil, err
	}
	y, err := s.decodeCodes(r, sv, lerp(mu, k), k)
	if err != nil {
		return nil, err
	}
	return pre.with(gridResponse(sv, y, k, ct))
}

// lerp returns k codes evenly spaced from the first of the two codes in ab
// to the second, both included.
func lerp(ab []float32, k int) []float32 {
	l := len(ab) / 2
	a, b := ab[:l], ab[l:]
	z := make([]float32, 0, k*l)
	for i := range k {
		t := float32(i) / float32(k-1)
		for j := range l {
			z = append(z, a[j]+t*(b[j]-a[j]))
		}
	}
	return z
}

// decodeCodes runs n codes through sv's decoder batcher, the way
// /v1/decode does.
func (s *Server) decodeCodes(r *http.Request, sv *served, z []float32, n int) ([]float32, error) {
	dec, err := sv.batcher(model.Decoder)
	if err != nil {
		return nil, err
	}
	release, err := s.reserve(sv, model.Decoder, n)
	if err != nil {
		return nil, err
	}
	release() // the codes are ready: nothing lies between admission and the queue
	return dec.Do(r.Context(), z, n)
}

// gridResponse answers n images as one PNG, a grid of gridColumns
// columns, or as api.Images.
func gridResponse(sv *served, y []float32, n int, ct string) (*response, error) {
	if ct != ctPNG {
		return imagesResponse(sv, y, n, ct, nil, nil)
	}
	b, err := digit.EncodeGrid(y, n, gridColumns)
	if err != nil {
		return nil, internal("encoding the grid PNG", err)
	}
	return &response{contentType: ctPNG, body: b}, nil
}

// intParam reads an integer query parameter from lo to hi; absent is def.
func intParam(q query, name string, lo, hi, def int) (int, error) {
	v, ok := q[name]
	if !ok {
		return def, nil
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < lo || i > hi {
		return 0, malformed("query parameter %s=%q is out of range: %s is an integer from %d to %d (default %d)", name, v, name, lo, hi, def)
	}
	return i, nil
}

// seedParam reads /v1/sample's seed; without one, the server draws one
// (answered in X-Seed, so that the digits can be had again).
func seedParam(q query) (int64, error) {
	v, ok := q["seed"]
	if !ok {
		return int64(rand.Uint32()), nil
	}
	seed, err := strconv.ParseInt(v, 10, 64)
	if err != nil || seed < 0 {
		return 0, malformed("query parameter seed=%q is not a seed: an integer from 0 to %d", v, int64(1<<63-1))
	}
	return seed, nil
}
