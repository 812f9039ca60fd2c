package server

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/weights"
)

// Models switched to int8 (the server's --int8) say so in /v1/models
// (checked against the OpenAPI document, as every answer here is), keep
// their fingerprint, and answer like their float32 selves: the same
// digits within a few grey levels, the same classes.
func TestInt8Models(t *testing.T) {
	e := newUnloadedEnv(t)
	var ms []*model.Model
	for _, name := range embeddedNames(t) {
		m, err := model.LoadFS(weights.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "conv" || name == "classifier" {
			if err := m.UseInt8(); err != nil {
				t.Fatal(err)
			}
		}
		ms = append(ms, m)
	}
	if err := e.s.Load(ms...); err != nil {
		t.Fatal(err)
	}
	f := newEnv(t) // float32 throughout

	r := e.get("/v1/models")
	wantStatus(t, r, http.StatusOK)
	var list api.ModelList
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	fps := map[string]string{}
	for _, m := range loadModels(t) {
		fps[m.Name] = m.Fingerprint.String()
	}
	for _, m := range list.Models {
		want := model.PrecisionFloat32
		if m.Name == "conv" || m.Name == "classifier" {
			want = model.PrecisionInt8
		}
		if m.Precision != want || m.Fingerprint != fps[m.Name] {
			t.Errorf("%s: precision %q, fingerprint %s; want %q, %s", m.Name, m.Precision, m.Fingerprint, want, fps[m.Name])
		}
	}

	for i := range 5 {
		_, img := mnistDigit(t, i)
		a, b := e.post("/v1/reconstruct", ctPNG, img), f.post("/v1/reconstruct", ctPNG, img)
		wantStatus(t, a, http.StatusOK)
		wantStatus(t, b, http.StatusOK)
		// 48 dB apart on average (internal/model's test); the worst pixel
		// of these digits moves 6–13 grey levels: 24 is about twice that.
		d := maxDiff(pngPixels(t, a.body), pngPixels(t, b.body))
		t.Logf("digit %d: %d grey levels apart at most", i, d)
		if d > 24 {
			t.Errorf("digit %d: int8 and float32 reconstructions differ by %d grey levels", i, d)
		}
		var ca, cb api.Classification
		a, b = e.post("/v1/classify", ctPNG, img), f.post("/v1/classify", ctPNG, img)
		wantStatus(t, a, http.StatusOK)
		wantStatus(t, b, http.StatusOK)
		if err := json.Unmarshal(a.body, &ca); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b.body, &cb); err != nil {
			t.Fatal(err)
		}
		if ca.Result.Digit != cb.Result.Digit || ca.Fingerprint != cb.Fingerprint {
			t.Errorf("digit %d: int8 says %d (%s), float32 %d (%s)", i, ca.Result.Digit, ca.Fingerprint, cb.Result.Digit, cb.Fingerprint)
		}
	}
}
