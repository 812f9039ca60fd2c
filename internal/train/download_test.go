package train

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// mirror is a loopback MNIST mirror under /mnist/ serving the real files, with hooks to break it.
type mirror struct {
	srv      *httptest.Server
	files    map[string][]byte
	requests atomic.Int64
	mu       sync.Mutex
	override func(w http.ResponseWriter, r *http.Request, name string) bool // true = handled
}

var (
	realFilesOnce sync.Once
	realFiles     map[string][]byte
	realFilesErr  error
)

func newMirror(t *testing.T) *mirror {
	t.Helper()
	dir := sharedMNIST(t)
	realFilesOnce.Do(func() {
		realFiles = map[string][]byte{}
		for name := range Sums {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				realFilesErr = err
				return
			}
			realFiles[name] = b
		}
	})
	if realFilesErr != nil {
		t.Fatal(realFilesErr)
	}
	m := &mirror{files: map[string][]byte{}}
	for k, v := range realFiles {
		m.files[k] = v // shared, read-only: tests that corrupt a file replace the slice
	}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.requests.Add(1)
		name, ok := strings.CutPrefix(r.URL.Path, "/mnist/")
		m.mu.Lock()
		override, b := m.override, m.files[name]
		m.mu.Unlock()
		if override != nil && override(w, r, name) {
			return
		}
		if !ok || b == nil {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *mirror) url() string { return m.srv.URL + "/mnist/" }

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
}

// dirNames lists dir, so tests can assert that no temporary or partial files are left behind.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestDownload(t *testing.T) {
	m := newMirror(t)
	dir := filepath.Join(t.TempDir(), "data") // Download must create it
	// No trailing slash: Download adds it.
	mirrorURL := strings.TrimSuffix(m.url(), "/")
	if err := Download(t.Context(), mirrorURL, dir, testLogger(t), WithHTTPClient(m.srv.Client())); err != nil {
		t.Fatal(err)
	}
	if err := Verify(dir); err != nil {
		t.Fatalf("Verify after Download: %v", err)
	}
	if got, want := dirNames(t, dir), sumNames(); !slices.Equal(got, want) {
		t.Errorf("dir holds %v, want exactly %v", got, want)
	}
	if n := m.requests.Load(); n != 4 {
		t.Errorf("%d requests, want 4", n)
	}
	for name := range Sums {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm != 0o644 {
			t.Errorf("%s has mode %v, want 0644", name, perm)
		}
	}
	if _, err := Load(dir, "t10k"); err != nil {
		t.Errorf("Load of the downloaded files: %v", err)
	}

	// Everything present and good: nothing is fetched again.
	if err := Download(t.Context(), m.url(), dir, testLogger(t), WithHTTPClient(m.srv.Client())); err != nil {
		t.Fatal(err)
	}
	if n := m.requests.Load(); n != 4 {
		t.Errorf("second Download made %d more requests, want 0", n-4)
	}
}

func TestDownloadReplacesBadFile(t *testing.T) {
	m := newMirror(t)
	dir := t.TempDir()
	shared := sharedMNIST(t)
	for name := range Sums {
		copyFile(t, filepath.Join(shared, name), filepath.Join(dir, name))
	}
	bad := "t10k-labels-idx1-ubyte.gz"
	write(t, dir, bad, []byte("not mnist"))
	if err := Download(t.Context(), m.url(), dir, testLogger(t), WithHTTPClient(m.srv.Client())); err != nil {
		t.Fatal(err)
	}
	if n := m.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1 (only the bad file)", n)
	}
	if err := Verify(dir); err != nil {
		t.Fatal(err)
	}
}

