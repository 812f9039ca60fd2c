package server

import (
	"encoding/json"
	"math"
	"math/rand"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/mnistdata"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/train"
)

var (
	labelsOnce sync.Once
	labels     []uint8
	labelsErr  error
)

// mnistLabel is test digit i's label.
func mnistLabel(t testing.TB, i int) int {
	t.Helper()
	labelsOnce.Do(func() {
		dir, _, err := mnistdata.Dir()
		if err != nil {
			labelsErr = err
			return
		}
		labels, labelsErr = train.ReadLabels(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"))
	})
	if labelsErr != nil {
		t.Fatalf("MNIST test labels are required: %v", labelsErr)
	}
	return int(labels[i])
}

// noisyPNG is test digit i with the denoiser's training noise, seeded.
func noisyPNG(t testing.TB, i int) ([]float32, []byte) {
	t.Helper()
	px, _ := mnistDigit(t, i)
	noisy := make([]float32, len(px))
	train.AddNoise(noisy, px, 0.5, rand.New(rand.NewSource(int64(1000+i))))
	b, err := digit.EncodePNG(noisy)
	if err != nil {
		t.Fatal(err)
	}
	q, err := digit.Decode(b, digit.Limits{}, digit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return q, b
}

// runHere runs stage h of a loaded model in-process.
func runHere(t testing.TB, name string, h model.Half, px []float32, n int) []float32 {
	t.Helper()
	for _, m := range loadModels(t) {
		if m.Name != name {
			continue
		}
		r, err := m.NewRunner(h)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		out, err := r.Run(px, n)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	t.Fatalf("model %s is not embedded", name)
	return nil
}

func classification(t testing.TB, r *reply) api.Classification {
	t.Helper()
	var c api.Classification
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// The classifier reads real test digits: one image answers a Classification,
// several answer Classifications in order, each equal to the image alone and
// to the same weights run here, with probabilities that sum to 1.
func TestClassify(t *testing.T) {
	e := newEnv(t)
	const n = 40
	var pngs [][]byte
	correct := 0
	for i := range n {
		pngs = append(pngs, mustPNG(t, 200+i))
	}
	r := e.postImages("/v1/classify", pngs)
	wantStatus(t, r, http.StatusOK)
	if r.Header.Get(HeaderModel) != "classifier" || r.Header.Get(HeaderDenoiser) != "" {
		t.Errorf("headers %v", r.Header)
	}
	var batch api.Classifications
	if err := json.Unmarshal(r.body, &batch); err != nil {
		t.Fatal(err)
	}
	if len(batch.Results) != n || batch.Model != "classifier" || batch.Denoiser != "" {
		t.Fatalf("answer %+v", batch)
	}
	for i, res := range batch.Results {
		var sum float64
		for _, p := range res.Probabilities {
			sum += float64(p)
		}
		if len(res.Probabilities) != 10 || math.Abs(sum-1) > 1e-4 || res.Digit != slices.Index(res.Probabilities, slices.Max(res.Probabilities)) {
			t.Errorf("result %d: %+v (sum %v)", i, res, sum)
		}
		if res.Digit == mnistLabel(t, 200+i) {
			correct++
		}
	}
	if correct < n*9/10 {
		t.Errorf("%d of %d test digits classified correctly", correct, n)
	}
	for _, i := range []int{0, 17} {
		one := e.post("/v1/classify", ctPNG, pngs[i])
		wantStatus(t, one, http.StatusOK)
		c := classification(t, one)
		px, _ := mnistDigit(t, 200+i)
		here := runHere(t, "classifier", model.Classifier, px, 1)
		if c.Digit != batch.Results[i].Digit || !slices.Equal(c.Probabilities, batch.Results[i].Probabilities) {
			t.Errorf("image %d alone: %+v, in the batch %+v", i, c.Result, batch.Results[i])
		}
		for k, p := range here {
			if math.Abs(float64(p-c.Probabilities[k])) > 1e-6 {
				t.Fatalf("image %d: probability %d is %v served, %v here", i, k, c.Probabilities[k], p)
			}
		}
	}
}

// classify?denoise=true runs the denoiser's full model, then the classifier
// on its output, exactly as the two run here; the answer and the headers
// name both models.
func TestClassifyDenoised(t *testing.T) {
	e := newEnv(t)
	for _, i := range []int{3, 301} {
		px, png := noisyPNG(t, i)
		r := e.post("/v1/classify?denoise=true", ctPNG, png)
		wantStatus(t, r, http.StatusOK)
		c := classification(t, r)
		if c.Denoiser != "denoise" || c.DenoiserFingerprint == "" || r.Header.Get(HeaderDenoiser) != "denoise" ||
			r.Header.Get(HeaderDenoiserFingerprint) != c.DenoiserFingerprint || r.Header.Get(HeaderModel) != "classifier" {
			t.Errorf("answer %+v, headers %v", c, r.Header)
		}
		clean := runHere(t, "denoise", model.Full, px, 1)
		here := runHere(t, "classifier", model.Classifier, clean, 1)
		for k, p := range here {
			if math.Abs(float64(p-c.Probabilities[k])) > 1e-6 {
				t.Fatalf("digit %d: probability %d is %v served, %v here", i, k, c.Probabilities[k], p)
			}
		}
		named := e.post("/v1/classify?denoise=true&denoiser=denoise", ctPNG, png)
		wantStatus(t, named, http.StatusOK)
		if !slices.Equal(classification(t, named).Probabilities, c.Probabilities) {
			t.Errorf("denoiser=denoise differs from the default denoiser")
		}
	}
}

// One rule for every route: a model that cannot do what the route does
// answers 400 unsupported-operation naming what it can do.
func TestUnsupportedOperation(t *testing.T) {
	e := newEnv(t)
	img := mustPNG(t, 5)
	latent := latentBinary(t, encodeLatent(t, e, "conv", 5))
	for _, tc := range []struct {
		path, ctype string
		body        []byte
		status      int
		kind        string
		detail      string
	}{
		{"/v1/classify?model=conv", ctPNG, img, 400, kindUnsupported, "model conv (autoencoder) cannot classify; here it can encode, decode, reconstruct, denoise"},
		{"/v1/classify?model=dense", ctPNG, img, 400, kindUnsupported, "cannot classify"},
		{"/v1/encode?model=classifier", ctPNG, img, 400, kindUnsupported, "model classifier (classifier) cannot encode; here it can classify"},
		{"/v1/reconstruct?model=classifier", ctPNG, img, 400, kindUnsupported, "cannot reconstruct"},
		{"/v1/denoise?model=classifier", ctPNG, img, 400, kindUnsupported, "cannot denoise"},
		{"/v1/decode?model=classifier", ctBinary, latent, 400, kindUnsupported, "cannot decode"},
		{"/v1/classify?denoiser=denoise", ctPNG, img, 400, kindMalformed, "without denoise=true"},
		{"/v1/classify?denoise=true&denoiser=conv", ctPNG, img, 400, kindUnsupported, "model conv was not trained on noise"},
		{"/v1/classify?denoise=true&denoiser=classifier", ctPNG, img, 400, kindUnsupported, "not trained on noise"},
		{"/v1/classify?denoise=true&denoiser=nope", ctPNG, img, 404, kindUnknownModel, `"nope"`},
		{"/v1/classify?denoise=maybe", ctPNG, img, 400, kindMalformed, `denoise="maybe"`},
		// A clean autoencoder still answers /v1/denoise: it shows what it makes of noise.
		{"/v1/denoise?model=conv", ctPNG, img, 200, "", ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := e.post(tc.path, tc.ctype, tc.body)
			wantStatus(t, r, tc.status)
			if tc.status == 200 {
				return
			}
			if p := r.problem(t); p.Type != ProblemTypeBase+tc.kind || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("problem %+v, want %s with %q", p, tc.kind, tc.detail)
			}
		})
	}
	wantStatus(t, e.post("/v1/classify", ctPNG, img, "Accept", ctPNG), http.StatusNotAcceptable)
}

// /v1/models says what each model is and can do.
func TestModelsDescribeEveryKind(t *testing.T) {
	e := newEnv(t)
	var list api.ModelList
	if err := json.Unmarshal(e.get("/v1/models").body, &list); err != nil {
		t.Fatal(err)
	}
	byName := map[string]api.ModelInfo{}
	for _, m := range list.Models {
		byName[m.Name] = m
	}
	for _, tc := range []struct {
		name   string
		task   string
		noise  bool
		latent []int
		ops    []string
	}{
		{"conv", api.TaskAutoencoder, false, []int{32, 7, 7}, []string{"encode", "decode", "reconstruct", "denoise", "score"}},
		{"denoise", api.TaskAutoencoder, true, []int{32, 7, 7}, []string{"encode", "decode", "reconstruct", "denoise", "score"}},
		{"dense", api.TaskAutoencoder, false, []int{32}, []string{"encode", "decode", "reconstruct", "denoise", "score"}},
		{"classifier", api.TaskClassifier, false, nil, []string{"classify"}},
	} {
		m, ok := byName[tc.name]
		if !ok {
			t.Errorf("%s is not listed", tc.name)
			continue
		}
		if m.Task != tc.task || m.TrainedOnNoise != tc.noise || !slices.Equal(m.LatentShape, tc.latent) || !slices.Equal(m.Operations, tc.ops) {
			t.Errorf("%s: %+v", tc.name, m)
		}
		if tc.latent != nil {
			n := 1
			for _, d := range tc.latent {
				n *= d
			}
			if m.Code == nil || m.Code.Numbers != n || m.Code.BinaryBytes != api.BinarySize(append([]int{1}, tc.latent...), api.DTypeFloat32) {
				t.Errorf("%s: code %+v", tc.name, m.Code)
			}
		}
		if tc.task == api.TaskClassifier && (m.Classes != 10 || m.Metrics == nil || m.Metrics.Accuracy == nil || *m.Metrics.Accuracy < 0.99) {
			t.Errorf("%s: classes %d, metrics %+v", tc.name, m.Classes, m.Metrics)
		}
	}
	// A dense model's latents go both ways in its own shape.
	l := encodeLatent(t, e, "dense", 7)
	if !slices.Equal(l.Shape, []int{1, 32}) {
		t.Fatalf("dense latent shape %v", l.Shape)
	}
	wantStatus(t, e.post("/v1/decode", ctBinary, latentBinary(t, l)), http.StatusOK)
	l.Shape = []int{1, 32, 1}
	r := e.post("/v1/decode", ctJSON, latentJSON(t, l))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if p := r.problem(t); !strings.Contains(p.Detail, "want [N, 32]") {
		t.Errorf("problem %+v", p)
	}
}
