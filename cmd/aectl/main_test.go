package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/mnistdata"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/server"
	"github.com/aeserve/aeserve/internal/train"
	"github.com/aeserve/aeserve/weights"
)

// The tests run the command's run function against a real server on
// loopback, serving every embedded model, with MNIST test digits.

func startServer(t *testing.T) string {
	t.Helper()
	s, err := server.New(server.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var ms []*model.Model
	for _, name := range embedded(t) {
		m, err := model.LoadFS(weights.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	if err := s.Load(ms...); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.Close(context.Background())
	})
	return ts.URL
}

func embedded(t *testing.T) []string {
	t.Helper()
	entries, err := fs.ReadDir(weights.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

var (
	mnistOnce sync.Once
	mnistSet  *train.Set
	mnistErr  error
)

// testDigit is MNIST test image i as a PNG, and its label from the label file.
func testDigit(t *testing.T, i int) ([]byte, int) {
	t.Helper()
	mnistOnce.Do(func() {
		dir, _, err := mnistdata.Dir()
		if err != nil {
			mnistErr = err
			return
		}
		mnistSet, mnistErr = train.Load(dir, "t10k")
	})
	if mnistErr != nil {
		t.Fatalf("MNIST test digits are required: %v", mnistErr)
	}
	b, err := digit.EncodePNG(mnistSet.Image(i))
	if err != nil {
		t.Fatal(err)
	}
	return b, int(mnistSet.Labels[i])
}

// writeDigits writes MNIST test images to dir as NAME.png and returns their
// paths.
func writeDigits(t *testing.T, dir string, names []string, first int) []string {
	t.Helper()
	var paths []string
	for i, name := range names {
		b, _ := testDigit(t, first+i)
		p := filepath.Join(dir, name+".png")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

type result struct {
	code           int
	stdout, stderr string
}

// aectl runs the command with AECTL_SERVER=server and stdin.
func aectl(t *testing.T, server string, stdin []byte, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string {
		if k == envServer {
			return server
		}
		return ""
	}
	code := run(args, bytes.NewReader(stdin), &out, &errOut, getenv)
	return result{code, out.String(), errOut.String()}
}

func (r result) want(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %.300q\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	if code == 0 && r.stderr != "" {
		t.Errorf("stderr on success: %s", r.stderr)
	}
	if code != 0 && r.stdout != "" {
		t.Errorf("stdout on failure: %.300q", r.stdout)
	}
	return r
}

// pixels decodes a PNG and checks it is a 28×28 grey digit.
func pixels(t *testing.T, b []byte) []float32 {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	g, ok := img.(*image.Gray)
	if !ok || g.Bounds() != image.Rect(0, 0, 28, 28) {
		t.Fatalf("a %T of %v, want 28×28 grey", img, img.Bounds())
	}
	px := make([]float32, len(g.Pix))
	for i, v := range g.Pix {
		px[i] = float32(v) / 255
	}
	return px
}

func readPixels(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return pixels(t, b)
}

func maxDiff(a, b []float32) int {
	m := 0
	for i := range a {
		m = max(m, int(math.Abs(float64(a[i]-b[i]))*255+0.5))
	}
	return m
}

// Through files: encode several digits into one latent, decode it into a
// directory, and get what reconstruct gives.
func TestEncodeDecodeFiles(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	imgs := writeDigits(t, dir, []string{"a", "b", "c"}, 0)
	lat := filepath.Join(dir, "abc.lat")
	aectl(t, srv, nil, "encode", imgs[0], imgs[1], imgs[2], "-o", lat).want(t, 0)
	b, err := os.ReadFile(lat)
	if err != nil {
		t.Fatal(err)
	}
	var l api.Latent
	if err := l.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l.Shape, []int{3, 32, 7, 7}) || len(b) != 15+3*6272 {
		t.Fatalf("latent of shape %v in %d bytes", l.Shape, len(b))
	}

	out := filepath.Join(dir, "out") + "/"
	aectl(t, srv, nil, "decode", lat, "-o", out).want(t, 0)
	rec := filepath.Join(dir, "rec")
	// Flags after the files, and a directory that does not exist yet.
	aectl(t, srv, nil, "reconstruct", imgs[0], imgs[1], imgs[2], "-o", rec).want(t, 0)
	for i, name := range []string{"a", "b", "c"} {
		dec := readPixels(t, filepath.Join(out, fmt.Sprintf("abc.%d.decoded.png", i)))
		re := readPixels(t, filepath.Join(rec, name+".reconstructed.png"))
		if d := maxDiff(dec, re); d > 1 {
			t.Errorf("%s: decode(encode) and reconstruct differ by %d grey levels", name, d)
		}
	}
	// One row into a directory, by another model.
	aectl(t, srv, nil, "--server", srv, "encode", "--model", "dense", imgs[0], "-o", lat).want(t, 0)
	if fi, err := os.Stat(lat); err != nil || fi.Size() != 141 {
		t.Fatalf("dense latent: %v, %v", fi, err)
	}
	aectl(t, srv, nil, "decode", lat, "-o", out).want(t, 0)
	readPixels(t, filepath.Join(out, "abc.decoded.png"))
}

// Through stdin and stdout, in both latent encodings.
func TestEncodeDecodeStdio(t *testing.T) {
	srv := startServer(t)
	img, _ := testDigit(t, 7)
	lat := aectl(t, srv, img, "encode", "-").want(t, 0).stdout
	var l api.Latent
	if err := l.UnmarshalBinary([]byte(lat)); err != nil || !slices.Equal(l.Shape, []int{1, 32, 7, 7}) {
		t.Fatalf("binary latent on stdout: %v, %v", l.Shape, err)
	}
	viaBinary := pixels(t, []byte(aectl(t, srv, []byte(lat), "decode").want(t, 0).stdout))
	again := pixels(t, []byte(aectl(t, srv, []byte(lat), "decode", "-").want(t, 0).stdout))
	rec := pixels(t, []byte(aectl(t, srv, img, "reconstruct", "-").want(t, 0).stdout))
	if maxDiff(viaBinary, rec) > 1 || maxDiff(viaBinary, again) != 0 {
		t.Errorf("decoded from stdin differs from reconstruct by %d grey levels", maxDiff(viaBinary, rec))
	}

	js := aectl(t, srv, img, "encode", "--json", "-").want(t, 0).stdout
	var jl api.Latent
	if err := json.Unmarshal([]byte(js), &jl); err != nil || jl.Model != "conv" || !slices.Equal(jl.Data, l.Data) {
		t.Fatalf("JSON latent: model %q, %d values, %v", jl.Model, len(jl.Data), err)
	}
	for _, args := range [][]string{{"decode"}, {"decode", "--json-in"}} {
		got := pixels(t, []byte(aectl(t, srv, []byte("\n  "+js), args...).want(t, 0).stdout))
		if maxDiff(got, viaBinary) != 0 {
			t.Errorf("%v: the JSON latent decodes differently from the binary one", args)
		}
	}
	// --json-in on a binary latent says what is wrong.
	r := aectl(t, srv, []byte(lat), "decode", "--json-in").want(t, 1)
	if !strings.HasPrefix(r.stderr, "aectl: decode: stdin: not a JSON latent") {
		t.Errorf("binary latent read as JSON: %s", r.stderr)
	}
}

func TestReconstructDenoise(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	imgs := writeDigits(t, dir, []string{"x", "y"}, 20)
	for _, cmd := range []string{"reconstruct", "denoise"} {
		// One image: stdout, or -o FILE.
		one := pixels(t, []byte(aectl(t, srv, nil, cmd, imgs[0]).want(t, 0).stdout))
		file := filepath.Join(dir, cmd+".png")
		aectl(t, srv, nil, cmd, "-o", file, imgs[0]).want(t, 0)
		if maxDiff(readPixels(t, file), one) != 0 {
			t.Errorf("%s: -o FILE and stdout differ", cmd)
		}
		// Several: into a directory, named after the inputs.
		out := filepath.Join(dir, cmd)
		aectl(t, srv, nil, cmd, imgs[0], imgs[1], "-o", out).want(t, 0)
		suffix := map[string]string{"reconstruct": ".reconstructed.png", "denoise": ".denoised.png"}[cmd]
		for _, n := range []string{"x", "y"} {
			readPixels(t, filepath.Join(out, n+suffix))
		}
		// One image and an existing directory: into it.
		aectl(t, srv, nil, cmd, "--model", "deep", imgs[1], "-o", out).want(t, 0)
	}
	// Denoising makes a noisy digit closer to the clean one.
	clean := readPixels(t, imgs[0])
	noisy := slices.Clone(clean)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range noisy {
		noisy[i] = min(max(noisy[i]+0.5*float32(r.NormFloat64()), 0), 1)
	}
	nb, err := digit.EncodePNG(noisy)
	if err != nil {
		t.Fatal(err)
	}
	den := pixels(t, []byte(aectl(t, srv, nb, "denoise", "-").want(t, 0).stdout))
	if psnr(den, clean) < psnr(noisy, clean)+5 {
		t.Errorf("denoised %.1f dB, noisy %.1f dB", psnr(den, clean), psnr(noisy, clean))
	}
	// Two inputs with the same name would overwrite each other: refused
	// before anything is sent.
	other := filepath.Join(dir, "sub")
	os.Mkdir(other, 0o755)
	dup := writeDigits(t, other, []string{"x"}, 30)
	res := aectl(t, srv, nil, "reconstruct", imgs[0], dup[0], "-o", filepath.Join(dir, "dup")).want(t, 2)
	if !strings.Contains(res.stderr, "would both be written to") {
		t.Errorf("same names: %s", res.stderr)
	}
}

func psnr(a, b []float32) float64 {
	var se float64
	for i := range a {
		d := float64(a[i] - b[i])
		se += d * d
	}
	return 10 * math.Log10(float64(len(a))/se)
}

var classLine = regexp.MustCompile(`^(?:(.+): )?(\d) \(p=(0\.\d{3}|1\.000)\)$`)

func TestClassify(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	// The first test digits, whatever they are: the label file says.
	names := []string{"d0", "d1", "d2", "d3", "d4"}
	imgs := writeDigits(t, dir, names, 0)
	labels := make([]int, len(names))
	for i := range labels {
		_, labels[i] = testDigit(t, i)
	}
	out := aectl(t, srv, nil, append([]string{"classify"}, imgs...)...).want(t, 0).stdout
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(imgs) {
		t.Fatalf("%d lines for %d images:\n%s", len(lines), len(imgs), out)
	}
	for i, line := range lines {
		m := classLine.FindStringSubmatch(line)
		if m == nil || m[1] != imgs[i] {
			t.Fatalf("line %q, want %q: D (p=…)", line, imgs[i])
		}
		if m[2] != fmt.Sprint(labels[i]) {
			t.Errorf("%s classified %s, label %d", imgs[i], m[2], labels[i])
		}
	}
	// One image: the line alone.
	one := strings.TrimSuffix(aectl(t, srv, nil, "classify", imgs[0]).want(t, 0).stdout, "\n")
	if m := classLine.FindStringSubmatch(one); m == nil || m[1] != "" || m[2] != fmt.Sprint(labels[0]) {
		t.Errorf("one image: %q", one)
	}

	// --json: the whole answer; --denoiser names the denoiser and implies --denoise.
	js := aectl(t, srv, nil, "classify", "--json", "--denoiser", "denoise", imgs[0], imgs[1]).want(t, 0).stdout
	var res api.Classifications
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatal(err)
	}
	if res.Model != "classifier" || res.Denoiser != "denoise" || len(res.Results) != 2 || len(res.Results[0].Probabilities) != 10 ||
		res.Results[0].Digit != labels[0] || res.Results[1].Digit != labels[1] {
		t.Errorf("JSON answer %+v", res)
	}
	// A denoiser that was not trained on noise: the server's problem.
	r := aectl(t, srv, nil, "classify", "--denoiser", "conv", imgs[0]).want(t, 1)
	if !strings.HasPrefix(r.stderr, "aectl: classify: 400 Bad Request: ") {
		t.Errorf("conv as denoiser: %s", r.stderr)
	}
}

func TestModels(t *testing.T) {
	srv := startServer(t)
	table := aectl(t, srv, nil, "models").want(t, 0).stdout
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "NAME ") || !strings.Contains(lines[0], "FINGERPRINT") {
		t.Errorf("header %q", lines[0])
	}
	var listed []string
	for _, l := range lines[1:] {
		listed = append(listed, strings.Fields(l)[0])
	}
	if want := embedded(t); !slices.Equal(listed, want) {
		t.Errorf("table lists %v, want %v", listed, want)
	}
	var conv, denoise []string
	for _, l := range lines[1:] {
		switch f := strings.Fields(l); f[0] {
		case "conv":
			conv = f
		case "denoise":
			denoise = f
		}
	}
	if strings.Join(conv[1:5], " ") != "autoencoder 32×7×7 6287 no" || denoise[4] != "yes" {
		t.Errorf("rows %q, %q", conv, denoise)
	}

	var ml api.ModelList
	if err := json.Unmarshal([]byte(aectl(t, srv, nil, "models", "--json").want(t, 0).stdout), &ml); err != nil || len(ml.Models) != len(listed) {
		t.Fatalf("--json: %d models, %v", len(ml.Models), err)
	}
	one := aectl(t, srv, nil, "models", "conv").want(t, 0).stdout
	if !strings.Contains(one, "fingerprint:") || !strings.Contains(one, ml.Models[slices.IndexFunc(ml.Models, func(m api.ModelInfo) bool { return m.Name == "conv" })].Fingerprint) {
		t.Errorf("models conv:\n%s", one)
	}
	aectl(t, srv, nil, "models", "classifier").want(t, 0)
	var mi api.ModelInfo
	if err := json.Unmarshal([]byte(aectl(t, srv, nil, "models", "--json", "deep").want(t, 0).stdout), &mi); err != nil || mi.Name != "deep" {
		t.Errorf("models --json deep: %+v, %v", mi, err)
	}
	r := aectl(t, srv, nil, "models", "nope").want(t, 1)
	if !strings.HasPrefix(r.stderr, `aectl: models: 404 Not Found: no model named "nope" (have classifier, `) {
		t.Errorf("unknown model: %s", r.stderr)
	}
}

// counting is a server that counts requests and answers none usefully.
func counting(t *testing.T) (string, *atomic.Int32) {
	var n atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "unexpected", http.StatusTeapot)
	}))
	t.Cleanup(ts.Close)
	return ts.URL, &n
}

