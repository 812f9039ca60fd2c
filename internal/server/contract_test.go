package server

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// Every route the router serves is in openapi.yaml, and every operation in
// openapi.yaml is served. (That every answer matches the document is checked
// on each response of the suite, by validatingTransport.)
func TestRoutesMatchSpec(t *testing.T) {
	for _, role := range Roles {
		t.Run(string(role), func(t *testing.T) { routesMatchSpec(t, role) })
	}
}

// routesMatchSpec holds for every role: a route the role does not serve is
// still routed (to answer not-served-by-role), so the router is the spec.
func routesMatchSpec(t *testing.T, role Role) {
	doc, _ := loadSpec(t)
	s, err := New(Config{Role: role})
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	err = chi.Walk(s.router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	// chi and OpenAPI write path parameters the same way, {name}, as long
	// as no chi regexp patterns are used; refuse them so this stays true.
	chiRegexp := regexp.MustCompile(`\{[^}]*:`)
	for r := range served {
		if chiRegexp.MatchString(r) {
			t.Errorf("%s: a regexp route cannot be compared with the spec", r)
		}
		if !documented[r] {
			t.Errorf("served but not in openapi.yaml: %s", r)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("in openapi.yaml but not served: %s", r)
		}
	}
	// RFC 9110 §9.3.2: whatever answers GET answers HEAD.
	for r := range served {
		if route, ok := strings.CutPrefix(r, http.MethodGet+" "); ok && !served[http.MethodHead+" "+route] {
			t.Errorf("GET %s is served but HEAD %s is not", route, route)
		}
	}
	keys := make([]string, 0, len(served))
	for k := range served {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	t.Logf("routes: %v", keys)
}

// recordingTB collects what the validating transport reports.
type recordingTB struct {
	testing.TB
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Helper() {}

// The contract check is only worth something if it fails on drift; feed it
// answers the spec does not allow.
func TestValidatorCatchesDrift(t *testing.T) {
	problem := `{"type":"urn:aeserve:problem:internal","title":"x","status":%d,"detail":"d","request_id":"a"}`
	for _, tc := range []struct {
		name, method, path string
		status             int
		ctype, body        string
		header             http.Header
	}{
		{"undocumented status", "GET", "/v1/models", 418, ctProblem, fmt.Sprintf(problem, 418), nil},
		{"schema violation", "GET", "/v1/models", 200, ctJSON, `{"models":[{"name":"x"}]}`, nil},
		{"unknown field", "GET", "/healthz", 200, ctJSON, `{"status":"ok","extra":1}`, nil},
		{"wrong media type", "GET", "/v1/models", 200, "text/plain", `hi`, nil},
		{"503 without Retry-After", "GET", "/readyz", 503, ctProblem, fmt.Sprintf(problem, 503), nil},
		{"image answer without X-Model", "POST", "/v1/reconstruct", 200, ctPNG, "png", nil},
		{"405 that is not a problem", "PUT", "/v1/models", 405, "text/plain", "no", http.Header{"Allow": {"GET"}}},
		{"405 without Allow", "PUT", "/v1/models", 405, ctProblem, fmt.Sprintf(problem, 405), nil},
		{"HEAD with a body", "HEAD", "/healthz", 200, ctJSON, `{"status":"ok"}`, nil},
		{"HEAD with an undocumented status", "HEAD", "/healthz", 404, ctProblem, "", nil},
		{"HEAD with an undocumented media type", "HEAD", "/v1/models", 200, "text/html", "", nil},
		{"HEAD without X-Model", "HEAD", "/v1/models/conv", 200, ctJSON, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			v := &validatingTransport{t: rec}
			req, err := http.NewRequest(tc.method, "http://127.0.0.1:1"+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{"Content-Type": {tc.ctype}, HeaderRequestID: {"a"}}
			for k, vs := range tc.header {
				h[k] = vs
			}
			v.check(req, &http.Response{StatusCode: tc.status, Header: h}, []byte(tc.body))
			if len(rec.errs) == 0 {
				t.Error("accepted")
			}
		})
	}
}
