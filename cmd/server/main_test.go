package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aeserve/aeserve/internal/mnistdata"
	"github.com/aeserve/aeserve/weights"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// logSink collects the server's JSON log lines and finds the listen address.
type logSink struct {
	mu    sync.Mutex
	lines []map[string]any
	addr  chan string
	debug chan string // the --debug-addr listener's address
	ops   chan string // the --metrics-addr listener's address
	pw    *io.PipeWriter
	done  chan struct{} // closed when the reader has parsed everything
}

func newLogSink() *logSink {
	pr, pw := io.Pipe()
	s := &logSink{addr: make(chan string, 1), debug: make(chan string, 1), ops: make(chan string, 1), pw: pw, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			s.mu.Lock()
			s.lines = append(s.lines, m)
			s.mu.Unlock()
			switch m["message"] {
			case "listening":
				s.addr <- m["addr"].(string)
			case "debug listening":
				s.debug <- m["addr"].(string)
			case "ops listening":
				s.ops <- m["addr"].(string)
			}
		}
	}()
	return s
}

// drain waits until every line written so far is parsed: a write to the
// pipe returns once the reader has the bytes, not once it has parsed them.
func (s *logSink) drain() {
	s.pw.Close()
	<-s.done
}

func (s *logSink) has(msg string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if l["message"] == msg {
			return true
		}
	}
	return false
}

func get(t *testing.T, url string) int {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r.StatusCode
}

func TestRunServesAndStops(t *testing.T) {
	sink := newLogSink()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--workers", "1", "--debug-addr", "127.0.0.1:0"}, env(nil), io.Discard, sink.pw)
	}()
	var base string
	select {
	case a := <-sink.addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("run returned before listening: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for get(t, base+"/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := get(t, base+"/v1/models/conv"); code != http.StatusOK {
		t.Errorf("/v1/models/conv: %d", code)
	}
	// The profiles are served on the debug address only.
	debug := "http://" + <-sink.debug
	if code := get(t, debug+"/debug/pprof/goroutine?debug=1"); code != http.StatusOK {
		t.Errorf("debug listener /debug/pprof/goroutine: %d", code)
	}
	if code := get(t, base+"/debug/pprof/goroutine?debug=1"); code != http.StatusNotFound {
		t.Errorf("public listener /debug/pprof/goroutine: %d, want 404", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after shutdown: %v", err)
	}
	sink.drain()
	for _, msg := range []string{"starting", "weights loaded", "ready", "shut down"} {
		if !sink.has(msg) {
			t.Errorf("no %q log line", msg)
		}
	}
	// Durations are logged as durations, with their unit.
	for _, l := range sink.lines {
		if l["message"] != "starting" {
			continue
		}
		for _, k := range []string{"max_wait", "request_timeout", "drain_delay", "shutdown_timeout"} {
			if v, ok := l[k].(string); !ok || !strings.ContainsAny(v, "smh") {
				t.Errorf("starting: %s = %v, want a duration with its unit", k, l[k])
			}
		}
	}
}

func copyModel(t *testing.T, name, dst string) {
	t.Helper()
	sub, err := fs.Sub(weights.FS, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dst, name), sub); err != nil {
		t.Fatal(err)
	}
}

// Weights that are present but damaged stop the server with a message naming
// the file; nothing is trained over them.
func TestCorruptWeights(t *testing.T) {
	dir := t.TempDir()
	copyModel(t, "conv", dir)
	copyModel(t, "denoise", dir)
	f := filepath.Join(dir, "denoise", "decoder.aew")
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	err = run(t.Context(), []string{"--addr", "127.0.0.1:0", "--weights", dir}, env(nil), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "decoder.aew") || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("corrupt weights: %v", err)
	}
	if after, err := os.ReadFile(f); err != nil || string(after) != string(b) {
		t.Fatalf("the damaged weights were touched: %v", err)
	}
}

// A model named in --models without weights is trained on startup while the
// server already answers /healthz, then loaded from what training wrote.
func TestTrainOnStartup(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	data := mnistdata.Must(t)
	dir := t.TempDir()
	copyModel(t, "conv", dir) // only denoise is missing
	sink := newLogSink()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--weights", dir, "--models", "conv,denoise", "--data", data,
			"--train-limit", "256", "--train-epochs", "1", "--workers", "1"}, env(nil), io.Discard, sink.pw)
	}()
	var base string
	select {
	case a := <-sink.addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("run returned before listening: %v", err)
	}
	if code := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while training: %d", code)
	}
	deadline := time.Now().Add(5 * time.Minute)
	saw503 := false
	for {
		code := get(t, base+"/readyz")
		if code == http.StatusOK {
			break
		}
		saw503 = saw503 || code == http.StatusServiceUnavailable
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Loading MNIST alone takes longer than the first probe, so the server
	// must have been seen not ready.
	if !saw503 {
		t.Error("/readyz never answered 503 while training")
	}
	if _, err := os.Stat(filepath.Join(dir, "denoise", "manifest.json")); err != nil {
		t.Errorf("trained weights not written: %v", err)
	}
	if code := get(t, base+"/v1/models/denoise"); code != http.StatusOK {
		t.Errorf("/v1/models/denoise: %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sink.drain()
	if !sink.has("trained on startup") {
		t.Error("no training log line")
	}
}
