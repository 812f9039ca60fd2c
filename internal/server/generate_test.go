package server

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/model"
)

// gridOf decodes a grid answer: a grey PNG of whole 28×28 cells.
func gridOf(t testing.TB, r *reply) *image.Gray {
	t.Helper()
	if r.mediaType() != ctPNG {
		t.Fatalf("Content-Type %q, want %s", r.Header.Get("Content-Type"), ctPNG)
	}
	img, err := png.Decode(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	g, ok := img.(*image.Gray)
	if !ok {
		t.Fatalf("grid is %T, want *image.Gray", img)
	}
	return g
}

// cell is the 28×28 grey levels of a grid's cell k, cols to a row.
func cell(g *image.Gray, k, cols int) []uint8 {
	out := make([]uint8, 0, model.ImageLen)
	x0, y0 := (k%cols)*model.ImageSide, (k/cols)*model.ImageSide
	for y := range model.ImageSide {
		out = append(out, g.Pix[(y0+y)*g.Stride+x0:(y0+y)*g.Stride+x0+model.ImageSide]...)
	}
	return out
}

// /v1/sample decodes the prior's draws from the seed: the same seed, the
// same digits, as a grid or one PNG each; the decoder run here on the same
// draws gives the same images.
func TestSampleIsAFunctionOfItsSeed(t *testing.T) {
	e := newEnv(t)
	a := e.post("/v1/sample?seed=1", "", nil)
	b := e.post("/v1/sample?seed=1&n=8&model=vae", "", nil)
	wantStatus(t, a, http.StatusOK)
	wantStatus(t, b, http.StatusOK)
	if !bytes.Equal(a.body, b.body) || a.Header.Get(HeaderSeed) != "1" || a.Header.Get(HeaderModel) != "vae" {
		t.Fatalf("seed 1 twice: equal %v, X-Seed %q, X-Model %q", bytes.Equal(a.body, b.body), a.Header.Get(HeaderSeed), a.Header.Get(HeaderModel))
	}
	g := gridOf(t, a)
	if g.Bounds() != image.Rect(0, 0, 8*28, 28) {
		t.Fatalf("8 samples: grid %v, want 224×28", g.Bounds())
	}
	want := runHere(t, "vae", model.Decoder, model.PriorSample(8, 20, 1), 8)
	js := e.post("/v1/sample?seed=1", "", nil, "Accept", ctJSON)
	wantStatus(t, js, http.StatusOK)
	im := imagesOf(t, js)
	if len(im.Images) != 8 || im.Model != "vae" || im.Fingerprint != a.Header.Get(HeaderFingerprint) {
		t.Fatalf("JSON answer: %d images of %s %s", len(im.Images), im.Model, im.Fingerprint)
	}
	for k, s := range im.Images {
		one := pngPixels(t, b64(t, s))
		alone, err := digit.EncodePNG(want[k*model.ImageLen : (k+1)*model.ImageLen])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(one, cell(g, k, 8)) || maxDiff(one, pngPixels(t, alone)) > 0 {
			t.Fatalf("sample %d: the JSON image, the grid's cell and the decoder's own output differ", k)
		}
	}
	if other := e.post("/v1/sample?seed=2", "", nil); bytes.Equal(other.body, a.body) {
		t.Error("seeds 1 and 2 drew the same digits")
	}
	// Without a seed the server chooses one, and says which: asking with
	// it gives the same digits again.
	c := e.post("/v1/sample?n=3", "", nil)
	wantStatus(t, c, http.StatusOK)
	seed := c.Header.Get(HeaderSeed)
	if _, err := strconv.ParseInt(seed, 10, 64); err != nil {
		t.Fatalf("X-Seed %q", seed)
	}
	if again := e.post("/v1/sample?n=3&seed="+seed, "", nil); !bytes.Equal(again.body, c.body) {
		t.Errorf("seed %s chosen by the server does not give its digits again", seed)
	}
}

// n and the grid's size: one digit is a plain 28×28 PNG, 64 a full 8×8 grid,
// and 10 a row and a bit.
func TestSampleGridSizes(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		n    int
		w, h int
	}{{1, 28, 28}, {3, 84, 28}, {10, 224, 56}, {64, 224, 224}} {
		r := e.post("/v1/sample?seed=7&n="+strconv.Itoa(tc.n), "", nil)
		wantStatus(t, r, http.StatusOK)
		if g := gridOf(t, r); g.Bounds() != image.Rect(0, 0, tc.w, tc.h) {
			t.Errorf("n=%d: grid %v, want %d×%d", tc.n, g.Bounds(), tc.w, tc.h)
		}
	}
	r := e.post("/v1/sample?model=vae2&n=64&seed=3", "", nil, "Accept", ctJSON)
	wantStatus(t, r, http.StatusOK)
	if im := imagesOf(t, r); len(im.Images) != 64 || im.Model != "vae2" {
		t.Errorf("vae2, n=64: %d images from %s", len(im.Images), im.Model)
	}
}

