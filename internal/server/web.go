package server

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/aeserve/aeserve/internal/web"
)

// The page (GET /, people draw a digit) and the API docs (GET /docs,
// Swagger UI), with the files they load (/static/{file}, /docs/{file}),
// embedded by internal/web. They are routes of the API router and of
// openapi.yaml like any other, not a file server beside it: the contract
// test holds them to the spec, they share the request log, metrics and
// request IDs, and an unknown file is the usual 404 problem. Each
// answer carries web.CSP.
//
// Only role all serves them (the page calls routes that only it serves);
// another role answers them 404 not-served-by-role. They need no token
// (auth.go, webOpen): a browser opening a page sends none, and the files
// are the repository's own; the page sends the token its user gives on
// the API calls it makes.

// webRoles serve the page and the docs.
var webRoles = []Role{RoleAll}

// The routes of the page and the docs.
const (
	routePage       = "/"
	routeStatic     = "/static/{file}"
	routeDocs       = "/docs"
	routeDocsFile   = "/docs/{file}"
	staticPrefix    = "/static/"
	docsFilesPrefix = "/docs/"
)

func (s *Server) webRoutes(r chi.Router) {
	route := func(pattern string, h handlerFunc) {
		if !s.cfg.Role.serves(webRoles) {
			p := notServedByRole(s.cfg.Role, http.MethodGet, pattern, webRoles)
			get(r, pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s.writeProblem(w, r, p)
			}))
			return
		}
		// Browsers and link shorteners add queries of their own (a
		// cache-buster, utm_…): these routes ignore any, as the probes do.
		get(r, pattern, s.handleAnyQuery(h))
	}
	route(routePage, func(r *http.Request, _ query) (*response, error) { return serveFile(r, web.Page()) })
	route(routeDocs, func(r *http.Request, _ query) (*response, error) { return serveFile(r, web.Docs()) })
	route(routeStatic, func(r *http.Request, _ query) (*response, error) {
		name := fileParam(r)
		f, ok := web.Static(name)
		if !ok {
			return nil, problemf(http.StatusNotFound, kindNotFound, "no file %q under %s", name, staticPrefix)
		}
		return serveFile(r, f)
	})
	route(routeDocsFile, func(r *http.Request, _ query) (*response, error) {
		name := fileParam(r)
		f, ok := web.DocsFile(name)
		if !ok {
			return nil, problemf(http.StatusNotFound, kindNotFound, "no file %q under %s", name, docsFilesPrefix)
		}
		return serveFile(r, f)
	})
}

// fileParam is the {file} of the path, percent-decoded once (as getModel
// decodes {name}).
func fileParam(r *http.Request) string {
	raw := chi.URLParam(r, "file")
	name, err := url.PathUnescape(raw)
	if err != nil {
		return raw
	}
	return name
}

// webOpen reports whether path is the page's or the docs' (path as the
// router matches it): they need no token.
func webOpen(path string) bool {
	return path == routePage || path == routeDocs ||
		strings.HasPrefix(path, staticPrefix) || strings.HasPrefix(path, docsFilesPrefix)
}

// serveFile answers an embedded file, or 304 when the client holds it
// already (If-None-Match with its ETag). Clients revalidate every time
// (no-cache): a new build serves new files at once, and an unchanged file
// costs a 304.
func serveFile(r *http.Request, f *web.File) (*response, error) {
	if _, err := mustNegotiate(r, f.MediaType()); err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("ETag", f.ETag)
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", web.CSP)
	h.Set("Referrer-Policy", "no-referrer")
	if etagMatch(r.Header.Get("If-None-Match"), f.ETag) {
		return &response{status: http.StatusNotModified, header: h}, nil
	}
	return &response{contentType: f.Type, body: f.Body, header: h}, nil
}

// etagMatch is If-None-Match's weak comparison (RFC 9110 §13.1.2) of a
// list of entity tags, or *, with etag.
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