func TestDownloadErrors(t *testing.T) {
	const victim = "t10k-labels-idx1-ubyte.gz" // second in download order
	tests := []struct {
		name  string
		setup func(m *mirror)
		check func(t *testing.T, err error, m *mirror)
	}{
		{
			name: "corrupted byte",
			setup: func(m *mirror) {
				b := bytes.Clone(m.files[victim])
				b[len(b)/2] ^= 0x01
				m.files[victim] = b
			},
			check: func(t *testing.T, err error, m *mirror) {
				if !errors.Is(err, ErrChecksum) {
					t.Fatalf("error %v is not ErrChecksum", err)
				}
				var ce *ChecksumError
				if !errors.As(err, &ce) || ce.File != victim || ce.Want != Sums[victim] || ce.Got == ce.Want || len(ce.Got) != 64 {
					t.Fatalf("error %#v does not describe the mismatch of %s", err, victim)
				}
				for _, s := range []string{victim, ce.Want, ce.Got} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
			},
		},
		{
			name: "404",
			setup: func(m *mirror) {
				m.override = func(w http.ResponseWriter, r *http.Request, name string) bool {
					if name == victim {
						http.NotFound(w, r)
						return true
					}
					return false
				}
			},
			check: func(t *testing.T, err error, m *mirror) {
				var se *StatusError
				if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
					t.Fatalf("error %v is not a 404 *StatusError", err)
				}
				for _, s := range []string{"404 Not Found", m.url() + victim} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
			},
		},
		{
			name: "body cut short",
			setup: func(m *mirror) {
				m.override = func(w http.ResponseWriter, r *http.Request, name string) bool {
					if name != victim {
						return false
					}
					// Announce the full length, then hang up half-way.
					w.Header().Set("Content-Length", "4542")
					w.Write(m.files[victim][:2000])
					w.(http.Flusher).Flush()
					panic(http.ErrAbortHandler)
				}
			},
			check: func(t *testing.T, err error, m *mirror) {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("error %v is not io.ErrUnexpectedEOF", err)
				}
				if !strings.Contains(err.Error(), victim) {
					t.Errorf("error %q does not name %s", err, victim)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMirror(t)
			m.mu.Lock() // the handler reads these from other goroutines
			tt.setup(m)
			m.mu.Unlock()
			dir := t.TempDir()
			err := Download(t.Context(), m.url(), dir, testLogger(t), WithHTTPClient(m.srv.Client()))
			if err == nil {
				t.Fatal("Download succeeded, want an error")
			}
			tt.check(t, err, m)
			// The file before the victim is complete; nothing else, in particular no temp file.
			if got, want := dirNames(t, dir), []string{"t10k-images-idx3-ubyte.gz"}; !slices.Equal(got, want) {
				t.Errorf("dir holds %v, want %v", got, want)
			}
		})
	}
}

func TestDownloadCancel(t *testing.T) {
	t.Run("mid-file", func(t *testing.T) {
		m := newMirror(t)
		started := make(chan struct{})
		m.mu.Lock()
		m.override = func(w http.ResponseWriter, r *http.Request, name string) bool {
			w.Header().Set("Content-Length", "9912422")
			w.Write(make([]byte, 64<<10))
			w.(http.Flusher).Flush()
			close(started)
			<-r.Context().Done() // a stalled mirror: only the client giving up ends this
			return true
		}
		m.mu.Unlock()
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-started
			cancel()
		}()
		dir := t.TempDir()
		start := time.Now()
		err := Download(ctx, m.url(), dir, testLogger(t), WithHTTPClient(m.srv.Client()))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Download took %v to notice the cancellation", d)
		}
		if names := dirNames(t, dir); len(names) != 0 {
			t.Errorf("dir holds %v after cancellation, want nothing", names)
		}
	})
	t.Run("before start", func(t *testing.T) {
		m := newMirror(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := Download(ctx, m.url(), t.TempDir(), testLogger(t), WithHTTPClient(m.srv.Client()))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if n := m.requests.Load(); n != 0 {
			t.Errorf("%d requests after cancellation, want 0", n)
		}
	})
}

func TestVerify(t *testing.T) {
	shared := sharedMNIST(t)
	tests := []struct {
		name    string
		shared  bool              // verify the shared directory itself
		files   map[string]string // name → source in shared, or "" for junk content
		wantIs  error
		wantMsg []string
	}{
		{name: "shared copy", shared: true},
		{name: "only some present", files: map[string]string{"t10k-labels-idx1-ubyte.gz": "t10k-labels-idx1-ubyte.gz"}},
		{name: "empty dir", wantIs: fs.ErrNotExist, wantMsg: []string{"no MNIST .gz files"}},
		{name: "two bad", wantIs: ErrChecksum,
			files: map[string]string{
				"t10k-labels-idx1-ubyte.gz":  "",
				"train-labels-idx1-ubyte.gz": "",
				"t10k-images-idx3-ubyte.gz":  "t10k-images-idx3-ubyte.gz",
			},
			wantMsg: []string{"t10k-labels-idx1-ubyte.gz: sha256 mismatch", "train-labels-idx1-ubyte.gz: sha256 mismatch",
				Sums["t10k-labels-idx1-ubyte.gz"]}},
		{name: "swapped files", wantIs: ErrChecksum,
			files:   map[string]string{"t10k-labels-idx1-ubyte.gz": "train-labels-idx1-ubyte.gz"},
			wantMsg: []string{"got " + Sums["train-labels-idx1-ubyte.gz"]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.shared {
				dir = shared
			}
			for name, src := range tt.files {
				if src == "" {
					write(t, dir, name, []byte("junk"))
				} else {
					copyFile(t, filepath.Join(shared, src), filepath.Join(dir, name))
				}
			}
			err := Verify(dir)
			if tt.wantIs == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("error %v is not %v", err, tt.wantIs)
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestSums(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(sharedMNIST(t), "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) == 2 {
			want[f[1]] = f[0]
		}
	}
	if len(want) != 4 || len(Sums) != 4 {
		t.Fatalf("SHA256SUMS has %d entries, Sums %d; want 4 each", len(want), len(Sums))
	}
	for name, sum := range want {
		if Sums[name] != sum {
			t.Errorf("Sums[%q] = %q, SHA256SUMS says %q", name, Sums[name], sum)
		}
	}
}