// What /v1/sample and /v1/interpolate refuse, and how.
func TestGenerateRefusals(t *testing.T) {
	e := newEnv(t)
	two, twoType := multipartBody(t, imageField, mustPNG(t, 1), mustPNG(t, 2))
	one, oneType := multipartBody(t, imageField, mustPNG(t, 1))
	three, threeType := multipartBody(t, imageField, mustPNG(t, 1), mustPNG(t, 2), mustPNG(t, 3))
	for _, tc := range []struct {
		name, path, ctype string
		body              []byte
		header            []string
		status            int
		kind, detail      string
	}{
		{"n=0", "/v1/sample?n=0", "", nil, nil, 400, kindMalformed, "from 1 to 64"},
		{"n=65", "/v1/sample?n=65", "", nil, nil, 400, kindMalformed, "from 1 to 64"},
		{"n not a number", "/v1/sample?n=eight", "", nil, nil, 400, kindMalformed, "from 1 to 64"},
		{"negative seed", "/v1/sample?seed=-1", "", nil, nil, 400, kindMalformed, "not a seed"},
		{"seed too large", "/v1/sample?seed=9223372036854775808", "", nil, nil, 400, kindMalformed, "not a seed"},
		{"unknown parameter", "/v1/sample?k=3", "", nil, nil, 400, kindMalformed, "model, n, seed"},
		{"a body", "/v1/sample", ctJSON, []byte(`{}`), nil, 400, kindMalformed, "takes no body"},
		{"an image body", "/v1/sample", ctPNG, mustPNG(t, 1), nil, 400, kindMalformed, "takes no body"},
		{"sample with conv", "/v1/sample?model=conv", "", nil, nil, 400, kindUnsupported, "Gaussian code"},
		{"sample with the classifier", "/v1/sample?model=classifier", "", nil, nil, 400, kindUnsupported, "cannot sample"},
		{"unknown model", "/v1/sample?model=nope", "", nil, nil, 404, kindUnknownModel, "nope"},
		{"sample, Accept nothing it makes", "/v1/sample", "", nil, []string{"Accept", ctBinary}, 406, kindNotAcceptable, "image/png"},
		{"k=1", "/v1/interpolate?k=1", twoType, two, nil, 400, kindMalformed, "from 2 to 64"},
		{"k=65", "/v1/interpolate?k=65", twoType, two, nil, 400, kindMalformed, "from 2 to 64"},
		{"one image", "/v1/interpolate", oneType, one, nil, 400, kindMalformed, "exactly two images"},
		{"three images", "/v1/interpolate", threeType, three, nil, 400, kindMalformed, "(got 3)"},
		{"a raw image is one", "/v1/interpolate", ctPNG, mustPNG(t, 1), nil, 400, kindMalformed, "exactly two images"},
		{"interpolate with conv", "/v1/interpolate?model=conv", twoType, two, nil, 400, kindUnsupported, "Gaussian code"},
		{"interpolate, not images", "/v1/interpolate", ctJSON, []byte(`{}`), nil, 415, kindMediaType, "image/png"},
		{"interpolate, include", "/v1/interpolate?include=input", twoType, two, nil, 400, kindMalformed, "model, k, fit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(tc.path, tc.ctype, tc.body, tc.header...)
			wantStatus(t, r, tc.status)
			p := r.problem(t)
			if p.Type != ProblemTypeBase+tc.kind || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("problem %s %q, want %s mentioning %q", p.Type, p.Detail, tc.kind, tc.detail)
			}
		})
	}
}

