package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aeserve/aeserve/api"
)

// Each role serves its routes and answers every other model route 404
// not-served-by-role, naming itself; every answer is checked against
// openapi.yaml by the env's transport, so this is the contract test of each
// role.
func TestRoles(t *testing.T) {
	full := newEnv(t)
	latent := latentBinary(t, encodeLatent(t, full, "conv", 21))
	img := mustPNG(t, 21)
	two, twoType := multipartBody(t, imageField, img, mustPNG(t, 22))
	type call struct {
		method, path, ctype string
		body                []byte
	}
	calls := map[string]call{
		"encode":      {"POST", "/v1/encode", ctPNG, img},
		"decode":      {"POST", "/v1/decode", ctBinary, latent},
		"reconstruct": {"POST", "/v1/reconstruct", ctPNG, img},
		"denoise":     {"POST", "/v1/denoise", ctPNG, img},
		"classify":    {"POST", "/v1/classify", ctPNG, img},
		"sample":      {"POST", "/v1/sample?n=2", "", nil},
		"interpolate": {"POST", "/v1/interpolate?k=3", twoType, two},
		// A bad query must not hide that this is the wrong server to ask.
		"encode?bad": {"POST", "/v1/encode?nope=1", ctPNG, img},
	}
	for _, tc := range []struct {
		role   Role
		serves []string
		halves []string
	}{
		{RoleAll, []string{"encode", "decode", "reconstruct", "denoise", "classify", "sample", "interpolate"}, []string{"encoder", "decoder", "full"}},
		{RoleEncoder, []string{"encode"}, []string{"encoder"}},
		{RoleDecoder, []string{"decode", "sample"}, []string{"decoder"}},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			e := newRoleEnv(t, tc.role)
			for name, c := range calls {
				r := e.do(e.request(c.method, c.path, c.ctype, c.body))
				served := slices.Contains(tc.serves, strings.TrimSuffix(name, "?bad"))
				switch {
				case served && name == "encode?bad":
					wantStatus(t, r, http.StatusBadRequest)
				case served:
					wantStatus(t, r, http.StatusOK)
				default:
					wantStatus(t, r, http.StatusNotFound)
					p := r.problem(t)
					if p.Type != ProblemTypeBase+kindNotServedByRole || !strings.Contains(p.Detail, "role "+string(tc.role)) {
						t.Errorf("%s: problem %+v, want not-served-by-role naming role %s", name, p, tc.role)
					}
				}
			}
			r := e.get("/v1/models")
			wantStatus(t, r, http.StatusOK)
			var list api.ModelList
			if err := json.Unmarshal(r.body, &list); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range list.Models {
				names = append(names, m.Name)
				want := tc.halves
				if slices.ContainsFunc(m.Stages, func(s api.StageInfo) bool { return s.Name == "posterior" }) && tc.role != RoleDecoder {
					want = append(slices.Clone(want), "posterior") // a Gaussian code's, run by the encoder's weights
				}
				if m.Task == api.TaskClassifier {
					want = []string{"classifier"}
					if tc.role != RoleAll {
						t.Errorf("role %s serves classifier %s, which has no %s", tc.role, m.Name, tc.role)
					}
				}
				if !slices.Equal(m.Halves, want) {
					t.Errorf("%s: halves %v, want %v", m.Name, m.Halves, want)
				}
			}
			if len(names) < 2 {
				t.Fatalf("models %v", names)
			}
			wantStatus(t, e.get("/readyz"), http.StatusOK)
			metrics := string(e.get("/metrics").body)
			if want := `aeserve_server_info{models="` + strings.Join(names, ",") + `",role="` + string(tc.role) + `"} 1`; !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		})
	}
}

