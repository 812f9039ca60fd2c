package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aeserve/aeserve/api"
)

// maxInput bounds what aectl reads from one file or stdin: far above any
// batch a server takes (8 MiB by default).
const maxInput = 256 << 20

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// displayName is how messages name an input.
func displayName(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

// readInput reads a file, or stdin for "-".
func readInput(e *env, name string) (data []byte, display string, err error) {
	display = displayName(name)
	var r io.Reader
	if name == "-" {
		r = e.stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, display, err
		}
		defer f.Close()
		r = f
	}
	data, err = io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, display, fmt.Errorf("reading %s: %w", display, err)
	}
	if len(data) > maxInput {
		return nil, display, fmt.Errorf("%s is larger than %d MiB", display, maxInput>>20)
	}
	return data, display, nil
}

// readImages reads every input and checks that it is a PNG file, so that a
// wrong file is named before anything is sent. Whatever else is wrong with an
// image, the server says.
func readImages(e *env, files []string) ([][]byte, error) {
	if err := stdinOnce(files); err != nil {
		return nil, err
	}
	pngs := make([][]byte, len(files))
	for i, f := range files {
		b, display, err := readInput(e, f)
		if err != nil {
			return nil, err
		}
		if err := checkPNG(display, b); err != nil {
			return nil, err
		}
		pngs[i] = b
	}
	return pngs, nil
}

// stdinOnce refuses a second "-": stdin can be read only once.
func stdinOnce(files []string) error {
	if n := slices.Index(files, "-"); n >= 0 && slices.Contains(files[n+1:], "-") {
		return usagef("- (stdin) given twice")
	}
	return nil
}

// checkPNG says what a file is when it is not a PNG image.
func checkPNG(name string, b []byte) error {
	if bytes.HasPrefix(b, pngSignature) {
		return nil
	}
	if len(b) == 0 {
		return fmt.Errorf("%s is empty, not a PNG image", name)
	}
	mt, _, _ := mime.ParseMediaType(http.DetectContentType(b))
	switch {
	case b[0] == 0xAE:
		return fmt.Errorf("%s is a binary latent, not a PNG image (aectl decode turns it into one)", name)
	case strings.HasPrefix(mt, "image/"):
		kind := strings.ToUpper(strings.TrimPrefix(mt, "image/"))
		return fmt.Errorf("%s is a %s image, not a PNG: convert it first", name, kind)
	case strings.HasPrefix(mt, "text/"):
		return fmt.Errorf("%s is text, not a PNG image", name)
	}
	return fmt.Errorf("%s is not a PNG image (no PNG signature)", name)
}

// parseLatent reads a latent in either encoding and checks it, reporting
// which encoding it came in.
func parseLatent(name string, b []byte, jsonIn bool) (*api.Latent, api.LatentEncoding, error) {
	var l api.Latent
	t := bytes.TrimLeft(b, " \t\r\n")
	switch {
	case jsonIn || (len(t) > 0 && t[0] == '{'):
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return nil, 0, fmt.Errorf("%s: not a JSON latent: %v", name, err)
		}
		if dec.More() {
			return nil, 0, fmt.Errorf("%s: not a JSON latent: more than one JSON value", name)
		}
		if err := l.Validate(); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", name, err)
		}
		return &l, api.LatentJSON, nil
	case len(b) > 0 && b[0] == 0xAE:
		if err := l.UnmarshalBinary(b); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", name, err)
		}
		return &l, api.LatentBinary, nil
	case bytes.HasPrefix(b, pngSignature):
		return nil, 0, fmt.Errorf("%s is a PNG image, not a latent (aectl encode makes one)", name)
	case len(b) == 0:
		return nil, 0, fmt.Errorf("%s is empty, not a latent", name)
	}
	return nil, 0, fmt.Errorf("%s is not a latent: neither the binary format (first byte 0xAE) nor JSON", name)
}

// fileStem is a file's name without directory and extension: out/a.png is a.
func fileStem(name string) string {
	base := filepath.Base(name)
	if stem := strings.TrimSuffix(base, filepath.Ext(base)); stem != "" {
		return stem
	}
	return base
}

// destination is where a command's images go: one file (or stdout, "-"), or
// a directory.
type destination struct {
	paths []string // one per image
	dir   string   // "" when writing a single file
}

// plan decides where len(names) images go before anything is sent: with one
// image, to stdout or the file -o names; with several, or when -o names a
// directory (existing, or ending in a slash), into that directory under
// names. inputs, if not nil, are what the names were made from, for the
// message when two inputs would write the same file.
func plan(e *env, out string, names, inputs []string) (*destination, error) {
	n := len(names)
	if out == "" {
		out = "-"
	}
	isDir := strings.HasSuffix(out, "/") || strings.HasSuffix(out, string(filepath.Separator))
	if out != "-" && !isDir {
		fi, err := os.Stat(out)
		switch {
		case err == nil && fi.IsDir():
			isDir = true
		case err == nil && n > 1:
			return nil, usagef("-o %s is a file, but there are %d images: name a directory", out, n)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	if out == "-" {
		if n > 1 {
			return nil, usagef("%d images to write: name a directory with -o DIR", n)
		}
		if isTerminal(e.stdout) {
			return nil, usagef("not writing a PNG image to a terminal: redirect stdout, or use -o FILE")
		}
		return &destination{paths: []string{"-"}}, nil
	}
	if n == 1 && !isDir {
		return &destination{paths: []string{out}}, nil
	}
	d := &destination{dir: out}
	seen := make(map[string]int, n)
	for i, name := range names {
		p := filepath.Join(out, name)
		if j, dup := seen[p]; dup {
			if inputs != nil {
				return nil, usagef("%s and %s would both be written to %s", inputs[j], inputs[i], p)
			}
			return nil, usagef("two images would both be written to %s", p)
		}
		seen[p] = i
		d.paths = append(d.paths, p)
	}
	return d, nil
}

func (d *destination) write(e *env, pngs [][]byte) error {
	if len(pngs) != len(d.paths) {
		return fmt.Errorf("expected %d images, the server sent %d", len(d.paths), len(pngs))
	}
	if d.dir != "" {
		if err := os.MkdirAll(d.dir, 0o755); err != nil {
			return err
		}
	}
	for i, p := range d.paths {
		if err := writeFile(e, p, pngs[i]); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes b to the file name, or to stdout for "-".
func writeFile(e *env, name string, b []byte) error {
	if name == "-" {
		if _, err := e.stdout.Write(b); err != nil {
			return fmt.Errorf("writing to stdout: %w", err)
		}
		return nil
	}
	return os.WriteFile(name, b, 0o644)
}

// isTerminal says whether w is a terminal (a character device other than
// the null device), where binary output would only garble the screen.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
