package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/batch"
	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/quality"
)

// pick resolves ?model= (or def) to a loaded model and records it for the
// response headers, logs and metrics.
func (s *Server) pick(r *http.Request, q query, def string) (*served, error) {
	set, err := s.loaded()
	if err != nil {
		return nil, err
	}
	name, ok := q["model"]
	if !ok {
		name = def
	}
	sv := set.byName[name]
	switch {
	case sv == nil && !ok:
		// A deployment serving only some models (--models) may lack the
		// route's default: say so, rather than that no such model exists.
		return nil, problemf(http.StatusNotFound, kindUnknownModel,
			"no model given and this route's default model %q is not served here (serving %s); name one with ?model=",
			name, strings.Join(set.names, ", "))
	case sv == nil:
		return nil, unknownModel(name, set.names)
	}
	infoOf(r.Context()).model = sv
	return sv, nil
}

func (sv *served) batcher(h model.Half) (*batch.Batcher, error) {
	b := sv.batchers[h]
	if b == nil {
		return nil, problemf(http.StatusNotFound, kindUnknownModel, "model %s has no %s loaded", sv.name, h)
	}
	return b, nil
}

// opCan says which architectures can do each operation: its task, and for
// drawing and interpolating digits a Gaussian code.
var opCan = map[string]func(*model.Arch) bool{
	api.OpEncode:      autoencoder,
	api.OpDecode:      autoencoder,
	api.OpReconstruct: autoencoder,
	api.OpDenoise:     autoencoder,
	api.OpScore:       autoencoder,
	api.OpClassify:    func(a *model.Arch) bool { return a.Task == model.TaskClassifier },
	api.OpSample:      (*model.Arch).Generative,
	api.OpInterpolate: (*model.Arch).Generative,
}

func autoencoder(a *model.Arch) bool { return a.Task == model.TaskAutoencoder }

// opRoles is which roles serve each operation's route.
var opRoles = map[string][]Role{
	api.OpEncode:      encodeRoles,
	api.OpDecode:      decodeRoles,
	api.OpReconstruct: fullRoles,
	api.OpDenoise:     fullRoles,
	api.OpScore:       fullRoles,
	api.OpClassify:    classifyRoles,
	api.OpSample:      sampleRoles,
	api.OpInterpolate: interpolateRoles,
}

// opOrder lists the operations as /v1/models reports them.
var opOrder = []string{api.OpEncode, api.OpDecode, api.OpReconstruct, api.OpDenoise, api.OpScore, api.OpClassify,
	api.OpSample, api.OpInterpolate}

// operations are what the model can do here: what its architecture does,
// on the routes this role serves.
func (sv *served) operations(role Role) []string {
	ops := []string{}
	for _, op := range opOrder {
		if opCan[op](sv.m.Arch) && role.serves(opRoles[op]) {
			ops = append(ops, op)
		}
	}
	return ops
}

// halves are the stages this server runs for the model, in the
// architecture's order.
func (sv *served) halves() []string {
	hs := []string{}
	for _, h := range sv.m.Arch.Runnable() {
		if sv.batchers[h] != nil {
			hs = append(hs, string(h))
		}
	}
	return hs
}

// supports answers 400 unsupported-operation when the model's architecture
// cannot do op at all: the client picked the wrong model, and the detail
// says what this one does. (A route this process's role does not serve is
// the router's 404 not-served-by-role, before any model is looked at.)
func (sv *served) supports(op string) error {
	if opCan[op](sv.m.Arch) {
		return nil
	}
	kind := string(sv.m.Arch.Task)
	if (op == api.OpSample || op == api.OpInterpolate) && sv.m.Arch.Task == model.TaskAutoencoder {
		kind += " without a Gaussian code" // what drawing new digits needs
	}
	return problemf(http.StatusBadRequest, kindUnsupported, "model %s (%s) cannot %s; here it can %s",
		sv.name, kind, op, strings.Join(sv.info.Operations, ", "))
}

