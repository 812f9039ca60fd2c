package server

import (
	"encoding/json"
	"image"
	"image/color"
	"math/rand"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/digit"
)

func scoresOf(t *testing.T, r *reply) api.Scores {
	t.Helper()
	wantStatus(t, r, http.StatusOK)
	var sc api.Scores
	if err := json.Unmarshal(r.body, &sc); err != nil {
		t.Fatalf("scores: %v: %.200s", err, r.body)
	}
	return sc
}

// nonDigits are a uniform-noise image and a checkerboard, as PNGs.
func nonDigits(t *testing.T) [][]byte {
	t.Helper()
	rng := rand.New(rand.NewSource(7))
	noise := make([]float32, 784)
	for i := range noise {
		noise[i] = rng.Float32()
	}
	square := image.NewGray(image.Rect(0, 0, 28, 28))
	for y := 4; y < 24; y++ {
		for x := 4; x < 24; x++ {
			if (x/2+y/2)%2 == 0 {
				square.SetGray(x, y, color.Gray{Y: 255})
			}
		}
	}
	sq := make([]float32, 784)
	for i, v := range square.Pix {
		sq[i] = float32(v) / 255
	}
	var out [][]byte
	for _, px := range [][]float32{noise, sq} {
		b, err := digit.EncodePNG(px)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// Scores of test digits the model never trained on follow the distribution
// its manifest gives (the same definition, measured the same way), and
// things that are not digits score above nearly all of them.
func TestScoresTellDigitsFromNonDigits(t *testing.T) {
	e := newEnv(t)
	var info api.ModelInfo
	r := e.get("/v1/models/dense")
	wantStatus(t, r, http.StatusOK)
	if err := json.Unmarshal(r.body, &info); err != nil {
		t.Fatal(err)
	}
	if info.Metrics == nil || info.Metrics.Scores == nil {
		t.Fatalf("dense has no score distribution: %+v", info.Metrics)
	}
	dist := info.Metrics.Scores
	if dist.Images != 10000 || !(dist.MSE.P50 < dist.MSE.P99 && dist.MSE.P99 <= dist.MSE.Max) || !(dist.BCE.P50 < dist.BCE.P99) {
		t.Fatalf("distribution %+v", dist)
	}
	if !slices.Contains(info.Operations, api.OpScore) {
		t.Errorf("operations %v lack score", info.Operations)
	}

	const n = 200
	pngs := make([][]byte, n)
	for i := range pngs {
		_, pngs[i] = mnistDigit(t, 9000+i)
	}
	sc := scoresOf(t, e.postImages("/v1/score?model=dense", pngs))
	if sc.Model != "dense" || sc.Fingerprint != info.Fingerprint || len(sc.Scores) != n || sc.Inputs != nil {
		t.Fatalf("answer %s %s, %d scores, %d inputs", sc.Model, sc.Fingerprint, len(sc.Scores), len(sc.Inputs))
	}
	mse := make([]float64, n)
	above := 0
	for i, s := range sc.Scores {
		mse[i] = s.MSE
		if s.MSE > dist.MSE.P99 {
			above++
		}
	}
	slices.Sort(mse)
	if med := mse[n/2]; med < 0.8*dist.MSE.P50 || med > 1.25*dist.MSE.P50 {
		t.Errorf("median MSE of %d test digits %.5f, the manifest's p50 over 10,000 is %.5f", n, med, dist.MSE.P50)
	}
	if above > n/20 {
		t.Errorf("%d of %d test digits above the p99 MSE %.5f", above, n, dist.MSE.P99)
	}
	odd := scoresOf(t, e.postImages("/v1/score?model=dense", nonDigits(t)))
	for i, s := range odd.Scores {
		if s.MSE <= dist.MSE.P999 || s.BCE <= dist.BCE.P999 {
			t.Errorf("non-digit %d scores %+v, not above the test digits' p99.9 (MSE %.5f, BCE %.5f)", i, s, dist.MSE.P999, dist.BCE.P999)
		}
	}
}

// /v1/reconstruct and /v1/denoise carry the same scores as /v1/score: in
// headers for one PNG, in the JSON for several; /v1/decode has none.
func TestScoresOnEveryReconstruction(t *testing.T) {
	e := newEnv(t)
	_, a := mnistDigit(t, 3)
	_, b := mnistDigit(t, 4)
	for _, route := range []string{"/v1/reconstruct", "/v1/denoise"} {
		want := scoresOf(t, e.postImages("/v1/score?model=denoise", [][]byte{a, b}))

		r := e.post(route+"?model=denoise", ctPNG, a)
		wantStatus(t, r, http.StatusOK)
		mse, err1 := strconv.ParseFloat(r.Header.Get(HeaderScoreMSE), 64)
		bce, err2 := strconv.ParseFloat(r.Header.Get(HeaderScoreBCE), 64)
		if err1 != nil || err2 != nil || (api.Score{MSE: mse, BCE: bce}) != want.Scores[0] {
			t.Errorf("%s: headers %q %q, /v1/score says %+v", route, r.Header.Get(HeaderScoreMSE), r.Header.Get(HeaderScoreBCE), want.Scores[0])
		}

		im := imagesOf(t, e.postImages(route+"?model=denoise", [][]byte{a, b}))
		if !slices.Equal(im.Scores, want.Scores) {
			t.Errorf("%s: JSON scores %+v, /v1/score says %+v", route, im.Scores, want.Scores)
		}
	}
	// A decoded latent has no input to be compared with.
	r := e.post("/v1/encode", ctPNG, a, "Accept", ctBinary)
	wantStatus(t, r, http.StatusOK)
	d := e.post("/v1/decode", ctBinary, r.body, "Accept", ctJSON)
	if im := imagesOf(t, d); im.Scores != nil {
		t.Errorf("/v1/decode answered scores %+v", im.Scores)
	}
	if d := e.post("/v1/decode", ctBinary, r.body); d.Header.Get(HeaderScoreMSE) != "" {
		t.Errorf("/v1/decode's PNG has %s", HeaderScoreMSE)
	}
}

func TestScoreErrors(t *testing.T) {
	e := newEnv(t)
	_, a := mnistDigit(t, 5)
	for _, tc := range []struct {
		name   string
		r      *reply
		status int
		kind   string
	}{
		{"classifier", e.post("/v1/score?model=classifier", ctPNG, a), http.StatusBadRequest, kindUnsupported},
		{"PNG answer", e.post("/v1/score", ctPNG, a, "Accept", ctPNG), http.StatusNotAcceptable, ""},
		{"unknown model", e.post("/v1/score?model=nope", ctPNG, a), http.StatusNotFound, ""},
		{"not 28×28", e.post("/v1/score", ctPNG, nonDigitOfSize(t, 30)), http.StatusUnprocessableEntity, ""},
		{"GET", e.get("/v1/score"), http.StatusMethodNotAllowed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantStatus(t, tc.r, tc.status)
			if p := tc.r.problem(t); tc.kind != "" && p.Type != ProblemTypeBase+tc.kind {
				t.Errorf("type %s, want %s", p.Type, ProblemTypeBase+tc.kind)
			}
		})
	}
	// include=input gives what the model saw.
	sc := scoresOf(t, e.post("/v1/score?include=input", ctPNG, a))
	if len(sc.Inputs) != 1 || !slices.Equal(pngPixels(t, b64(t, sc.Inputs[0])), pngPixels(t, a)) {
		t.Errorf("include=input: %d inputs, or not the image sent", len(sc.Inputs))
	}
}

func nonDigitOfSize(t *testing.T, side int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, side, side))
	return pngOf(t, img)
}
