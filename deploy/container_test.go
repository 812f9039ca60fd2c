package deploy

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"io/fs"
	"math"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/mnistdata"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/train"
	"github.com/aeserve/aeserve/weights"
)

// The image is proven with a real container engine: built from the
// Dockerfile as it is, run read-only as its non-root user, asked to denoise
// real digits, stopped with SIGTERM, and split into a sender (encoder role)
// and a receiver (decoder role) that talk through a latent.
//
// podman with runc is what these machines run: crun fails on their cgroups,
// and the default ulimits need CAP_SYS_RESOURCE, which they lack, hence the
// test's own containers.conf. No registry can be reached, so the Go base
// image is a stand-in made here from the machine's own (static) toolchain
// and busybox; scratch needs no pull; modules come vendored in the build
// context. Anywhere else the same Dockerfile builds with the public images.
//
// Set AESERVE_GO_IMAGE to build with a Go image you have instead of the
// stand-in. Outside CI a missing podman, runc or busybox skips the test;
// under CI=true it fails.

// mustTool finds a program the test needs.
func mustTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI (.ci/run installs it): %v", name, err)
	}
	t.Skipf("%s not found: %v", name, err)
	return ""
}

// engine runs podman with the test's configuration.
type engine struct {
	t    *testing.T
	conf string // containers.conf path
}

func (e *engine) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, "podman", args...)
	c.Env = append(os.Environ(), "CONTAINERS_CONF="+e.conf)
	return c
}

