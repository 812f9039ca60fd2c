// Package web holds what a browser gets from the server, embedded in the
// binary: the page (GET /, its files under /static/) where people draw a
// digit and watch each model at work, and the API docs (GET /docs, their
// files under /docs/): Swagger UI, from npm's swagger-ui-dist (see
// docs/README.md), showing the served /openapi.yaml.
//
// Everything is plain HTML, CSS and JavaScript (ES modules), served as it
// is committed: no build step, and no request leaves the server's origin
// (CSP). internal/server routes it; this package only knows the files.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"path"
	"strings"
)

// CSP is the Content-Security-Policy of every file served: nothing but the
// server's own origin, except images from data: and blob: URLs (the page
// shows the PNGs it gets and makes as such URLs, and Swagger UI's
// stylesheet draws its icons from data: URLs). No inline script or style
// attribute is needed by either page.
const CSP = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

//go:embed page/*.html page/*.css page/*.js page/*.svg
//go:embed docs/*.html docs/*.js docs/*.css docs/*.txt docs/LICENSE docs/NOTICE
var files embed.FS

// File is one file to serve.
type File struct {
	Name string // within its folder
	Type string // Content-Type, with charset for text
	Body []byte
	ETag string // strong, from the content's SHA-256
}

var (
	page, docs *File
	static     = map[string]*File{} // page/ but index.html: /static/{name}
	docFiles   = map[string]*File{} // docs/ but index.html: /docs/{name}
)

func init() {
	for dir, m := range map[string]map[string]*File{"page": static, "docs": docFiles} {
		entries, err := fs.ReadDir(files, dir)
		if err != nil {
			panic(err) // the embed patterns above guarantee the folders
		}
		for _, e := range entries {
			b, err := files.ReadFile(dir + "/" + e.Name())
			if err != nil {
				panic(err)
			}
			sum := sha256.Sum256(b)
			f := &File{Name: e.Name(), Type: contentType(e.Name()), Body: b, ETag: `"` + hex.EncodeToString(sum[:12]) + `"`}
			if e.Name() == "index.html" {
				if dir == "page" {
					page = f
				} else {
					docs = f
				}
				continue
			}
			m[e.Name()] = f
		}
	}
}

// contentType is the type a file is served as, by its name. JavaScript is
// text/javascript (RFC 9239).
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "text/plain; charset=utf-8" // LICENSE, NOTICE, *.txt
}

// Page is the page served at /.
func Page() *File { return page }

// Docs is Swagger UI's page, served at /docs.
func Docs() *File { return docs }

// Static is the page's file served at /static/{name}.
func Static(name string) (*File, bool) {
	f, ok := static[name]
	return f, ok
}

// DocsFile is Swagger UI's file (or its licence) served at /docs/{name}.
func DocsFile(name string) (*File, bool) {
	f, ok := docFiles[name]
	return f, ok
}

// MediaType is the file's Content-Type without parameters.
func (f *File) MediaType() string {
	mt, _, _ := strings.Cut(f.Type, ";")
	return mt
}