func (s *Server) encode(r *http.Request, q query) (*response, error) {
	o, err := parseImageOpts(q, includeInput, includeLogvar)
	if err != nil {
		return nil, err
	}
	sv, err := s.pick(r, q, DefaultModel)
	if err != nil {
		return nil, err
	}
	if err := sv.supports(api.OpEncode); err != nil {
		return nil, err
	}
	quant, err := quantParam(q, sv)
	if err != nil {
		return nil, err
	}
	// The encoder serves the code; a Gaussian code's posterior stage
	// serves its log-variance too.
	half := model.Encoder
	if o.logvar {
		if !sv.m.Arch.Gaussian {
			return nil, problemf(http.StatusBadRequest, kindUnsupported,
				"model %s has no Gaussian code, so no log-variance (include=%s); a variational autoencoder (vae, vae2) has", sv.name, includeLogvar)
		}
		half = model.Posterior
	}
	if err := checkImageType(r); err != nil {
		return nil, err
	}
	ct, err := answerType(r, o, ctJSON, ctBinary)
	if err != nil {
		return nil, err
	}
	b, err := sv.batcher(half)
	if err != nil {
		return nil, err
	}
	px, n, err := s.readImages(r, sv, half, o.fit)
	if err != nil {
		return nil, err
	}
	pre, err := s.prepare(r, px, n, o)
	if err != nil {
		return nil, err
	}
	infoOf(r.Context()).images = n
	z, err := b.Do(r.Context(), px, n)
	if err != nil {
		return nil, err
	}
	var logvar []float32
	if half == model.Posterior {
		z, logvar = splitPosterior(z, n)
	}
	l := &api.Latent{
		Model:       sv.name,
		Fingerprint: sv.fp,
		Shape:       append([]int{n}, sv.m.Arch.LatentShape()...),
		DType:       api.DTypeFloat32,
		Data:        z,
	}
	if quant != api.DTypeFloat32 {
		if l, err = l.Quantize(quant); err != nil {
			// A code beyond float16's range: the model's output, not the
			// client's input, but a 422 the client can act on (float32).
			return nil, unprocessable("the latent cannot be sent as %s: %v (ask for quant=float32)", quant, err)
		}
	}
	if ct == ctBinary {
		body, err := l.MarshalBinary()
		if err != nil {
			return nil, internal("encoding the binary latent", err)
		}
		return pre.with(&response{contentType: ctBinary, body: body}, nil)
	}
	return pre.with(jsonResponse(latentAnswer{Latent: *l, Logvar: logvar, Inputs: pre.inputs}))
}

// splitPosterior splits n posterior rows, each a mean then a log-variance
// of the same length (model.Posterior), into the means and the
// log-variances, each n rows.
func splitPosterior(p []float32, n int) (mean, logvar []float32) {
	l := len(p) / n / 2
	mean, logvar = make([]float32, 0, n*l), make([]float32, 0, n*l)
	for i := range n {
		mean = append(mean, p[i*2*l:i*2*l+l]...)
		logvar = append(logvar, p[i*2*l+l:(i+1)*2*l]...)
	}
	return mean, logvar
}

func (s *Server) reconstruct(r *http.Request, q query) (*response, error) {
	return s.imagesToImages(r, q, DefaultModel, api.OpReconstruct)
}

// denoise runs any autoencoder on the images: a model trained on noise
// removes it, and a clean one shows what it makes of noise (GET /v1/models
// says which is which).
func (s *Server) denoise(r *http.Request, q query) (*response, error) {
	return s.imagesToImages(r, q, DefaultDenoiseModel, api.OpDenoise)
}