// run runs podman and returns its stdout; it fails the test on error.
func (e *engine) run(timeout time.Duration, args ...string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	c := e.cmd(ctx, args...)
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		e.t.Fatalf("podman %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, tail(stdout.String()), tail(stderr.String()))
	}
	return strings.TrimSpace(stdout.String())
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

func TestContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the container image")
	}
	for _, tool := range []string{"podman", "runc"} {
		mustTool(t, tool)
	}
	dir := t.TempDir()
	e := &engine{t: t, conf: filepath.Join(dir, "containers.conf")}
	if err := os.WriteFile(e.conf, []byte("[containers]\ndefault_ulimits = []\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	goImage := os.Getenv("AESERVE_GO_IMAGE")
	if goImage == "" {
		goImage = standInGoImage(t, e)
	}
	ctxDir := buildContext(t, filepath.Join(dir, "context"))
	rev := strings.TrimSpace(gitOut(t, "rev-parse", "HEAD"))
	tag := "localhost/aeserve:test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	start := time.Now()
	e.run(15*time.Minute, "build", "--runtime", "runc", "--network", "host",
		"--build-arg", "GO_IMAGE="+goImage, "--build-arg", "VERSION=test-build", "--build-arg", "REVISION="+rev,
		"-f", filepath.Join(ctxDir, "Dockerfile"), "-t", tag, ctxDir)
	t.Cleanup(func() { _ = e.cmd(context.Background(), "rmi", "-f", tag).Run() })
	size, _ := strconv.ParseInt(e.run(time.Minute, "image", "inspect", "--format", "{{.Size}}", tag), 10, 64)
	t.Logf("built %s in %v: %.1f MiB (%d bytes)", tag, time.Since(start).Round(time.Second), float64(size)/(1<<20), size)
	if user := e.run(time.Minute, "image", "inspect", "--format", "{{.Config.User}}", tag); user != "65532:65532" {
		t.Errorf("image user %q, want 65532:65532 (not root)", user)
	}
	if layers := e.run(time.Minute, "image", "inspect", "--format", "{{len .RootFS.Layers}}", tag); layers != "1" {
		t.Errorf("image has %s layers, want 1 (scratch plus the binary)", layers)
	}

	t.Run("serves read-only as non-root and drains on SIGTERM", func(t *testing.T) {
		e := &engine{t: t, conf: e.conf}
		c := e.start(tag, "all")
		metrics := getBody(t, c.ops+"/metrics")
		for _, want := range []string{`aeserve_build_info{`, `version="test-build"`, `revision="` + rev + `"`,
			`aeserve_server_info{models="` + strings.Join(embeddedModels(t), ",") + `",role="all"} 1`} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		if out := e.run(time.Minute, "top", c.name, "user", "huser"); !strings.Contains(out, "65532") {
			t.Errorf("podman top: the server does not run as 65532:\n%s", out)
		}
		clean, noisy := testDigits(t, 8)
		m := loadModel(t, "denoise")
		var grey, gain float64
		for i := range clean {
			png, err := digit.EncodePNG(noisy[i])
			if err != nil {
				t.Fatal(err)
			}
			code, body := postPNG(t, c.api+"/v1/denoise", png)
			if code != http.StatusOK {
				t.Fatalf("/v1/denoise: %d %s", code, body)
			}
			got := pngPixels(t, body)
			want := pngPixels(t, encodeRun(t, m, model.Full, noisy[i]))
			grey = math.Max(grey, float64(maxDiff(got, want)))
			gain += psnr(clean[i], got) - psnr(clean[i], quantise(noisy[i]))
		}
		if grey > 1 {
			t.Errorf("the container's denoised digits differ from the same weights run here by %v grey levels (max 1)", grey)
		}
		if gain <= 0 {
			t.Errorf("denoising through the container gained %.1f dB in all", gain)
		}
		t.Logf("denoised %d noisy test digits: %.1f dB better than the noisy input on average, within %v grey level of the weights run here",
			len(clean), gain/float64(len(clean)), grey)

		stopped := time.Now()
		e.run(time.Minute, "stop", "-t", "30", c.name)
		took := time.Since(stopped)
		if code := e.run(time.Minute, "inspect", "--format", "{{.State.ExitCode}}", c.name); code != "0" {
			t.Errorf("exit code after SIGTERM %s, want 0\n%s", code, e.run(time.Minute, "logs", c.name))
		}
		if took > 20*time.Second {
			t.Errorf("podman stop took %v: the server did not exit on SIGTERM within its grace period", took)
		}
		logs := e.logs(c.name)
		for _, want := range []string{`"draining`, `"shut down"`} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs lack %s", want)
			}
		}
		t.Logf("podman stop: exit 0 after %v (drain delay 1s)", took.Round(10*time.Millisecond))
	})

	t.Run("sender and receiver", func(t *testing.T) {
		e := &engine{t: t, conf: e.conf}
		sender := e.start(tag, "encoder")
		receiver := e.start(tag, "decoder")
		ctx := t.Context()
		clean, _ := testDigits(t, 4)
		pngs := make([][]byte, len(clean))
		for i := range clean {
			var err error
			if pngs[i], err = digit.EncodePNG(clean[i]); err != nil {
				t.Fatal(err)
			}
		}
		send := &api.Client{BaseURL: sender.api}
		recv := &api.Client{BaseURL: receiver.api}
		l, err := send.Encode(ctx, api.EncodeOptions{Model: "conv"}, pngs...)
		if err != nil {
			t.Fatal(err)
		}
		wire, err := l.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var shipped api.Latent
		if err := shipped.UnmarshalBinary(wire); err != nil {
			t.Fatal(err)
		}
		out, err := recv.Decode(ctx, &shipped, api.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m := loadModel(t, "conv")
		for i := range clean {
			want := pngPixels(t, encodeRun(t, m, model.Full, quantise(clean[i])))
			if d := maxDiff(pngPixels(t, out[i]), want); d > 1 {
				t.Errorf("digit %d: encoded by the sender and decoded by the receiver, %d grey levels from the full model here", i, d)
			}
		}
		t.Logf("%d digits crossed from the encoder-role container to the decoder-role container as a %d-byte binary latent",
			len(clean), len(wire))
		// Each side answers only its own half.
		if _, err := send.Decode(ctx, &shipped, api.DecodeOptions{}); !isProblem(err, "not-served-by-role") {
			t.Errorf("decode on the sender: %v, want 404 not-served-by-role", err)
		}
		if _, err := recv.Encode(ctx, api.EncodeOptions{Model: "conv"}, pngs[0]); !isProblem(err, "not-served-by-role") {
			t.Errorf("encode on the receiver: %v, want 404 not-served-by-role", err)
		}
	})
}

