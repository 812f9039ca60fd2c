package api_test

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/server"
)

// The tests in this file drive the real server (every embedded model, on
// loopback) with real MNIST test digits.

// grey decodes a PNG the server sent and checks it is a 28×28 digit.
func grey(t *testing.T, b []byte) []float32 {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("answer is not a PNG: %v", err)
	}
	if img.Bounds() != image.Rect(0, 0, 28, 28) {
		t.Fatalf("answer is %v, want 28×28", img.Bounds())
	}
	g, ok := img.(*image.Gray)
	if !ok {
		t.Fatalf("answer is a %T, want 8-bit grey", img)
	}
	px := make([]float32, len(g.Pix))
	for i, v := range g.Pix {
		px[i] = float32(v) / 255
	}
	return px
}

func psnr(a, b []float32) float64 {
	var se float64
	for i := range a {
		d := float64(a[i] - b[i])
		se += d * d
	}
	return 10 * math.Log10(float64(len(a))/se)
}

func maxGreyDiff(a, b []float32) int {
	m := 0
	for i := range a {
		m = max(m, int(math.Abs(float64(a[i]-b[i]))*255+0.5))
	}
	return m
}

func wantProblem(t *testing.T, err error, status int, kind string) *api.Problem {
	t.Helper()
	var p *api.Problem
	if !errors.As(err, &p) {
		t.Fatalf("error %v, want a %d *api.Problem", err, status)
	}
	if p.Status != status || p.Type != server.ProblemTypeBase+kind {
		t.Fatalf("problem %d %s (%s), want %d %s", p.Status, p.Type, p.Detail, status, kind)
	}
	return p
}

// encode → decode gives back what reconstruct gives, in both latent
// encodings, for a batch and for one image, with a conv and a dense model.
func TestRealEncodeDecode(t *testing.T) {
	c := realServer(t)
	ctx := t.Context()
	pngs, _ := testDigits(t, 0, 4)
	for _, model := range []string{"", "dense"} {
		rec, err := c.Reconstruct(ctx, api.ImageOptions{Model: model}, pngs...)
		if err != nil {
			t.Fatal(err)
		}
		wantModel, wantShape := "conv", []int{4, 32, 7, 7}
		if model == "dense" {
			wantModel, wantShape = "dense", []int{4, 32}
		}
		var latents []*api.Latent
		for _, enc := range []api.LatentEncoding{api.LatentBinary, api.LatentJSON} {
			l, err := c.Encode(ctx, api.EncodeOptions{Model: model, Encoding: enc}, pngs...)
			if err != nil {
				t.Fatalf("%s encode: %v", enc, err)
			}
			if l.Model != wantModel || !slices.Equal(l.Shape, wantShape) || l.DType != api.DTypeFloat32 || len(l.Fingerprint) != 16 {
				t.Fatalf("%s latent: model %q, shape %v, dtype %s, fingerprint %q", enc, l.Model, l.Shape, l.DType, l.Fingerprint)
			}
			latents = append(latents, l)
			for _, dec := range []api.LatentEncoding{api.LatentBinary, api.LatentJSON} {
				out, err := c.Decode(ctx, l, api.DecodeOptions{Encoding: dec})
				if err != nil {
					t.Fatalf("%s latent, %s decode: %v", enc, dec, err)
				}
				if len(out) != len(pngs) {
					t.Fatalf("%d images from %d latent rows", len(out), len(pngs))
				}
				for i := range out {
					if d := maxGreyDiff(grey(t, out[i]), grey(t, rec[i])); d > 1 {
						t.Errorf("%s %s/%s: image %d: decode(encode(x)) is %d grey levels from reconstruct(x)", wantModel, enc, dec, i, d)
					}
				}
			}
		}
		// The encodings carry the same numbers (JSON prints float32 exactly).
		if !slices.Equal(latents[0].Data, latents[1].Data) || latents[0].Fingerprint != latents[1].Fingerprint {
			t.Errorf("%s: binary and JSON latents differ", wantModel)
		}
	}

	// One image, and a latent that crossed the wire as bytes (no model name):
	// the server finds the model by fingerprint.
	l, err := c.Encode(ctx, api.EncodeOptions{Model: "denoise"}, pngs[0])
	if err != nil {
		t.Fatal(err)
	}
	wire, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var shipped api.Latent
	if err := shipped.UnmarshalBinary(wire); err != nil {
		t.Fatal(err)
	}
	out, err := c.Decode(ctx, &shipped, api.DecodeOptions{})
	if err != nil || len(out) != 1 {
		t.Fatalf("decoding a shipped latent: %d images, %v", len(out), err)
	}
	grey(t, out[0])
	// Naming another model than the latent's is refused, never decoded.
	_, err = c.Decode(ctx, &shipped, api.DecodeOptions{Model: "conv"})
	wantProblem(t, err, http.StatusConflict, "model-mismatch")
}

