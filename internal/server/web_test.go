package server

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/aeserve/aeserve/internal/web"
)

// The page, the docs and their files: typed, with the CSP and an ETag,
// 304 on a matching If-None-Match, any query ignored, unknown files the
// usual 404 problem. Every answer is checked against openapi.yaml by the
// env's transport.
func TestWebRoutes(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		path, ctype string
		want        []byte
	}{
		{"/", "text/html; charset=utf-8", web.Page().Body},
		{"/?utm_source=x&utm_source=y", "text/html; charset=utf-8", web.Page().Body},
		{"/docs", "text/html; charset=utf-8", web.Docs().Body},
		{"/static/app.js", "text/javascript; charset=utf-8", nil},
		{"/static/app.css", "text/css; charset=utf-8", nil},
		{"/static/favicon.svg", "image/svg+xml", nil},
		{"/static/app%2Ejs", "text/javascript; charset=utf-8", nil},
		{"/docs/swagger-ui-bundle.js", "text/javascript; charset=utf-8", nil},
		{"/docs/swagger-ui.css", "text/css; charset=utf-8", nil},
		{"/docs/LICENSE", "text/plain; charset=utf-8", nil},
		{"/docs/NOTICE", "text/plain; charset=utf-8", nil},
	} {
		r := e.get(tc.path)
		wantStatus(t, r, http.StatusOK)
		if got := r.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("%s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if tc.want != nil && !bytes.Equal(r.body, tc.want) {
			t.Errorf("%s: body is not the embedded file", tc.path)
		}
		if got := r.Header.Get("Content-Security-Policy"); got != web.CSP {
			t.Errorf("%s: Content-Security-Policy %q", tc.path, got)
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("%s: headers %v", tc.path, r.Header)
		}
		tag := r.Header.Get("ETag")
		for _, inm := range []string{tag, `"other", ` + tag, "W/" + tag, "*"} {
			nm := e.get(tc.path, "If-None-Match", inm)
			wantStatus(t, nm, http.StatusNotModified)
			if len(nm.body) != 0 || nm.Header.Get("ETag") != tag {
				t.Errorf("%s, If-None-Match %s: 304 with %d bytes, ETag %q", tc.path, inm, len(nm.body), nm.Header.Get("ETag"))
			}
		}
		wantStatus(t, e.get(tc.path, "If-None-Match", `"other"`), http.StatusOK)
	}
	if web.Page().ETag == web.Docs().ETag {
		t.Error("the page and the docs have the same ETag")
	}

	for _, path := range []string{"/static/nope.js", "/static/index.html", "/docs/index.html", "/docs/swagger-ui-bundle.js.map", "/static/..%2Fweb.go"} {
		r := e.get(path)
		wantStatus(t, r, http.StatusNotFound)
		if p := r.problem(t); p.Type != ProblemTypeBase+kindNotFound {
			t.Errorf("%s: problem %+v", path, p)
		}
	}
	for _, path := range []string{"/static/a/b.js", "/docs/", "/static/"} {
		wantStatus(t, e.get(path), http.StatusNotFound)
	}
	wantStatus(t, e.get("/", "Accept", "application/json"), http.StatusNotAcceptable)
	wantStatus(t, e.get("/static/app.js", "Accept", "text/html"), http.StatusNotAcceptable)
	r := e.post("/", "text/plain", []byte("x"))
	wantStatus(t, r, http.StatusMethodNotAllowed)
	if got := r.Header.Get("Allow"); got != "GET, HEAD" {
		t.Errorf("POST /: Allow %q", got)
	}
}

// Only role all serves the page and the docs; the others answer
// not-served-by-role, as for its model routes.
func TestWebRoutesRoles(t *testing.T) {
	for _, role := range []Role{RoleEncoder, RoleDecoder} {
		e := newRoleEnv(t, role, "conv")
		for _, path := range []string{"/", "/docs", "/static/app.js", "/docs/swagger-ui.css"} {
			r := e.get(path)
			wantStatus(t, r, http.StatusNotFound)
			if p := r.problem(t); p.Type != ProblemTypeBase+kindNotServedByRole || !strings.Contains(p.Detail, "role "+string(role)) {
				t.Errorf("role %s, %s: %+v", role, path, p)
			}
		}
	}
}

// With tokens, the page, the docs and their files need none (a browser
// opening them sends none); the API behind them still does.
func TestWebRoutesOpenWithTokens(t *testing.T) {
	e := newEnv(t, withTokens(tokenFile(t, tokenOne+"\n")), checkEveryUse)
	for _, path := range []string{"/", "/docs", "/static/app.js", "/docs/swagger-ui-bundle.js", "/openapi.yaml"} {
		wantStatus(t, e.get(path), http.StatusOK)
	}
	wantStatus(t, e.get("/static/nope.js"), http.StatusNotFound)
	wantUnauthorized(t, e.get("/v1/models"), false)
	wantStatus(t, e.get("/v1/models", bearer(tokenOne)...), http.StatusOK)
}