func TestFailures(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	imgs := writeDigits(t, dir, []string{"ok"}, 0)

	// The server's problem, one line, exit 1.
	r := aectl(t, srv, nil, "encode", "--model", "nope", imgs[0]).want(t, 1)
	if !strings.HasPrefix(r.stderr, `aectl: encode: 404 Not Found: no model named "nope" (have classifier, `) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("unknown model: %q", r.stderr)
	}
	// A PNG signature on a broken file: the server says what is wrong.
	b, _ := os.ReadFile(imgs[0])
	r = aectl(t, srv, b[:60], "reconstruct", "-").want(t, 1)
	if !strings.HasPrefix(r.stderr, "aectl: reconstruct: 400 Bad Request: image 0: ") {
		t.Errorf("truncated PNG: %q", r.stderr)
	}

	// No server there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	r = aectl(t, down, nil, "models").want(t, 1)
	if want := "aectl: cannot reach " + down + ": connection refused\n"; r.stderr != want {
		t.Errorf("server down: %q, want %q", r.stderr, want)
	}
	// The flag beats the environment.
	aectl(t, down, nil, "models", "--server", srv).want(t, 0)
	aectl(t, down, nil, "--server", srv, "models").want(t, 0)

	// Files that are not PNG images are named before anything is sent.
	fake, n := counting(t)
	txt := filepath.Join(dir, "notes.txt")
	os.WriteFile(txt, []byte("seven, roughly\n"), 0o644)
	jpg := filepath.Join(dir, "photo.jpg")
	os.WriteFile(jpg, []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"), 0o644)
	empty := filepath.Join(dir, "empty.png")
	os.WriteFile(empty, nil, 0o644)
	for _, tc := range []struct{ args []string }{
		{[]string{"encode", imgs[0], txt}},
		{[]string{"reconstruct", txt}},
		{[]string{"denoise", "-o", dir + "/", imgs[0], jpg}},
		{[]string{"classify", empty}},
		{[]string{"classify", filepath.Join(dir, "missing.png")}},
		{[]string{"decode", txt}},
		{[]string{"decode", imgs[0]}},
	} {
		r := aectl(t, fake, nil, tc.args...).want(t, 1)
		want := map[string]string{
			txt:   "notes.txt is text, not a PNG image",
			jpg:   "photo.jpg is a JPEG image, not a PNG",
			empty: "empty.png is empty",
		}[tc.args[len(tc.args)-1]]
		switch {
		case tc.args[0] == "decode" && tc.args[1] == txt:
			want = "notes.txt is not a latent"
		case tc.args[0] == "decode":
			want = "ok.png is a PNG image, not a latent"
		case want == "":
			want = "no such file or directory"
		}
		if !strings.HasPrefix(r.stderr, "aectl: "+tc.args[0]+": ") || !strings.Contains(r.stderr, want) {
			t.Errorf("%v: %q, want %q", tc.args, r.stderr, want)
		}
	}
	if n.Load() != 0 {
		t.Errorf("%d requests were sent for files that are not images", n.Load())
	}

	// No answer within --timeout.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer hang.Close()
	r = aectl(t, hang.URL, nil, "models", "--timeout", "200ms").want(t, 1)
	if !strings.Contains(r.stderr, "no answer from "+hang.URL+" within 200ms") {
		t.Errorf("timeout: %q", r.stderr)
	}
}