// Reconstructions resemble their inputs; denoising brings noisy digits
// closer to the clean ones than they were.
func TestRealReconstructDenoise(t *testing.T) {
	c := realServer(t)
	ctx := t.Context()
	pngs, _ := testDigits(t, 100, 6)
	rec, err := c.Reconstruct(ctx, api.ImageOptions{}, pngs...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rec {
		if p := psnr(grey(t, rec[i]), grey(t, pngs[i])); p < 18 {
			t.Errorf("digit %d reconstructed at %.1f dB, want ≥ 18", i, p)
		}
	}

	r := rand.New(rand.NewPCG(1, 2))
	clean := make([][]float32, len(pngs))
	noisy := make([][]byte, len(pngs))
	for i := range pngs {
		clean[i] = grey(t, pngs[i])
		px := slices.Clone(clean[i])
		for j := range px {
			px[j] = min(max(px[j]+0.5*float32(r.NormFloat64()), 0), 1)
		}
		if noisy[i], err = digit.EncodePNG(px); err != nil {
			t.Fatal(err)
		}
	}
	den, err := c.Denoise(ctx, api.ImageOptions{}, noisy...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range den {
		before, after := psnr(grey(t, noisy[i]), clean[i]), psnr(grey(t, den[i]), clean[i])
		if after < before+5 {
			t.Errorf("digit %d: noisy %.1f dB, denoised %.1f dB, want 5 dB better", i, before, after)
		}
	}
}

// Fit prepares a digit of another size; without it the server refuses one.
func TestRealFit(t *testing.T) {
	c := realServer(t)
	ctx := t.Context()
	pngs, labels := testDigits(t, 0, 1)
	px := grey(t, pngs[0])
	big := image.NewGray(image.Rect(0, 0, 84, 84))
	for y := range 84 {
		for x := range 84 {
			big.Pix[y*84+x] = 255 - uint8(px[(y/3)*28+x/3]*255+0.5) // dark on light, as on paper
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, big); err != nil {
		t.Fatal(err)
	}
	_, err := c.Reconstruct(ctx, api.ImageOptions{}, buf.Bytes())
	wantProblem(t, err, http.StatusUnprocessableEntity, "unprocessable")
	out, err := c.Reconstruct(ctx, api.ImageOptions{Fit: true}, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	grey(t, out[0])
	if _, err := c.Encode(ctx, api.EncodeOptions{Fit: true}, buf.Bytes()); err != nil {
		t.Errorf("encode with Fit: %v", err)
	}
	res, err := c.Classify(ctx, api.ClassifyOptions{Fit: true}, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if res.Results[0].Digit != int(labels[0]) {
		t.Errorf("fitted digit classified %d, label %d", res.Results[0].Digit, labels[0])
	}
}

func TestRealModels(t *testing.T) {
	c := realServer(t)
	ctx := t.Context()
	ml, err := c.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ml.Models {
		names = append(names, m.Name)
	}
	for _, want := range []string{"classifier", "conv", "deep", "dense", "denoise", "sparse"} {
		if !slices.Contains(names, want) {
			t.Errorf("models %v lack %s", names, want)
		}
	}
	if ml.SchemaVersion != api.SchemaVersion || ml.Default != "conv" {
		t.Errorf("schema %d, default %q", ml.SchemaVersion, ml.Default)
	}
	for _, m := range ml.Models {
		one, err := c.Model(ctx, m.Name)
		if err != nil {
			t.Fatal(err)
		}
		if one.Name != m.Name || one.Fingerprint != m.Fingerprint || one.Task != m.Task {
			t.Errorf("GET /v1/models/%s: %s %s %s, the list says %s %s", m.Name, one.Name, one.Task, one.Fingerprint, m.Task, m.Fingerprint)
		}
	}
	conv, err := c.Model(ctx, "conv")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(conv.LatentShape, []int{32, 7, 7}) || conv.Code == nil || conv.Code.BinaryBytes != 6287 || conv.TrainedOnNoise {
		t.Errorf("conv: latent %v, code %+v, trained on noise %v", conv.LatentShape, conv.Code, conv.TrainedOnNoise)
	}
	// The name is one path segment, escaped: it never reaches another route.
	for _, name := range []string{"nope", "conv/../classifier", "a b"} {
		_, err := c.Model(ctx, name)
		p := wantProblem(t, err, http.StatusNotFound, "unknown-model")
		if !strings.Contains(p.Detail, "(have classifier, ") {
			t.Errorf("model %q: detail %q does not list the models", name, p.Detail)
		}
	}
}

// The server's problems arrive as *api.Problem, whole.
func TestRealProblems(t *testing.T) {
	c := realServer(t)
	ctx := t.Context()
	pngs, _ := testDigits(t, 0, 2)

	_, err := c.Encode(ctx, api.EncodeOptions{Model: "nope"}, pngs[0])
	p := wantProblem(t, err, http.StatusNotFound, "unknown-model")
	if !strings.HasPrefix(err.Error(), `404 Not Found: no model named "nope" (have classifier, `) || p.Index != nil || p.Title != "Unknown model" {
		t.Errorf("unknown model: %v (%+v)", err, p)
	}

	// The second image of a batch is a truncated PNG: the whole batch
	// fails, and the problem says which image.
	_, err = c.Reconstruct(ctx, api.ImageOptions{}, pngs[0], pngs[1][:len(pngs[1])/2], pngs[1])
	p = wantProblem(t, err, http.StatusBadRequest, "malformed")
	if p.Index == nil || *p.Index != 1 || !strings.HasPrefix(err.Error(), "400 Bad Request: image 1: ") || strings.Contains(err.Error(), "(image 1)") {
		t.Errorf("bad second image: %v, index %v", err, p.Index)
	}
	// Bytes of no image format: 415, naming the formats taken.
	_, err = c.Reconstruct(ctx, api.ImageOptions{}, pngs[0], []byte("this is not an image at all"))
	p = wantProblem(t, err, http.StatusUnsupportedMediaType, "unsupported-media-type")
	if p.Index == nil || *p.Index != 1 || !strings.Contains(err.Error(), "PNG, JPEG or GIF") {
		t.Errorf("not an image: %v, index %v", err, p.Index)
	}

	_, err = c.Denoise(ctx, api.ImageOptions{Model: "classifier"}, pngs[0])
	wantProblem(t, err, http.StatusBadRequest, "unsupported-operation")

	// A latent of the right shape from weights the server does not have.
	l := &api.Latent{Fingerprint: "0123456789abcdef", Shape: []int{1, 32, 7, 7}, DType: api.DTypeFloat32, Data: make([]float32, 1568)}
	for _, enc := range []api.LatentEncoding{api.LatentBinary, api.LatentJSON} {
		_, err = c.Decode(ctx, l, api.DecodeOptions{Encoding: enc})
		wantProblem(t, err, http.StatusConflict, "model-mismatch")
	}
	// The wrong shape for the model that made the fingerprint.
	good, err := c.Encode(ctx, api.EncodeOptions{}, pngs[0])
	if err != nil {
		t.Fatal(err)
	}
	l.Fingerprint, l.Shape, l.Data = good.Fingerprint, []int{1, 32}, make([]float32, 32)
	_, err = c.Decode(ctx, l, api.DecodeOptions{})
	wantProblem(t, err, http.StatusUnprocessableEntity, "unprocessable")
	// NaN travels in binary (and is refused by the server), not in JSON.
	good.Data[5] = float32(math.NaN())
	_, err = c.Decode(ctx, good, api.DecodeOptions{})
	wantProblem(t, err, http.StatusUnprocessableEntity, "unprocessable")
	if _, err = c.Decode(ctx, good, api.DecodeOptions{Encoding: api.LatentJSON}); err == nil || errors.As(err, new(*api.Problem)) {
		t.Errorf("NaN in a JSON latent: %v, want an error before sending", err)
	}
}

// Score returns a score per image, and the inputs when asked; the test
// digits' scores sit in the model's published distribution.
func TestRealScore(t *testing.T) {
	c := realServer(t)
	ctx := t.Context()
	pngs, _ := testDigits(t, 0, 3)
	sc, err := c.Score(ctx, api.ScoreOptions{Model: "dense", IncludeInput: true}, pngs...)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Model != "dense" || len(sc.Scores) != 3 || len(sc.Inputs) != 3 {
		t.Fatalf("%+v", sc)
	}
	info, err := c.Model(ctx, "dense")
	if err != nil {
		t.Fatal(err)
	}
	d := info.Metrics.Scores
	for i, s := range sc.Scores {
		if s.MSE <= 0 || s.MSE > d.MSE.Max || s.BCE <= 0 || s.BCE > d.BCE.Max {
			t.Errorf("digit %d: %+v, outside the test digits' range (max MSE %g, BCE %g)", i, s, d.MSE.Max, d.BCE.Max)
		}
	}
	_, err = c.Score(ctx, api.ScoreOptions{Model: "classifier"}, pngs[0])
	wantProblem(t, err, http.StatusBadRequest, "unsupported-operation")
}

// Sample and Interpolate: the seed fixes the digits and comes back; the
// interpolation's ends are the images' reconstructions; bounds and models
// that cannot are problems.
func TestRealSampleInterpolate(t *testing.T) {
	c := realServer(t)
	ctx := t.Context()
	seed := int64(42)
	a, used, err := c.Sample(ctx, api.SampleOptions{N: 5, Seed: &seed})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := c.Sample(ctx, api.SampleOptions{Model: "vae", N: 5, Seed: &seed})
	if err != nil {
		t.Fatal(err)
	}
	if used != 42 || len(a) != 5 || !slices.EqualFunc(a, b, bytes.Equal) {
		t.Fatalf("seed 42 twice: seed %d, %d and %d digits, equal %v", used, len(a), len(b), slices.EqualFunc(a, b, bytes.Equal))
	}
	for _, p := range a {
		grey(t, p)
	}
	d, chosen, err := c.Sample(ctx, api.SampleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := c.Sample(ctx, api.SampleOptions{Seed: &chosen})
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != api.DefaultSamples || !slices.EqualFunc(d, again, bytes.Equal) {
		t.Errorf("the server's seed %d: %d digits, which it does not draw again", chosen, len(d))
	}

	pngs, _ := testDigits(t, 10, 2)
	steps, err := c.Interpolate(ctx, api.InterpolateOptions{K: 4}, pngs[0], pngs[1])
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.Reconstruct(ctx, api.ImageOptions{Model: "vae"}, pngs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 4 || maxGreyDiff(grey(t, steps[0]), grey(t, rec[0])) != 0 || maxGreyDiff(grey(t, steps[3]), grey(t, rec[1])) > 1 {
		t.Errorf("%d steps, not from the first image's reconstruction to the second's", len(steps))
	}

	_, _, err = c.Sample(ctx, api.SampleOptions{N: api.MaxSamples + 1})
	wantProblem(t, err, http.StatusBadRequest, "malformed")
	_, _, err = c.Sample(ctx, api.SampleOptions{Model: "conv"})
	wantProblem(t, err, http.StatusBadRequest, "unsupported-operation")
	_, err = c.Interpolate(ctx, api.InterpolateOptions{K: 1}, pngs[0], pngs[1])
	wantProblem(t, err, http.StatusBadRequest, "malformed")
	_, err = c.Interpolate(ctx, api.InterpolateOptions{Model: "dense"}, pngs[0], pngs[1])
	wantProblem(t, err, http.StatusBadRequest, "unsupported-operation")
	if _, err = c.Interpolate(ctx, api.InterpolateOptions{}, pngs[0], nil); err == nil {
		t.Error("one image: no error")
	}
}