// embeddedModels lists the models the image embeds, sorted.
func embeddedModels(t *testing.T) []string {
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

func isProblem(err error, kind string) bool {
	var p *api.Problem
	return errors.As(err, &p) && p.Status == http.StatusNotFound && strings.HasSuffix(p.Type, ":"+kind)
}

// container is one running server container.
type container struct {
	name     string
	api, ops string
}

// start runs the image read-only with the role given, on free loopback
// ports, and waits until /readyz answers 200 on the ops port.
func (e *engine) start(image, role string) *container {
	t := e.t
	t.Helper()
	apiPort, opsPort := freePort(t), freePort(t)
	c := &container{
		name: fmt.Sprintf("aeserve-test-%s-%d", role, apiPort),
		api:  fmt.Sprintf("http://127.0.0.1:%d", apiPort),
		ops:  fmt.Sprintf("http://127.0.0.1:%d", opsPort),
	}
	e.run(2*time.Minute, "run", "-d", "--name", c.name, "--runtime", "runc", "--network", "host",
		"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		image, "--role", role,
		fmt.Sprintf("--addr=127.0.0.1:%d", apiPort), fmt.Sprintf("--metrics-addr=127.0.0.1:%d", opsPort),
		"--drain-delay=1s", "--shutdown-timeout=10s")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s logs:\n%s", c.name, tail(e.logs(c.name)))
		}
		_ = e.cmd(context.Background(), "rm", "-f", "-t", "0", c.name).Run()
	})
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := http.Get(c.ops + "/readyz")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never ready (%v)\n%s", c.name, err, tail(e.logs(c.name)))
		}
		if state := e.run(time.Minute, "inspect", "--format", "{{.State.Status}}", c.name); state == "exited" {
			t.Fatalf("%s exited\n%s", c.name, tail(e.logs(c.name)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *engine) logs(name string) string {
	out, _ := e.cmd(context.Background(), "logs", name).CombinedOutput()
	return string(out)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// standInGoImage imports an image holding busybox (for RUN's /bin/sh) and
// the machine's own Go toolchain, which is statically linked, in place of
// the golang image no registry can serve here.
func standInGoImage(t *testing.T, e *engine) string {
	t.Helper()
	busybox := mustTool(t, "busybox")
	goroot := runtimeGOROOT(t)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeStandIn(pw, busybox, goroot)) }()
	const name = "localhost/aeserve-go-standin:test"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := e.cmd(ctx, "import",
		"--change", "ENV PATH=/usr/local/go/bin:/bin",
		"--change", "ENV GOPATH=/go",
		"--change", "ENV HOME=/root",
		"--change", "ENV GOTOOLCHAIN=local",
		"-", name)
	c.Stdin = pr
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("podman import: %v\n%s", err, out)
	}
	return name
}

func runtimeGOROOT(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// writeStandIn writes the stand-in's root filesystem as a tar stream.
func writeStandIn(w io.Writer, busybox, goroot string) error {
	tw := tar.NewWriter(w)
	dirs := []string{"bin", "tmp", "root", "go", "etc", "etc/ssl", "etc/ssl/certs", "usr", "usr/local"}
	for _, d := range dirs {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode}); err != nil {
			return err
		}
	}
	if err := addFile(tw, busybox, "bin/busybox"); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "busybox", Mode: 0o777}); err != nil {
		return err
	}
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		if err := addFile(tw, "/etc/ssl/certs/ca-certificates.crt", "etc/ssl/certs/ca-certificates.crt"); err != nil {
			return err
		}
	}
	err := filepath.WalkDir(goroot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(goroot, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(filepath.Join("usr/local/go", rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: int64(info.Mode().Perm())})
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: link, Mode: 0o777})
		case info.Mode().IsRegular():
			return addFile(tw, p, name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, src, name string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: info.Size(), Mode: int64(info.Mode().Perm())}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// buildContext copies the repository's files (tracked, and new ones not
