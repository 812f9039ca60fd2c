package server

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/model"
)

// HeaderInputWarning says, on a success, that an input looks unlike what
// the model was trained on.
const HeaderInputWarning = "X-Input-Warning"

// brightMean is the mean brightness above which a 28×28 input sent without
// fit is plainly not a white digit on black: MNIST's test digits average
// 0.13, and the brightest of them stays under 0.4, while an inverted one
// averages 0.87.
const brightMean = 0.5

// maxWarned bounds how many images one X-Input-Warning names.
const maxWarned = 10

// Values of the include parameter, which may name several, comma-separated.
const (
	// includeInput: the 28×28 images the model was given, in a JSON answer.
	includeInput = "input"
	// includeLogvar: /v1/encode of a Gaussian code also answers the
	// posterior's log-variance, in the JSON latent (the binary one holds
	// one tensor).
	includeLogvar = "logvar"
)

// includeMeaning says what each include value adds, for messages.
var includeMeaning = map[string]string{
	includeInput:  "the 28×28 images the model was given, in a JSON answer",
	includeLogvar: "the log-variance of a Gaussian code, in /v1/encode's JSON latent",
}

// imageOpts are the query parameters every image route reads besides the
// model: fit, and include.
type imageOpts struct {
	fit bool
	// inputs asks for the 28×28 images the model was given, in the JSON answer.
	inputs bool
	// logvar asks /v1/encode for a Gaussian code's log-variance too.
	logvar bool
}

// parseImageOpts reads fit and include; includes are the include values the
// route takes (input alone if none are given): a list of them,
// comma-separated, each at most once.
func parseImageOpts(q query, includes ...string) (imageOpts, error) {
	var o imageOpts
	var err error
	if o.fit, err = boolParam(q, "fit"); err != nil {
		return o, err
	}
	if len(includes) == 0 {
		includes = []string{includeInput}
	}
	v, ok := q["include"]
	if !ok {
		return o, nil
	}
	seen := map[string]bool{}
	for _, name := range strings.Split(v, ",") {
		if !slices.Contains(includes, name) {
			known := make([]string, len(includes))
			for i, n := range includes {
				known[i] = n + " (" + includeMeaning[n] + ")"
			}
			what := "is not known"
			if _, ok := includeMeaning[name]; ok {
				what = "is not taken by this route"
			}
			if name != v {
				what += fmt.Sprintf(" (%q is not a value)", name)
			}
			return o, malformed("include=%q %s: this route takes %s, comma-separated, each at most once",
				v, what, strings.Join(known, " and "))
		}
		if seen[name] {
			return o, malformed("include=%q names %q twice; name each at most once", v, name)
		}
		seen[name] = true
	}
	o.inputs, o.logvar = seen[includeInput], seen[includeLogvar]
	return o, nil
}

// answerType negotiates an image route's answer among offers (the
// server's preference first). With include=input the answer must be JSON:
// JSON is then preferred, and a client that accepts only another type is
// told why its request cannot be answered (400), before its body is read.
// With include=logvar JSON is the only answer (406 if it is not accepted),
// as no other form can carry the log-variance.
func answerType(r *http.Request, o imageOpts, offers ...string) (string, error) {
	if o.logvar {
		return mustNegotiate(r, ctJSON)
	}
	if o.inputs {
		rest := make([]string, 0, len(offers))
		for _, t := range offers {
			if t != ctJSON {
				rest = append(rest, t)
			}
		}
		offers = append([]string{ctJSON}, rest...)
	}
	ct, err := mustNegotiate(r, offers...)
	if err != nil {
		return "", err
	}
	if o.inputs && ct != ctJSON {
		return "", malformed("include=input comes only in a JSON answer, and Accept %q asks for %s: send Accept: %s",
			strings.Join(r.Header.Values("Accept"), ", "), ct, ctJSON)
	}
	return ct, nil
}

// prepared is what an answer says about the images the model was given,
// besides its result.
type prepared struct {
	header http.Header
	// inputs are the prepared 28×28 inputs as base64 PNGs, with include=input.
	inputs []string
}

// prepare looks at the n images of px as the model will see them: a 28×28
// image sent without fit whose mean brightness is above brightMean is
// answered, with an X-Input-Warning and a log line, and include=input
// encodes them for the answer.
func (s *Server) prepare(r *http.Request, px []float32, n int, o imageOpts) (*prepared, error) {
	p := &prepared{} // header is made only for a warning
	if !o.fit {
		var bright []int
		var means []float64
		for i := range n {
			var sum float64
			for _, v := range px[i*model.ImageLen : (i+1)*model.ImageLen] {
				sum += float64(v)
			}
			if m := sum / model.ImageLen; m > brightMean {
				bright = append(bright, i)
				means = append(means, m)
			}
		}
		if len(bright) > 0 {
			msg := brightWarning(bright, means)
			p.header = http.Header{}
			p.header.Set(HeaderInputWarning, msg)
			s.log.Warn().Str("request_id", infoOf(r.Context()).id).Str("path", r.URL.Path).
				Ints("bright_images", bright).Floats64("mean_brightness", means).
				Msg("input image mostly bright, not a white digit on black: " + msg)
		}
	}
	if o.inputs {
		p.inputs = make([]string, n)
		for i := range n {
			b, err := digit.EncodePNG(px[i*model.ImageLen : (i+1)*model.ImageLen])
			if err != nil {
				return nil, internal(fmt.Sprintf("encoding input PNG %d", i), err)
			}
			p.inputs[i] = base64.StdEncoding.EncodeToString(b)
		}
	}
	return p, nil
}

// brightWarning is the X-Input-Warning for the images bright, with their
// mean brightness: ASCII, one line.
func brightWarning(bright []int, means []float64) string {
	if len(bright) == 1 {
		return fmt.Sprintf("image %d: mean brightness %.2f > %.1f; the model expects a white digit on black (send fit=true to prepare it)",
			bright[0], means[0], brightMean)
	}
	var b strings.Builder
	b.WriteString("images ")
	for k, i := range bright[:min(len(bright), maxWarned)] {
		if k > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d (%.2f)", i, means[k])
	}
	if more := len(bright) - maxWarned; more > 0 {
		fmt.Fprintf(&b, " and %d more", more)
	}
	fmt.Fprintf(&b, ": mean brightness > %.1f; the model expects white digits on black (send fit=true to prepare them)", brightMean)
	return b.String()
}

// with adds the headers to a handler's answer.
func (p *prepared) with(res *response, err error) (*response, error) {
	if err != nil {
		return nil, err
	}
	if len(p.header) > 0 {
		if res.header == nil {
			res.header = http.Header{}
		}
		for k, vs := range p.header {
			res.header[k] = vs
		}
	}
	return res, nil
}

// The JSON answers with the prepared inputs (include=input); without, they
// are exactly api's types.
type (
	latentAnswer struct {
		api.Latent
		// Logvar is a Gaussian code's log-variance, in Data's shape
		// (include=logvar).
		Logvar []float32 `json:"logvar,omitempty"`
		Inputs []string  `json:"inputs,omitempty"`
	}
	imagesAnswer struct {
		api.Images
		Inputs []string `json:"inputs,omitempty"`
	}
	classificationAnswer struct {
		api.Classification
		Inputs []string `json:"inputs,omitempty"`
	}
	classificationsAnswer struct {
		api.Classifications
		Inputs []string `json:"inputs,omitempty"`
	}
)
