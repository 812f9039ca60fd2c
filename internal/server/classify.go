package server

import (
	"net/http"
	"slices"
	"strings"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/model"
)

// Headers naming the autoencoder that cleaned a classify request's images.
const (
	HeaderDenoiser            = "X-Denoiser"
	HeaderDenoiserFingerprint = "X-Denoiser-Fingerprint"
)

// classify runs a classifier on the images; with denoise=true a denoising
// autoencoder first cleans them (the classic "feed the autoencoder's output
// to a CNN"): the denoiser's full model, then the classifier, each through
// its own batcher.
func (s *Server) classify(r *http.Request, q query) (*response, error) {
	o, err := parseImageOpts(q)
	if err != nil {
		return nil, err
	}
	den, err := boolParam(q, "denoise")
	if err != nil {
		return nil, err
	}
	named, hasDenoiser := q["denoiser"]
	if hasDenoiser && !den {
		return nil, malformed("denoiser=%s is given without denoise=true; add denoise=true to clean the images first, or drop denoiser", named)
	}
	sv, err := s.pick(r, q, DefaultClassifyModel)
	if err != nil {
		return nil, err
	}
	if err := sv.supports(api.OpClassify); err != nil {
		return nil, err
	}
	var dsv *served
	if den {
		if dsv, err = s.denoiser(named, hasDenoiser); err != nil {
			return nil, err
		}
		infoOf(r.Context()).denoiser = dsv
	}
	if err := checkImageType(r); err != nil {
		return nil, err
	}
	if _, err := answerType(r, o, ctJSON); err != nil {
		return nil, err
	}
	cb, err := sv.batcher(model.Classifier)
	if err != nil {
		return nil, err
	}
	// The images' first stop is where the queue must have room.
	first, firstHalf := sv, model.Classifier
	if dsv != nil {
		first, firstHalf = dsv, model.Full
	}
	px, n, err := s.readImages(r, first, firstHalf, o.fit)
	if err != nil {
		return nil, err
	}
	// The inputs as prepared, before any denoiser sees them.
	pre, err := s.prepare(r, px, n, o)
	if err != nil {
		return nil, err
	}
	infoOf(r.Context()).images = n
	if dsv != nil {
		db, err := dsv.batcher(model.Full)
		if err != nil {
			return nil, err
		}
		if px, err = db.Do(r.Context(), px, n); err != nil {
			return nil, err
		}
	}
	probs, err := cb.Do(r.Context(), px, n)
	if err != nil {
		return nil, err
	}
	k := sv.m.Arch.Classes()
	results := make([]api.Result, n)
	for i := range results {
		p := slices.Clone(probs[i*k : (i+1)*k])
		results[i] = api.Result{Digit: argmax(p), Probabilities: p}
	}
	var dname, dfp string
	if dsv != nil {
		dname, dfp = dsv.name, dsv.fp
	}
	if n == 1 {
		return pre.with(jsonResponse(classificationAnswer{Classification: api.Classification{Model: sv.name, Fingerprint: sv.fp,
			Denoiser: dname, DenoiserFingerprint: dfp, Result: results[0]}, Inputs: pre.inputs}))
	}
	return pre.with(jsonResponse(classificationsAnswer{Classifications: api.Classifications{Model: sv.name, Fingerprint: sv.fp,
		Denoiser: dname, DenoiserFingerprint: dfp, Results: results}, Inputs: pre.inputs}))
}

// denoiser resolves denoiser= (or the default) to a served autoencoder
// trained on noise. A model not trained on noise is refused (400): it would
// reconstruct the noise, not remove it, and the classifier's answer would
// silently be worse.
func (s *Server) denoiser(name string, named bool) (*served, error) {
	set, err := s.loaded()
	if err != nil {
		return nil, err
	}
	var denoisers []string
	for _, n := range set.names {
		if sv := set.byName[n]; sv.m.Arch.Task == model.TaskAutoencoder && sv.info.TrainedOnNoise {
			denoisers = append(denoisers, n)
		}
	}
	have := "none"
	if len(denoisers) > 0 {
		have = strings.Join(denoisers, ", ")
	}
	if !named {
		name = DefaultDenoiseModel
	}
	dsv := set.byName[name]
	switch {
	case dsv == nil && !named:
		return nil, problemf(http.StatusNotFound, kindUnknownModel,
			"denoise=true without denoiser= uses model %q, which is not served here (denoisers served: %s); name one with denoiser=",
			name, have)
	case dsv == nil:
		return nil, unknownModel(name, set.names)
	case dsv.m.Arch.Task != model.TaskAutoencoder || !dsv.info.TrainedOnNoise:
		return nil, problemf(http.StatusBadRequest, kindUnsupported,
			"denoiser=%s: model %s was not trained on noise, so it cannot denoise for the classifier (denoisers served: %s)",
			name, name, have)
	}
	if dsv.batchers[model.Full] == nil {
		return nil, problemf(http.StatusNotFound, kindNotServedByRole, "denoiser %s's full model is not loaded by this server", name)
	}
	return dsv, nil
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