// ignored) into dir and vendors the modules there, so the build needs no
// module proxy. The repository itself is left untouched.
func buildContext(t *testing.T, dir string) string {
	t.Helper()
	root := repoRoot(t)
	for _, f := range strings.Split(gitOut(t, "ls-files", "-z", "--cached", "--others", "--exclude-standard"), "\x00") {
		if f == "" || strings.HasPrefix(f, "deploy/") {
			continue
		}
		src, dst := filepath.Join(root, f), filepath.Join(dir, f)
		info, err := os.Lstat(src)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		if !info.Mode().IsRegular() {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "mod", "vendor", "-o", filepath.Join(dir, "vendor"))
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, out)
	}
	return dir
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func gitOut(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// testDigits returns n MNIST test digits, clean and with the denoising
// model's noise, clip(x + 0.5·N(0,1), 0, 1), seeded. They come from the far
// end of the test set, which the server's own tests do not use.
func testDigits(t *testing.T, n int) (clean, noisy [][]float32) {
	t.Helper()
	px, count, err := train.ReadImages(mnistdata.File(t, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		t.Fatalf("MNIST test images are required: %v", err)
	}
	rng := rand.New(rand.NewSource(20261201))
	for i := range n {
		k := count - 1 - i*37
		c := px[k*model.ImageLen : (k+1)*model.ImageLen]
		nz := make([]float32, len(c))
		train.AddNoise(nz, c, 0.5, rng)
		clean, noisy = append(clean, c), append(noisy, nz)
	}
	return clean, noisy
}

func loadModel(t *testing.T, name string) *model.Model {
	t.Helper()
	m, err := model.LoadFS(weights.FS, name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// encodeRun runs one image through half h here and returns the PNG the
// server would send.
func encodeRun(t *testing.T, m *model.Model, h model.Half, px []float32) []byte {
	t.Helper()
	r, err := m.NewRunner(h)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	y, err := r.Run(quantise(px), 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := digit.EncodePNG(y)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// quantise is what an image becomes on its way through an 8-bit PNG.
func quantise(px []float32) []float32 {
	b, err := digit.EncodePNG(px)
	if err != nil {
		panic(err)
	}
	q, err := digit.Decode(b, digit.Limits{}, digit.Options{})
	if err != nil {
		panic(err)
	}
	return q
}

func pngPixels(t *testing.T, b []byte) []uint8 {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	bounds := img.Bounds()
	out := make([]uint8, 0, bounds.Dx()*bounds.Dy())
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, _, _, _ := img.At(x, y).RGBA()
			out = append(out, uint8(r>>8))
		}
	}
	return out
}

func maxDiff(a, b []uint8) int {
	if len(a) != len(b) {
		return 255
	}
	d := 0
	for i := range a {
		d = max(d, int(a[i])-int(b[i]), int(b[i])-int(a[i]))
	}
	return d
}

// psnr of an 8-bit image against the reference in [0, 1]; px may be
// []uint8 (a PNG's pixels) or []float32.
func psnr[T uint8 | float32](ref []float32, px []T) float64 {
	var se float64
	for i, r := range ref {
		v := float64(px[i])
		if _, ok := any(px[i]).(uint8); ok {
			v /= 255
		}
		se += (v - float64(r)) * (v - float64(r))
	}
	return 10 * math.Log10(float64(len(ref))/se)
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func postPNG(t *testing.T, url string, png []byte) (int, []byte) {
	t.Helper()
	r, err := http.Post(url, "image/png", bytes.NewReader(png))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r.StatusCode, b
}