// The sender/receiver split loses nothing: an encoder-role server's latents
// are the full server's, byte for byte, and a decoder-role server decodes
// them into the full server's images.
func TestSplitRolesAgree(t *testing.T) {
	full := newEnv(t)
	enc := newRoleEnv(t, RoleEncoder)
	dec := newRoleEnv(t, RoleDecoder)
	for _, name := range []string{"conv", "denoise"} {
		pngs := [][]byte{mustPNG(t, 30), mustPNG(t, 31), mustPNG(t, 32)}
		path := "/v1/encode?model=" + name
		want := full.postImages(path, pngs, "Accept", ctBinary)
		got := enc.postImages(path, pngs, "Accept", ctBinary)
		wantStatus(t, want, http.StatusOK)
		wantStatus(t, got, http.StatusOK)
		if !bytes.Equal(got.body, want.body) {
			t.Fatalf("%s: the encoder-role latent differs from the full server's", name)
		}
		fromFull := full.post("/v1/decode", ctBinary, want.body)
		fromDec := dec.post("/v1/decode", ctBinary, got.body)
		wantStatus(t, fromFull, http.StatusOK)
		wantStatus(t, fromDec, http.StatusOK)
		a, b := imagesOf(t, fromFull), imagesOf(t, fromDec)
		if a.Fingerprint != b.Fingerprint || len(b.Images) != len(pngs) || !slices.Equal(a.Images, b.Images) {
			t.Errorf("%s: the decoder-role images differ from the full server's", name)
		}
	}
}

// A server without a route's default model says so and lists what it has.
func TestDefaultModelNotServed(t *testing.T) {
	e := newRoleEnv(t, RoleAll, "denoise")
	r := e.post("/v1/encode", ctPNG, mustPNG(t, 3))
	wantStatus(t, r, http.StatusNotFound)
	if p := r.problem(t); p.Type != ProblemTypeBase+kindUnknownModel || !strings.Contains(p.Detail, `default model "conv"`) ||
		!strings.Contains(p.Detail, "serving denoise") {
		t.Errorf("problem %+v", p)
	}
	wantStatus(t, e.post("/v1/encode?model=denoise", ctPNG, mustPNG(t, 3)), http.StatusOK)
	wantStatus(t, e.post("/v1/denoise", ctPNG, mustPNG(t, 3)), http.StatusOK)
	var list api.ModelList
	if err := json.Unmarshal(e.get("/v1/models").body, &list); err != nil || list.Default != "" {
		t.Errorf("list default %q (%v), want none", list.Default, err)
	}
}

// The ops listener serves probes and metrics only, keeps answering through
// the drain (so probes see 503, not a refused connection) and closes last.
func TestOpsListener(t *testing.T) {
	// The drain lasts until the test ends it (drainWait below).
	e := newEnv(t, func(c *Config) { c.DrainDelay = time.Hour })
	e.ts.Close()
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.ts.URL = "http://" + api.Addr().String()
	opsURL := "http://" + ops.Addr().String()
	ctx, stop := context.WithCancel(t.Context())
	served := make(chan error, 1)
	drained := make(chan struct{})
	e.s.drainWait = func(time.Duration) { <-drained }
	go func() { served <- e.s.ServeAll(ctx, Listeners{API: api, Ops: ops}) }()

	// Plain client: the ops port is not the API that openapi.yaml describes.
	get := func(url string) (int, string) {
		t.Helper()
		r, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	for _, path := range []string{"/healthz", "/readyz?verbose=1", "/metrics"} {
		if code, _ := get(opsURL + path); code != http.StatusOK {
			t.Errorf("ops %s: %d", path, code)
		}
	}
	// Clients have nothing to do on the ops port.
	if code, _ := get(opsURL + "/v1/models"); code != http.StatusNotFound {
		t.Errorf("ops /v1/models: %d, want 404", code)
	}
	wantStatus(t, e.get("/v1/models"), http.StatusOK)
	_, metrics := get(opsURL + "/metrics")
	for _, want := range []string{"aeserve_build_info{", `goversion="go`,
		`aeserve_server_info{models="` + strings.Join(embeddedNames(t), ",") + `",role="all"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("ops /metrics lacks %s", want)
		}
	}

	stop()
	waitFor(t, "ops /readyz to turn 503", func() bool {
		code, _ := get(opsURL + "/readyz")
		return code == http.StatusServiceUnavailable
	})
	close(drained)
	waitServed(t, served)
	if _, err := http.Get(opsURL + "/healthz"); err == nil {
		t.Error("the ops listener still answers after Serve returned")
	}
}