func TestUsage(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	imgs := writeDigits(t, dir, []string{"a", "b"}, 0)
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{nil, "usage: aectl [--server URL] [--v2 | --grpc ADDR] COMMAND"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"--frob", "models"}, "flag provided but not defined: -frob"},
		{[]string{"encode", "--frob", imgs[0]}, "aectl: encode: flag provided but not defined: -frob\nRun 'aectl encode --help' for usage."},
		{[]string{"models", "--json=maybe"}, "invalid boolean value"},
		{[]string{"encode"}, "no images"},
		{[]string{"classify"}, "no images"},
		{[]string{"reconstruct", imgs[0], imgs[1]}, "2 images to write: name a directory with -o DIR"},
		{[]string{"denoise", imgs[0], imgs[1], "-o", imgs[0]}, "is a file, but there are 2 images"},
		{[]string{"reconstruct", "-", "-"}, "stdin) given twice"},
		{[]string{"decode", "a.lat", "b.lat"}, "one latent at a time"},
		{[]string{"models", "conv", "dense"}, "one model at a time"},
		{[]string{"models", "--server", "localhost:8080"}, `--server "localhost:8080": want a URL such as http://localhost:8080`},
		{[]string{"models", "--timeout", "-1s"}, "negative"},
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate"`},
	} {
		r := aectl(t, srv, nil, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%q: exit %d, stderr %q, want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	// -- ends the flags: a file may start with a dash.
	dash := filepath.Join(dir, "-x.png")
	b, _ := os.ReadFile(imgs[0])
	os.WriteFile(dash, b, 0o644)
	t.Chdir(dir)
	aectl(t, srv, nil, "classify", "--", "-x.png").want(t, 0)
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		r := aectl(t, "", nil, args...).want(t, 0)
		for _, c := range commands {
			if !strings.Contains(r.stdout, "\n  "+c.name+" ") {
				t.Errorf("%v does not list %s:\n%s", args, c.name, r.stdout)
			}
		}
	}
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}, {c.name, "x.png", "--help"}} {
			r := aectl(t, "", nil, args...).want(t, 0)
			if !strings.HasPrefix(r.stdout, "usage: aectl "+c.name+" [flags]") || !strings.Contains(r.stdout, "-server URL") ||
				!strings.Contains(r.stdout, "  aectl "+c.name) {
				t.Errorf("%v:\n%s", args, r.stdout)
			}
		}
	}
}