// /v1/interpolate: k digits from the first image's reconstruction to the
// second's, as a grid or one PNG each.
func TestInterpolateRunsFromFirstToSecond(t *testing.T) {
	e := newEnv(t)
	pngs := [][]byte{mustPNG(t, 3), mustPNG(t, 4)}
	r := e.postImages("/v1/interpolate", pngs)
	wantStatus(t, r, http.StatusOK)
	if r.Header.Get(HeaderModel) != "vae" {
		t.Errorf("X-Model %q, want vae", r.Header.Get(HeaderModel))
	}
	g := gridOf(t, r)
	if g.Bounds() != image.Rect(0, 0, 8*28, 28) {
		t.Fatalf("k=8: grid %v, want 224×28", g.Bounds())
	}
	ends := e.postImages("/v1/reconstruct?model=vae", pngs)
	wantStatus(t, ends, http.StatusOK)
	rec := imagesOf(t, ends)
	// The ends are the images' reconstructions (from the mean); the last
	// may be a grey level off, as a + 1·(b − a) need not be b in float32.
	if d := maxDiff(cell(g, 0, 8), pngPixels(t, b64(t, rec.Images[0]))); d != 0 {
		t.Errorf("the first digit is %d grey levels from the first image's reconstruction", d)
	}
	if d := maxDiff(cell(g, 7, 8), pngPixels(t, b64(t, rec.Images[1]))); d > 1 {
		t.Errorf("the last digit is %d grey levels from the second image's reconstruction", d)
	}
	if maxDiff(cell(g, 3, 8), cell(g, 0, 8)) < 10 || maxDiff(cell(g, 3, 8), cell(g, 7, 8)) < 10 {
		t.Error("a digit halfway is one of the ends")
	}
	js := e.postImages("/v1/interpolate?k=5&model=vae2", pngs, "Accept", ctJSON)
	wantStatus(t, js, http.StatusOK)
	if im := imagesOf(t, js); len(im.Images) != 5 || im.Model != "vae2" {
		t.Errorf("k=5 with vae2: %d images from %s", len(im.Images), im.Model)
	}
	// 64 steps make an 8×8 grid; a raw body cannot carry two images, but
	// fit=true takes any image.
	wantStatus(t, e.postImages("/v1/interpolate?k=64&fit=true", pngs), http.StatusOK)
	if g := gridOf(t, e.postImages("/v1/interpolate?k=64", pngs)); g.Bounds() != image.Rect(0, 0, 224, 224) {
		t.Errorf("k=64: grid %v", g.Bounds())
	}
}

