package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/config"
	"github.com/aeserve/aeserve/internal/model"
)

// TestMain lets a test run this very binary as the server, to see the real
// exit status (main's, not run's).
func TestMain(m *testing.M) {
	if os.Getenv("AESERVE_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"aeserve"}, strings.Fields(os.Getenv("AESERVE_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// running is a server started by run, on loopback ports of its own.
type running struct {
	base, ops string
	sink      *logSink
	stop      func() error
}

// start runs the server with args and waits until it is ready; it fails
// the test if run returns first.
func start(t *testing.T, args ...string) *running {
	t.Helper()
	sink := newLogSink()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	args = append([]string{"--addr", "127.0.0.1:0", "--workers", "1"}, args...)
	go func() { done <- run(ctx, args, env(nil), io.Discard, sink.pw) }()
	r := &running{sink: sink}
	select {
	case a := <-sink.addr:
		r.base = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("run %v returned before listening: %v", args, err)
	}
	if slices.Contains(args, "--metrics-addr") {
		r.ops = "http://" + <-sink.ops
	}
	deadline := time.Now().Add(time.Minute)
	for get(t, r.base+"/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := false
	r.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = r.stop() })
	return r
}

func (r *running) models(t *testing.T) api.ModelList {
	t.Helper()
	resp, err := http.Get(r.base + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list api.ModelList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	return list
}

func post(t *testing.T, url, ctype string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// weightsDir copies the embedded models into a directory of the test's and
// deletes the given files (model/file) from it.
func weightsDir(t *testing.T, models []string, remove ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, m := range models {
		copyModel(t, m, dir)
	}
	for _, f := range remove {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A decoder process never reads encoder.aew, and an encoder process never
// reads decoder.aew: with the other half's file deleted, each role starts,
// serves its half and answers the other half's route 404.
func TestRoleLoadsOnlyItsHalf(t *testing.T) {
	digit := testDigitPNG(t)
	for _, tc := range []struct {
		role, missing, serves, refuses string
	}{
		{"decoder", "encoder.aew", "/v1/decode", "/v1/encode"},
		{"encoder", "decoder.aew", "/v1/encode", "/v1/decode"},
	} {
		t.Run(tc.role, func(t *testing.T) {
			dir := weightsDir(t, []string{"conv", "denoise"}, "conv/"+tc.missing, "denoise/"+tc.missing)
			if err := run(t.Context(), []string{"--addr", "127.0.0.1:0", "--weights", dir}, env(nil), io.Discard, io.Discard); err == nil ||
				!strings.Contains(err.Error(), tc.missing) {
				t.Fatalf("--role all without %s: %v, want an error naming the file", tc.missing, err)
			}
			r := start(t, "--weights", dir, "--role", tc.role)
			for _, m := range r.models(t).Models {
				if !slices.Equal(m.Halves, []string{tc.role}) {
					t.Errorf("%s: halves %v, want [%s]", m.Name, m.Halves, tc.role)
				}
			}
			code, body := post(t, r.base+tc.refuses, "image/png", digit)
			if code != http.StatusNotFound || !strings.Contains(string(body), "not-served-by-role") {
				t.Errorf("%s: %d %s", tc.refuses, code, body)
			}
			if tc.role == "encoder" {
				if code, body := post(t, r.base+"/v1/encode", "image/png", digit); code != http.StatusOK {
					t.Errorf("/v1/encode: %d %s", code, body)
				}
			}
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// testDigitPNG is a 28×28 grey PNG of a handwritten-looking stroke.
func testDigitPNG(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "digit.png"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// --weights holding only some models serves those and trains nothing, even
// with no training data anywhere.
func TestPartialWeightsServeWhatTheyHold(t *testing.T) {
	dir := weightsDir(t, []string{"denoise"})
	r := start(t, "--weights", dir, "--data", t.TempDir())
	list := r.models(t)
	if len(list.Models) != 1 || list.Models[0].Name != "denoise" || list.Default != "" {
		t.Fatalf("models %+v", list)
	}
	// conv, the default of /v1/encode, is absent: the 404 says what is served.
	code, body := post(t, r.base+"/v1/encode", "image/png", testDigitPNG(t))
	if code != http.StatusNotFound || !strings.Contains(string(body), "serving denoise") {
		t.Errorf("/v1/encode without conv: %d %s", code, body)
	}
	if r.sink.has("no weights found: the model will be trained on startup") {
		t.Error("tried to train a model nobody asked for")
	}
}

// --models picks among the weights; a missing model that cannot be trained
// here stops the server with the flag that fixes it; bad names are usage
// errors.
func TestModelsFlag(t *testing.T) {
	r := start(t, "--models", "denoise")
	if list := r.models(t); len(list.Models) != 1 || list.Models[0].Name != "denoise" {
		t.Errorf("--models denoise serves %+v", list.Models)
	}
	convOnly := weightsDir(t, []string{"conv"})
	noData := t.TempDir()
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		want  []string
	}{
		{"unknown name", []string{"--models", "conv,nope"}, true, []string{`unknown model "nope"`, "hold", "conv", "denoise", "this build trains"}},
		{"classifier for a half", []string{"--models", "classifier", "--role", "decoder"}, false, []string{"classifier", "no decoder stage", "--role all"}},
		{"empty name", []string{"--models", ""}, true, []string{"empty model name"}},
		{"repeated name", []string{"--models", "conv,conv"}, true, []string{"named twice"}},
		{"missing, encoder role", []string{"--weights", convOnly, "--models", "conv,denoise", "--role", "encoder"}, false,
			[]string{"denoise", "--role encoder", "--weights"}},
		{"missing, no data", []string{"--weights", convOnly, "--models", "conv,denoise", "--data", noData}, false,
			[]string{"denoise", "--data", "--download", noData}},
		{"nothing to serve", []string{"--weights", t.TempDir()}, false, []string{"hold no models", "--models", "--weights"}},
		{"int8 of an unknown model", []string{"--int8", "conv,nope"}, true, []string{"--int8", `unknown model "nope"`, "serves", "classifier", "conv"}},
		{"int8 of a model not in --models", []string{"--models", "conv", "--int8", "denoise"}, true, []string{"--int8", `"denoise"`, "--models (conv)"}},
		{"int8 of a linear code", []string{"--int8", "conv,compact"}, true, []string{"--int8", "compact", "compact-ae/v1", "no int8 path", "these have one: classifier, contractive, contractive-unpenalised, conv, deep"}},
		{"int8 of a Gaussian code", []string{"--models", "vae", "--int8", "vae"}, true, []string{"--int8", "vae", "no int8 path"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(t.Context(), append([]string{"--addr", "127.0.0.1:0"}, tc.args...), env(nil), io.Discard, io.Discard)
			if err == nil || errors.Is(err, config.ErrUsage) != tc.usage {
				t.Fatalf("error %v, want usage error: %v", err, tc.usage)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// The process's exit status: 2 for usage errors, 1 for a server that cannot
// start, 0 for --version (which prints to stdout and serves nothing).
func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args   string
		status int
		stdout string
		stderr string
	}{
		{"--version", 0, "aeserve, version", ""},
		{"--models conv,nope", 2, "", `unknown model "nope"`},
		{"--models ,", 2, "", "empty model name"},
		{"--role sender", 2, "", `unknown role "sender"`},
		{"--kernels sse", 2, "", `kernels "sse": unknown`},
		{"--int8 compact", 2, "", "no int8 path"},
		{"--addr 127.0.0.1:0 --weights " + t.TempDir(), 1, "", "hold no models"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "AESERVE_TEST_RUN_MAIN=1", "AESERVE_TEST_ARGS="+tc.args)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			status := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tc.status || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", status, tc.status, stdout.String(), stderr.String())
			}
		})
	}
}

// --metrics-addr serves probes and metrics on a listener of their own.
func TestMetricsAddr(t *testing.T) {
	r := start(t, "--metrics-addr", "127.0.0.1:0", "--role", "encoder")
	for _, path := range []string{"/healthz", "/readyz?full=1", "/metrics"} {
		if code := get(t, r.ops+path); code != http.StatusOK {
			t.Errorf("ops %s: %d", path, code)
		}
	}
	if code := get(t, r.ops+"/v1/models"); code != http.StatusNotFound {
		t.Errorf("ops /v1/models: %d, want 404", code)
	}
	resp, err := http.Get(r.ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`aeserve_build_info{`, `version="dev"`, `role="encoder"} 1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Every autoencoder is served; a classifier has no encoder, so an
	// encoder process leaves it out.
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "aeserve_server_info{") {
			continue
		}
		_, rest, _ := strings.Cut(line, `models="`)
		models, _, _ := strings.Cut(rest, `"`)
		names := strings.Split(models, ",")
		if !slices.Contains(names, "conv") || !slices.Contains(names, "denoise") || slices.Contains(names, "classifier") {
			t.Errorf("an encoder process serves %v", names)
		}
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

// A model directory may be a symlink, as KServe's storage initializer makes
// them in /mnt/models: it is served like any other.
func TestSymlinkedModelDirectory(t *testing.T) {
	store := weightsDir(t, []string{"dense"})
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(store, "dense"), filepath.Join(dir, "dense")); err != nil {
		t.Fatal(err)
	}
	r := start(t, "--weights", dir)
	if list := r.models(t); len(list.Models) != 1 || list.Models[0].Name != "dense" {
		t.Errorf("models %+v", list.Models)
	}
}

// --int8 switches the models it names, and only those; the rest stay
// float32, as every model does without the flag.
func TestInt8Flag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		int8 []string
	}{
		{nil, nil},
		{[]string{"--models", "conv,denoise,classifier", "--int8", "denoise,classifier"}, []string{"denoise", "classifier"}},
	} {
		o, err := config.Parse(tc.args, env(nil), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		loaded, _, err := loadModels(o, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range loaded {
			want := model.PrecisionFloat32
			if slices.Contains(tc.int8, m.Name) {
				want = model.PrecisionInt8
			}
			if m.Precision() != want {
				t.Errorf("%v: %s runs at %s, want %s", tc.args, m.Name, m.Precision(), want)
			}
		}
	}
}