// imagesToImages runs the full model (one graph, encoder then decoder) and
// answers the images with their scores.
func (s *Server) imagesToImages(r *http.Request, q query, def, op string) (*response, error) {
	// A batch can only be answered in JSON, which is checked once the image
	// count is known.
	run, err := s.runFull(r, q, def, op, ctPNG, ctJSON)
	if err != nil {
		return nil, err
	}
	ct := run.ct
	if run.n > 1 {
		if ct, err = mustNegotiate(r, ctJSON); err != nil {
			return nil, err
		}
	}
	return run.pre.with(imagesResponse(run.sv, run.y, run.n, ct, run.pre.inputs, run.scores()))
}

// score runs the full model and answers only each image's reconstruction
// error: no output image is encoded.
func (s *Server) score(r *http.Request, q query) (*response, error) {
	run, err := s.runFull(r, q, DefaultModel, api.OpScore, ctJSON)
	if err != nil {
		return nil, err
	}
	return run.pre.with(jsonResponse(api.Scores{Model: run.sv.name, Fingerprint: run.sv.fp, Scores: run.scores(), Inputs: run.pre.inputs}))
}

// quantParam is /v1/encode's quant: the dtype to send the latent in,
// float32 by default. An unknown name is malformed; one the model does not
// offer (GET /v1/models lists its quantizations) is an operation it cannot do.
func quantParam(q query, sv *served) (string, error) {
	v, ok := q["quant"]
	if !ok {
		return api.DTypeFloat32, nil
	}
	known := []string{api.DTypeFloat32, api.DTypeFloat16, api.DTypeInt8}
	if !slices.Contains(known, v) {
		return "", malformed("quant=%q is not known: float32, float16 or int8", v)
	}
	offered := sv.m.Arch.Quantizations()
	if !slices.Contains(offered, v) {
		return "", problemf(http.StatusBadRequest, kindUnsupported, "model %s does not offer quant=%s; it offers %s",
			sv.name, v, strings.Join(offered, ", "))
	}
	return v, nil
}

// fullRun is a request's images through a full autoencoder.
type fullRun struct {
	sv    *served
	ct    string // the answer's type, negotiated before the body was read
	pre   *prepared
	px, y []float32 // inputs and outputs
	n     int
}

// runFull checks the request, reads its images and runs them through the
// full model of op (def if the query names none). offers are the answer's
// types, negotiated before any of the body is read.
func (s *Server) runFull(r *http.Request, q query, def, op string, offers ...string) (*fullRun, error) {
	o, err := parseImageOpts(q)
	if err != nil {
		return nil, err
	}
	sv, err := s.pick(r, q, def)
	if err != nil {
		return nil, err
	}
	if err := sv.supports(op); err != nil {
		return nil, err
	}
	if err := checkImageType(r); err != nil {
		return nil, err
	}
	ct, err := answerType(r, o, offers...)
	if err != nil {
		return nil, err
	}
	b, err := sv.batcher(model.Full)
	if err != nil {
		return nil, err
	}
	px, n, err := s.readImages(r, sv, model.Full, o.fit)
	if err != nil {
		return nil, err
	}
	pre, err := s.prepare(r, px, n, o)
	if err != nil {
		return nil, err
	}
	infoOf(r.Context()).images = n
	y, err := b.Do(r.Context(), px, n)
	if err != nil {
		return nil, err
	}
	return &fullRun{sv: sv, ct: ct, pre: pre, px: px, y: y, n: n}, nil
}

// scores are each image's reconstruction error, as the model's score
// distribution (GET /v1/models/{name}) measured them.
func (f *fullRun) scores() []api.Score {
	qs := make([]quality.Score, f.n)
	quality.FastScores(qs, f.px, f.y, model.ImageLen)
	out := make([]api.Score, f.n)
	for i, q := range qs {
		out[i] = api.Score{MSE: q.MSE, BCE: q.BCE}
	}
	return out
}

// latentTypes are the request media types of /v1/decode.
var latentTypes = []string{ctJSON, ctBinary}