// score prints each image's reconstruction error: a test digit low, noise
// far higher; --json is the server's answer; --v2 has no score route.
func TestScore(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	imgs := writeDigits(t, dir, []string{"d0", "d1"}, 0)
	rng := rand.New(rand.NewPCG(3, 3))
	noise := make([]float32, 784)
	for i := range noise {
		noise[i] = rng.Float32()
	}
	b, err := digit.EncodePNG(noise)
	if err != nil {
		t.Fatal(err)
	}
	noisePath := filepath.Join(dir, "noise.png")
	if err := os.WriteFile(noisePath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := aectl(t, srv, nil, "score", "--model", "dense", imgs[0], imgs[1], noisePath).want(t, 0).stdout
	re := regexp.MustCompile(`^(.+): mse=([0-9.e+-]+) bce=([0-9.e+-]+)$`)
	var mse []float64
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %q, want FILE: mse=… bce=…", line)
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		mse = append(mse, v)
	}
	if len(mse) != 3 || mse[2] < 4*max(mse[0], mse[1]) {
		t.Errorf("MSE of two digits and noise %v: the noise should score far higher\n%s", mse, out)
	}
	js := aectl(t, srv, nil, "score", "--json", imgs[0]).want(t, 0).stdout
	var res api.Scores
	if err := json.Unmarshal([]byte(js), &res); err != nil || res.Model != "conv" || len(res.Scores) != 1 || res.Scores[0].MSE <= 0 {
		t.Errorf("JSON answer %s (%v)", js, err)
	}
	if r := aectl(t, srv, nil, "--v2", "score", imgs[0]).want(t, 2); !strings.Contains(r.stderr, "no Open Inference Protocol form") {
		t.Errorf("--v2 score: %s", r.stderr)
	}
	// models NAME shows the distribution to compare with.
	if out := aectl(t, srv, nil, "models", "dense").want(t, 0).stdout; !strings.Contains(out, "score MSE") || !strings.Contains(out, "10000 test digits") {
		t.Errorf("models dense lacks the score distribution:\n%s", out)
	}
}