// /v1/encode?include=logvar: the JSON latent carries the Gaussian code's
// log-variance beside its mean, which is the plain latent; the binary
// latent cannot (406), nor can a model without a Gaussian code (400).
func TestEncodeIncludeLogvar(t *testing.T) {
	e := newEnv(t)
	pngs := [][]byte{mustPNG(t, 5), mustPNG(t, 6)}
	plain := e.postImages("/v1/encode?model=vae", pngs)
	wantStatus(t, plain, http.StatusOK)
	var mean api.Latent
	if err := json.Unmarshal(plain.body, &mean); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(mean.Shape, []int{2, 20}) {
		t.Fatalf("vae latent shape %v, want [2 20]", mean.Shape)
	}
	for _, include := range []string{"logvar", "input,logvar", "logvar,input"} {
		r := e.postImages("/v1/encode?model=vae&include="+include, pngs)
		wantStatus(t, r, http.StatusOK)
		var got struct {
			api.Latent
			Logvar []float32 `json:"logvar"`
			Inputs []string  `json:"inputs"`
		}
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Data, mean.Data) || !slices.Equal(got.Shape, mean.Shape) {
			t.Errorf("include=%s: the latent is not the plain one, the mean", include)
		}
		if len(got.Logvar) != len(mean.Data) || slices.Equal(got.Logvar, got.Data) {
			t.Errorf("include=%s: %d log-variances for %d numbers", include, len(got.Logvar), len(mean.Data))
		}
		if wantInputs := strings.Contains(include, "input"); (len(got.Inputs) == 2) != wantInputs {
			t.Errorf("include=%s: %d inputs", include, len(got.Inputs))
		}
		// A confident encoder: posterior variances below the prior's.
		for i, lv := range got.Logvar {
			if !(lv < 0.5) {
				t.Errorf("include=%s: log-variance %d is %v", include, i, lv)
				break
			}
		}
	}
	post := runHere(t, "vae", model.Posterior, append(mustPixels(t, 5), mustPixels(t, 6)...), 2)
	if post[0] != mean.Data[0] || post[40] != mean.Data[20] {
		t.Error("the latent is not the posterior's mean")
	}
	for _, tc := range []struct {
		path, accept string
		status       int
		kind, detail string
	}{
		{"/v1/encode?model=vae&include=logvar", ctBinary, 406, kindNotAcceptable, "application/json"},
		{"/v1/encode?model=vae&include=input,logvar", ctBinary, 406, kindNotAcceptable, "application/json"},
		{"/v1/encode?model=conv&include=logvar", "", 400, kindUnsupported, "no Gaussian code"},
		{"/v1/encode?model=vae&include=logvar,logvar", "", 400, kindMalformed, "twice"},
		{"/v1/encode?model=vae&include=input,input", "", 400, kindMalformed, "twice"},
		{"/v1/encode?model=vae&include=logvar,", "", 400, kindMalformed, "not known"},
		{"/v1/encode?model=vae&include=mean", "", 400, kindMalformed, "not known"},
		{"/v1/reconstruct?model=vae&include=logvar", "", 400, kindMalformed, "not taken by this route"},
		{"/v1/score?model=vae&include=logvar", "", 400, kindMalformed, "not taken by this route"},
		{"/v1/classify?include=logvar", "", 400, kindMalformed, "not taken by this route"},
	} {
		var header []string
		if tc.accept != "" {
			header = []string{"Accept", tc.accept}
		}
		r := e.postImages(tc.path, pngs[:1], header...)
		wantStatus(t, r, tc.status)
		if p := r.problem(t); p.Type != ProblemTypeBase+tc.kind || !strings.Contains(p.Detail, tc.detail) {
			t.Errorf("%s (Accept %q): problem %s %q, want %s mentioning %q", tc.path, tc.accept, p.Type, p.Detail, tc.kind, tc.detail)
		}
	}
}

// The decoder role draws samples (it needs only the decoder), and sends
// interpolation to a server of role all; the encoder role serves neither.
func TestGenerateRoles(t *testing.T) {
	full := newEnv(t)
	dec := newRoleEnv(t, RoleDecoder)
	enc := newRoleEnv(t, RoleEncoder)
	want := full.post("/v1/sample?seed=5&n=4", "", nil)
	got := dec.post("/v1/sample?seed=5&n=4", "", nil)
	wantStatus(t, want, http.StatusOK)
	wantStatus(t, got, http.StatusOK)
	if !bytes.Equal(want.body, got.body) {
		t.Error("the decoder role's samples differ from the full server's")
	}
	pngs := [][]byte{mustPNG(t, 3), mustPNG(t, 4)}
	for _, tc := range []struct {
		e     *env
		role  Role
		path  string
		pngs  [][]byte
		route string
	}{
		{enc, RoleEncoder, "/v1/sample", nil, "sample"},
		{dec, RoleDecoder, "/v1/interpolate", pngs, "interpolate"},
		{enc, RoleEncoder, "/v1/interpolate", pngs, "interpolate"},
	} {
		var r *reply
		if tc.pngs == nil {
			r = tc.e.post(tc.path, "", nil)
		} else {
			r = tc.e.postImages(tc.path, tc.pngs)
		}
		wantStatus(t, r, http.StatusNotFound)
		if p := r.problem(t); p.Type != ProblemTypeBase+kindNotServedByRole || !strings.Contains(p.Detail, "role "+string(tc.role)) {
			t.Errorf("role %s, %s: problem %+v", tc.role, tc.route, p)
		}
	}
	// What /v1/models says each role can do with the VAE.
	for _, tc := range []struct {
		e   *env
		ops []string
	}{
		{full, []string{"encode", "decode", "reconstruct", "denoise", "score", "sample", "interpolate"}},
		{dec, []string{"decode", "sample"}},
		{enc, []string{"encode"}},
	} {
		r := tc.e.get("/v1/models/vae")
		wantStatus(t, r, http.StatusOK)
		var info api.ModelInfo
		if err := json.Unmarshal(r.body, &info); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(info.Operations, tc.ops) {
			t.Errorf("operations %v, want %v", info.Operations, tc.ops)
		}
	}
}