func (s *Server) decode(r *http.Request, q query) (*response, error) {
	set, err := s.loaded()
	if err != nil {
		return nil, err
	}
	want := q["model"]
	if want != "" {
		named := set.byName[want]
		if named == nil {
			return nil, unknownModel(want, set.names)
		}
		if err := named.supports(api.OpDecode); err != nil {
			return nil, err
		}
	}
	mt, _ := mediaType(r)
	if mt != ctJSON && mt != ctBinary {
		return nil, unsupportedMediaType(mt, latentTypes...)
	}
	ct, err := mustNegotiate(r, ctPNG, ctJSON)
	if err != nil {
		return nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	l, err := parseLatent(mt, body)
	if err != nil {
		return nil, err
	}
	sv, err := latentModel(set, l)
	if err != nil {
		return nil, err
	}
	infoOf(r.Context()).model = sv
	if err := sv.supports(api.OpDecode); err != nil {
		return nil, err
	}
	if want != "" && want != sv.name {
		return nil, conflict("model=%s was asked for, but the latent was made by model %s (fingerprint %s)", want, sv.name, sv.fp)
	}
	inShape := sv.m.Arch.InShape(model.Decoder)
	if len(l.Shape) != 1+len(inShape) || !slices.Equal(l.Shape[1:], inShape) {
		return nil, unprocessable("latent shape %v, want [N, %s] (model %s's code)", l.Shape, joinInts(inShape), sv.name)
	}
	n := l.Shape[0]
	if n > s.cfg.MaxImages {
		return nil, tooLarge("latent holds %d images, more than %d per request", n, s.cfg.MaxImages)
	}
	// A quantised latent's scale and values are checked here; the float32
	// checks below then see the numbers it stands for.
	if l, err = l.Dequantize(); err != nil {
		return nil, unprocessable("%v", err)
	}
	if i, ok := l.CheckFinite(); !ok {
		latentLen := sv.m.Arch.InLen(model.Decoder)
		if mt == ctJSON {
			// JSON has no NaN or infinity: this was a finite number too large
			// for float32, which parseLatentData kept as ±Inf.
			return nil, unprocessable("latent value %d (image %d) is beyond the float32 range (±%.4g); values must be finite",
				i, i/latentLen, math.MaxFloat32)
		}
		return nil, unprocessable("latent value %d (image %d) is %v; values must be finite", i, i/latentLen, l.Data[i])
	}
	if n > 1 {
		if ct, err = mustNegotiate(r, ctJSON); err != nil {
			return nil, err
		}
	}
	b, err := sv.batcher(model.Decoder)
	if err != nil {
		return nil, err
	}
	infoOf(r.Context()).images = n
	y, err := b.Do(r.Context(), l.Data, n)
	if err != nil {
		return nil, err
	}
	// Finite values can still be too large for the decoder's arithmetic
	// (3e38 overflows a sum): that is the latent's fault, not a bug (500).
	for i := range n {
		if !allFinite(y[i*model.ImageLen : (i+1)*model.ImageLen]) {
			return nil, atIndex(i, unprocessable("the latent's values are too large to decode: the output is not finite"))
		}
	}
	return imagesResponse(sv, y, n, ct, nil, nil)
}

// The headers of a one-PNG answer's score.
const (
	HeaderScoreMSE = "X-Score-MSE"
	HeaderScoreBCE = "X-Score-BCE"
)

// The score headers' canonical keys, for a literal http.Header.
var (
	scoreMSEKey = http.CanonicalHeaderKey(HeaderScoreMSE)
	scoreBCEKey = http.CanonicalHeaderKey(HeaderScoreBCE)
)

// formatScore writes a score as the shortest decimal that reads back as the
// same float64, as JSON does.
func formatScore(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func allFinite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}

// parseLatent reads either form. Bytes that are not a latent at all are
// malformed (400); well-formed JSON whose content cannot be a latent is
// unprocessable (422), as the JSON itself parsed.
func parseLatent(mt string, body []byte) (*api.Latent, error) {
	var l api.Latent
	if mt == ctBinary {
		if err := l.UnmarshalBinary(body); err != nil {
			return nil, malformed("%v", err)
		}
		return &l, nil
	}
	// Anything but an object is not a latent at all: null would otherwise
	// decode into the zero Latent and be judged on its (missing) content.
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, malformed("latent JSON: want an object, got %s", jsonKind(t))
	}
	// data is read by parseLatentData, so that a number beyond the float32
	// range is kept as ±Inf (and refused as non-finite, 422) rather than
	// failing the decoder as if the JSON were malformed.
	var w struct {
		api.Latent
		Data json.RawMessage `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, malformed("latent JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed("latent JSON: data after the object")
	}
	l = w.Latent
	var err error
	if l.Data, err = parseLatentData(w.Data); err != nil {
		return nil, err
	}
	if err := l.Validate(); err != nil {
		return nil, unprocessable("%v", err)
	}
	return &l, nil
}

// jsonKind names the JSON value starting t, for messages.
func jsonKind(t []byte) string {
	if len(t) == 0 {
		return "an empty body"
	}
	switch t[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '{':
		return "an object"
	}
	return "a number"
}

// parseLatentData reads the data array of a JSON latent, which the JSON
// decoder has already checked to be well-formed JSON. Each number is
// rounded to float32 as encoding/json would, except that one beyond the
// float32 range becomes ±Inf instead of an error, so that the caller's
// finiteness check names it. Anything but a number is malformed.
func parseLatentData(raw []byte) ([]float32, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil // as encoding/json leaves a missing or null slice
	}
	if raw[0] != '[' {
		return nil, malformed("latent JSON: data is %s, not an array of numbers", jsonKind(raw))
	}
	out := make([]float32, 0, bytes.Count(raw, []byte{','})+1)
	i := skipSpace(raw, 1)
	if raw[i] == ']' {
		return out, nil
	}
	for {
		start := i
		for i < len(raw) && isNumberByte(raw[i]) {
			i++
		}
		if i == start {
			return nil, malformed("latent JSON: data[%d] is %s, not a number", len(out), jsonKind(raw[i:]))
		}
		v, err := strconv.ParseFloat(string(raw[start:i]), 32)
		if err != nil && !errors.Is(err, strconv.ErrRange) { // ErrRange comes with ±Inf
			return nil, malformed("latent JSON: data[%d]: %v", len(out), err)
		}
		out = append(out, float32(v))
		i = skipSpace(raw, i)
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case ']':
			return out, nil
		default: // cannot happen in JSON the decoder accepted
			return nil, malformed("latent JSON: data[%d] is not followed by , or ]", len(out)-1)
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return min(i, len(b)-1) // the closing ] is always there
}

func isNumberByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// latentModel finds the model whose weights made l. A latent names its model
// in JSON; the binary form carries only the fingerprint. Either way decoding
// with other weights would answer garbage, so a mismatch is refused.
func latentModel(set *modelSet, l *api.Latent) (*served, error) {
	if l.Model != "" {
		sv := set.byName[l.Model]
		if sv == nil {
			return nil, unknownModel(l.Model, set.names)
		}
		if l.Fingerprint != sv.fp {
			return nil, conflict("the latent was made by weights with fingerprint %s, but model %s has %s",
				l.Fingerprint, sv.name, sv.fp)
		}
		return sv, nil
	}
	fp, err := api.ParseFingerprint(l.Fingerprint)
	if err != nil {
		return nil, unprocessable("%v", err)
	}
	if sv := set.byFP[model.Fingerprint(fp)]; sv != nil {
		return sv, nil
	}
	have := make([]string, len(set.names))
	for i, name := range set.names {
		have[i] = name + " " + set.byName[name].fp
	}
	return nil, conflict("no loaded model has weights with fingerprint %s (have %s)", l.Fingerprint, strings.Join(have, ", "))
}

// imagesResponse encodes n output images as one PNG or as api.Images, with
// their scores and the prepared inputs, if any (include=input). One PNG
// carries its score in headers.
func imagesResponse(sv *served, y []float32, n int, ct string, inputs []string, scores []api.Score) (*response, error) {
	if ct == ctPNG {
		b, err := digit.EncodePNG(y)
		if err != nil {
			return nil, internal("encoding the output PNG", err)
		}
		res := &response{contentType: ctPNG, body: b}
		if len(scores) == 1 {
			res.header = http.Header{
				scoreMSEKey: {formatScore(scores[0].MSE)},
				scoreBCEKey: {formatScore(scores[0].BCE)},
			}
		}
		return res, nil
	}
	out := imagesAnswer{Images: api.Images{Model: sv.name, Fingerprint: sv.fp, Images: make([]string, n), Scores: scores}, Inputs: inputs}
	for i := range n {
		b, err := digit.EncodePNG(y[i*model.ImageLen : (i+1)*model.ImageLen])
		if err != nil {
			return nil, internal(fmt.Sprintf("encoding output PNG %d", i), err)
		}
		out.Images.Images[i] = base64.StdEncoding.EncodeToString(b)
	}
	return jsonResponse(out)
}

// internal marks a failure of the server's own making, so that an error
// type problemOf would blame on the client (a digit.Error from encoding the
// model's output, say) still answers 500.
func internal(what string, err error) *Problem {
	p := problemf(http.StatusInternalServerError, kindInternal, "internal error; the request ID identifies it in the server's log")
	p.Err = fmt.Errorf("%s: %w", what, err)
	return p
}

func jsonResponse(v any) (*response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, internal("encoding JSON", err)
	}
	return &response{contentType: ctJSON, body: append(b, '\n')}, nil
}

func (s *Server) listModels(r *http.Request, _ query) (*response, error) {
	set, err := s.loaded()
	if err != nil {
		return nil, err
	}
	if _, err := mustNegotiate(r, ctJSON); err != nil {
		return nil, err
	}
	list := api.ModelList{SchemaVersion: api.SchemaVersion, Models: make([]api.ModelInfo, 0, len(set.names))}
	for _, name := range set.names {
		list.Models = append(list.Models, set.byName[name].info)
	}
	if set.byName[DefaultModel] != nil {
		list.Default = DefaultModel
	}
	return jsonResponse(list)
}

func (s *Server) getModel(r *http.Request, _ query) (*response, error) {
	set, err := s.loaded()
	if err != nil {
		return nil, err
	}
	// The router matched on the escaped path (routeOnEscapedPath), so the
	// parameter is still percent-encoded, and is decoded exactly once here:
	// /v1/models/%63onv is conv, /v1/models/a%2Fb names "a/b".
	raw := chi.URLParam(r, "name")
	name, err := url.PathUnescape(raw)
	if err != nil { // net/http refuses such paths before any handler runs
		name = raw
	}
	sv := set.byName[name]
	if sv == nil {
		return nil, unknownModel(name, set.names)
	}
	infoOf(r.Context()).model = sv
	if _, err := mustNegotiate(r, ctJSON); err != nil {
		return nil, err
	}
	return jsonResponse(sv.info)
}

// modelInfo is the public description of a model, from its manifest and
// architecture.
func modelInfo(m *model.Model, halves, ops []string) api.ModelInfo {
	man, a := m.Manifest, m.Arch
	info := api.ModelInfo{
		Name:           m.Name,
		Architecture:   man.Architecture,
		Description:    man.Description,
		Task:           string(a.Task),
		Fingerprint:    m.Fingerprint.String(),
		Precision:      m.Precision(),
		Halves:         halves,
		Operations:     ops,
		InputShape:     a.InShape(a.Stored()[0]),
		LatentShape:    a.LatentShape(),
		Classes:        a.Classes(),
		TrainedOnNoise: man.Training.NoiseFactor > 0,
	}
	for _, h := range a.Runnable() {
		info.Stages = append(info.Stages, api.StageInfo{Name: string(h), InputShape: a.InShape(h), OutputShape: a.OutShape(h)})
	}
	if ls := info.LatentShape; ls != nil {
		info.Code = &api.CodeSize{Numbers: prod(ls), BinaryBytes: api.BinarySize(append([]int{1}, ls...), api.DTypeFloat32)}
		for _, q := range a.Quantizations() {
			info.Quantizations = append(info.Quantizations, api.Quantization{DType: q, BinaryBytes: api.BinarySize(append([]int{1}, ls...), q)})
		}
	}
	t := man.Training
	if t.Epochs > 0 {
		info.Training = &api.Training{
			Epochs: t.Epochs, SelectedEpoch: t.SelectedEpoch, BatchSize: t.BatchSize, LearningRate: t.LearningRate,
			Loss: t.Loss, NoiseFactor: t.NoiseFactor, Seed: t.Seed,
			Data: fmt.Sprintf("%s (%d training, %d validation images)", t.Data, t.TrainImages, t.ValImages),
		}
	}
	if mt := man.Metrics; mt.TestImages > 0 {
		info.Metrics = &api.Metrics{BCE: mt.BCE, PSNRdB: mt.PSNR}
		if mt.NoiseFactor > 0 {
			v := mt.NoisyPSNR
			info.Metrics.NoisyPSNRdB = &v
		}
		if a.Task == model.TaskClassifier {
			v := mt.Accuracy
			info.Metrics.Accuracy = &v
		}
		if d := mt.Scores; d != nil {
			info.Metrics.Scores = &api.ScoreDistribution{Images: d.Images, MSE: api.Percentiles(d.MSE), BCE: api.Percentiles(d.BCE)}
		}
		if mt.NegELBO > 0 {
			elbo, kl := mt.NegELBO, mt.KL
			info.Metrics.NegELBOnats, info.Metrics.KLnats = &elbo, &kl
		}
		if q := mt.Samples; q != nil {
			info.Metrics.Samples = &api.SampleQuality{Samples: q.Samples, Seed: q.Seed, Classifier: q.Classifier,
				ClassifierFingerprint: q.ClassifierFingerprint, MeanTopProbability: q.MeanTopProbability, Digits: q.Digits}
		}
	}
	for _, h := range a.Stored() {
		for _, ts := range man.Stages[h].Tensors {
			info.Tensors = append(info.Tensors, api.TensorInfo{Name: ts.Name, Shape: ts.Shape})
		}
	}
	return info
}

func prod(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

type status struct {
	Status string   `json:"status"`
	Models []string `json:"models,omitempty"`
}

// healthz says the process is alive and answering; it never looks at models,
// so a server training on startup is not restarted for being slow.
func (s *Server) healthz(*http.Request, query) (*response, error) {
	return jsonResponse(status{Status: "ok"})
}

func (s *Server) readyz(*http.Request, query) (*response, error) {
	s.mu.Lock()
	st, waiting := s.state, s.waiting
	s.mu.Unlock()
	switch st {
	case ready:
		return jsonResponse(status{Status: "ready", Models: s.models.Load().names})
	case draining:
		return nil, shuttingDown()
	}
	return nil, notReady(waiting)
}

func (s *Server) openapi(r *http.Request, _ query) (*response, error) {
	if len(s.cfg.OpenAPI) == 0 {
		return nil, problemf(http.StatusNotFound, kindNotFound, "this build carries no OpenAPI document")
	}
	if _, err := mustNegotiate(r, ctYAML); err != nil {
		return nil, err
	}
	return &response{contentType: ctYAML, body: s.cfg.OpenAPI}, nil
}
