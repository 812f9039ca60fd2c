package web_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/aeserve/aeserve/internal/web"
)

// Every file the page and the docs load is embedded, under the route that
// serves it, and nothing they load comes from another origin. (The browser
// test checks the same in Chromium, where it is available.)
func TestFilesLoadOnlyEmbeddedFiles(t *testing.T) {
	ref := regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	imp := regexp.MustCompile(`(?m)^import .* from '([^']+)';$`)
	resolve := func(from, target string) bool {
		switch {
		case target == "/" || target == "/docs" || target == "/openapi.yaml":
			return true
		case strings.HasPrefix(target, "/static/"):
			_, ok := web.Static(strings.TrimPrefix(target, "/static/"))
			return ok
		case strings.HasPrefix(target, "/docs/"):
			_, ok := web.DocsFile(strings.TrimPrefix(target, "/docs/"))
			return ok
		case strings.HasPrefix(target, "./") && from == "static":
			_, ok := web.Static(strings.TrimPrefix(target, "./"))
			return ok
		}
		return false
	}
	check := func(from, name string, body []byte, re *regexp.Regexp) int {
		n := 0
		for _, m := range re.FindAllSubmatch(body, -1) {
			n++
			if target := string(m[1]); !resolve(from, target) {
				t.Errorf("%s loads %q, which is not served from the embedded files", name, target)
			}
		}
		return n
	}
	if check("page", "index.html", web.Page().Body, ref) < 3 || check("docs", "docs/index.html", web.Docs().Body, ref) < 4 {
		t.Error("the pages load fewer files than they do")
	}
	imports := 0
	for _, name := range []string{"app.js", "views.js", "api.js", "pixels.js", "pad.js", "ui.js", "examples.js",
		"view-stages.js", "view-transmit.js", "view-score.js", "view-classify.js", "view-interpolate.js", "view-sample.js"} {
		f, ok := web.Static(name)
		if !ok {
			t.Fatalf("%s is not embedded", name)
		}
		imports += check("static", name, f.Body, imp)
		if strings.Contains(string(f.Body), "http://") || strings.Contains(string(f.Body), "https://") {
			t.Errorf("%s names another origin", name)
		}
	}
	if imports < 10 {
		t.Errorf("only %d imports found: is the import pattern still right?", imports)
	}
}

// The CSP keeps everything to the server's origin.
func TestCSP(t *testing.T) {
	if !strings.HasPrefix(web.CSP, "default-src 'self'; ") || strings.Contains(web.CSP, "unsafe") || strings.Contains(web.CSP, "http") {
		t.Errorf("CSP %q", web.CSP)
	}
}

// Files are typed by name, and their ETags differ with their content.
func TestFileTypes(t *testing.T) {
	for _, tc := range []struct {
		f    func() (*web.File, bool)
		want string
	}{
		{func() (*web.File, bool) { return web.Page(), true }, "text/html; charset=utf-8"},
		{func() (*web.File, bool) { return web.Static("app.js") }, "text/javascript; charset=utf-8"},
		{func() (*web.File, bool) { return web.Static("app.css") }, "text/css; charset=utf-8"},
		{func() (*web.File, bool) { return web.Static("favicon.svg") }, "image/svg+xml"},
		{func() (*web.File, bool) { return web.DocsFile("LICENSE") }, "text/plain; charset=utf-8"},
		{func() (*web.File, bool) { return web.DocsFile("swagger-ui-bundle.js") }, "text/javascript; charset=utf-8"},
	} {
		f, ok := tc.f()
		if !ok {
			t.Fatalf("missing file for %s", tc.want)
		}
		if f.Type != tc.want || f.MediaType() != strings.Split(tc.want, ";")[0] {
			t.Errorf("%s: %s, want %s", f.Name, f.Type, tc.want)
		}
		if !regexp.MustCompile(`^"[0-9a-f]{24}"$`).MatchString(f.ETag) {
			t.Errorf("%s: ETag %s", f.Name, f.ETag)
		}
	}
	if _, ok := web.Static("index.html"); ok {
		t.Error("the page is also served under /static/")
	}
}

// Swagger UI's files are swagger-ui-dist's, unchanged: their SHA-256 are
// those docs/README.md records.
func TestSwaggerUIFilesAsRecorded(t *testing.T) {
	readme, err := os.ReadFile("docs/README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\| `([^`]+)` \\| `([0-9a-f]{64})` \\|$").FindAllStringSubmatch(string(readme), -1)
	if len(rows) != 5 {
		t.Fatalf("docs/README.md records %d files, want 5", len(rows))
	}
	for _, r := range rows {
		f, ok := web.DocsFile(r[1])
		if !ok {
			t.Errorf("%s is recorded but not served", r[1])
			continue
		}
		if sum := sha256.Sum256(f.Body); hex.EncodeToString(sum[:]) != r[2] {
			t.Errorf("%s: SHA-256 %x, recorded %s", r[1], sum, r[2])
		}
	}
}