// --quant: float16 halves conv's latent over /v1 and over V2 (quantised
// by aectl there), and both decode, over either protocol, to within a grey
// level or two of the float32 round trip; a dtype the model does not offer
// is the server's 400.
func TestQuant(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	imgs := writeDigits(t, dir, []string{"q"}, 5)
	ref := filepath.Join(dir, "ref") + "/"
	aectl(t, srv, nil, "reconstruct", imgs[0], "-o", ref).want(t, 0)
	want := readPixels(t, filepath.Join(ref, "q.reconstructed.png"))
	for _, proto := range [][]string{nil, {"--v2"}} {
		lat := filepath.Join(dir, fmt.Sprintf("q%d.lat", len(proto)))
		aectl(t, srv, nil, append(proto, "encode", "--quant", "float16", imgs[0], "-o", lat)...).want(t, 0)
		if fi, err := os.Stat(lat); err != nil || fi.Size() != 15+2*1568 {
			t.Fatalf("%v float16 latent: %v, %v", proto, fi, err)
		}
		for _, dproto := range [][]string{nil, {"--v2"}} {
			out := filepath.Join(dir, fmt.Sprintf("out%d%d", len(proto), len(dproto))) + "/"
			aectl(t, srv, nil, append(dproto, "decode", lat, "-o", out)...).want(t, 0)
			got := readPixels(t, filepath.Join(out, fmt.Sprintf("q%d.decoded.png", len(proto))))
			if d := maxDiff(got, want); d > 2 {
				t.Errorf("encode %v, decode %v: %d grey levels from reconstruct", proto, dproto, d)
			}
		}
	}
	if r := aectl(t, srv, nil, "encode", "--quant", "int8", imgs[0], "-o", filepath.Join(dir, "x.lat")).want(t, 1); !strings.Contains(r.stderr, "does not offer quant=int8") {
		t.Errorf("int8 for conv: %s", r.stderr)
	}
}