// /v1/models describes the VAE: its latent is the mean, a posterior stage
// gives both halves of the code, and its metrics are the ELBO's and the
// samples'.
func TestModelInfoOfAVAE(t *testing.T) {
	e := newEnv(t)
	r := e.get("/v1/models/vae")
	wantStatus(t, r, http.StatusOK)
	var info api.ModelInfo
	if err := json.Unmarshal(r.body, &info); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.LatentShape, []int{20}) || info.Code == nil || info.Code.Numbers != 20 {
		t.Errorf("latent %v, code %+v", info.LatentShape, info.Code)
	}
	if !slices.Equal(info.Halves, []string{"encoder", "decoder", "full", "posterior"}) {
		t.Errorf("halves %v", info.Halves)
	}
	var post *api.StageInfo
	for i := range info.Stages {
		if info.Stages[i].Name == "posterior" {
			post = &info.Stages[i]
		}
	}
	if post == nil || !slices.Equal(post.OutputShape, []int{2, 20}) {
		t.Errorf("posterior stage %+v", post)
	}
	m := info.Metrics
	if m == nil || m.NegELBOnats == nil || m.KLnats == nil || !(*m.KLnats > 0 && *m.KLnats < *m.NegELBOnats) {
		t.Fatalf("metrics %+v", m)
	}
	if m.Samples == nil || m.Samples.Samples != 1000 || len(m.Samples.Digits) != 10 {
		t.Errorf("sample figures %+v", m.Samples)
	}
}

// A Gaussian code's posterior is a V2 model too: vae.posterior answers the
// means then the log-variances, [N, 2, 20], the means being /v1/encode's.
func TestV2Posterior(t *testing.T) {
	e := newEnv(t)
	r := e.get("/v2/models/vae.posterior")
	wantStatus(t, r, http.StatusOK)
	var mm v2ModelMetadata
	if err := json.Unmarshal(r.body, &mm); err != nil {
		t.Fatal(err)
	}
	if len(mm.Outputs) != 1 || mm.Outputs[0].Name != v2TensorPosterior || !slices.Equal(mm.Outputs[0].Shape, []int64{-1, 2, 20}) {
		t.Fatalf("metadata %+v", mm)
	}
	px, _ := mnistDigit(t, 12)
	r = e.post("/v2/models/vae.posterior/infer", ctJSON, v2Body("p", "images", []int{1, 784}, px))
	wantStatus(t, r, http.StatusOK)
	out := v2Decode(t, r).Outputs[0]
	l := encodeLatent(t, e, "vae", 12)
	if !slices.Equal(out.Shape, []int{1, 2, 20}) || out.Parameters[v2ParamFingerprint] != l.Fingerprint {
		t.Fatalf("output %+v", out)
	}
	for i, v := range l.Data {
		if float32(out.Data[i]) != v {
			t.Fatalf("mean %d: %v through V2, %v through /v1/encode", i, out.Data[i], v)
		}
	}
	for _, path := range []string{"/v2/models/conv.posterior", "/v2/models/vae.full", "/v2/models/classifier.posterior"} {
		wantStatus(t, e.get(path), http.StatusNotFound)
	}
}