// sample draws digits named after their seed, the same again from it;
// interpolate morphs one image into another; both are /v1 only.
func TestSampleInterpolate(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "s")
	aectl(t, srv, nil, "sample", "-n", "3", "--seed", "11", "-o", out).want(t, 0)
	var first [][]float32
	for i := range 3 {
		first = append(first, readPixels(t, filepath.Join(out, fmt.Sprintf("sample-11.%d.png", i))))
	}
	one := pixels(t, []byte(aectl(t, srv, nil, "sample", "-n", "1", "--seed", "11").want(t, 0).stdout))
	if maxDiff(one, first[0]) != 0 {
		t.Error("the same seed drew another first digit")
	}
	// Without --seed the files say which seed the server chose.
	free := filepath.Join(dir, "free")
	aectl(t, srv, nil, "sample", "--model", "vae2", "-n", "12", "-o", free).want(t, 0)
	entries, err := os.ReadDir(free)
	if err != nil || len(entries) != 12 {
		t.Fatalf("%d files (%v), want 12", len(entries), err)
	}
	m := regexp.MustCompile(`^sample-(\d+)\.(\d\d)\.png$`).FindStringSubmatch(entries[0].Name())
	if m == nil || m[2] != "00" {
		t.Fatalf("file %q, want sample-SEED.00.png", entries[0].Name())
	}
	again := pixels(t, []byte(aectl(t, srv, nil, "sample", "--model", "vae2", "-n", "1", "--seed", m[1]).want(t, 0).stdout))
	if maxDiff(again, readPixels(t, filepath.Join(free, entries[0].Name()))) != 0 {
		t.Errorf("seed %s from the file name does not draw the digit again", m[1])
	}

	imgs := writeDigits(t, dir, []string{"seven", "two"}, 0)
	morph := filepath.Join(dir, "morph")
	aectl(t, srv, nil, "interpolate", "-k", "5", imgs[0], imgs[1], "-o", morph).want(t, 0)
	rec := filepath.Join(dir, "rec")
	aectl(t, srv, nil, "reconstruct", "--model", "vae", imgs[0], imgs[1], "-o", rec).want(t, 0)
	if maxDiff(readPixels(t, filepath.Join(morph, "seven-two.0.png")), readPixels(t, filepath.Join(rec, "seven.reconstructed.png"))) != 0 ||
		maxDiff(readPixels(t, filepath.Join(morph, "seven-two.4.png")), readPixels(t, filepath.Join(rec, "two.reconstructed.png"))) > 1 {
		t.Error("the morph does not run from the first image's reconstruction to the second's")
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"sample", "-n", "0"}, 2, "draw 1 to 64 digits"},
		{[]string{"sample", "-n", "4"}, 2, "4 images to write: name a directory with -o DIR"},
		{[]string{"sample", "x.png"}, 2, "sample takes no files"},
		{[]string{"--v2", "sample", "-n", "1"}, 2, "no Open Inference Protocol form"},
		{[]string{"interpolate", imgs[0]}, 2, "takes two images"},
		{[]string{"interpolate", "-k", "65", imgs[0], imgs[1], "-o", morph}, 2, "2 to 64 digits"},
		{[]string{"interpolate", imgs[0], imgs[1]}, 2, "name a directory with -o DIR"},
		{[]string{"sample", "--model", "conv", "-n", "1"}, 1, "cannot sample"},
		{[]string{"interpolate", "--model", "dense", imgs[0], imgs[1], "-o", morph}, 1, "cannot interpolate"},
	} {
		r := aectl(t, srv, nil, tc.args...).want(t, tc.code)
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: stderr %q, want %q", tc.args, r.stderr, tc.want)
		}
	}
	// models NAME shows what the samples are worth.
	if out := aectl(t, srv, nil, "models", "vae").want(t, 0).stdout; !strings.Contains(out, "negative ELBO") || !strings.Contains(out, "sample, interpolate") {
		t.Errorf("models vae:\n%s", out)
	}
}
