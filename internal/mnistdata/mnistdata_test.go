package mnistdata

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The committed subset is what its SHA256SUMS says, and holds enough for
// the tests: without it a fresh clone's tests have no MNIST.
func TestCommittedSubset(t *testing.T) {
	dir := filepath.Join(Root(), "testdata", "mnist")
	f, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	checked := 0
	for sc.Scan() {
		want, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", sc.Text())
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != want {
			t.Errorf("%s: SHA-256 %x, SHA256SUMS says %s", name, got, want)
		}
		checked++
	}
	if checked != 4 {
		t.Errorf("SHA256SUMS checks %d files, want the four", checked)
	}
	n, err := trainImages(dir)
	if err != nil || n != 2000 {
		t.Errorf("subset: %d training images, %v; want 2000", n, err)
	}
}

// Dir takes the first candidate holding MNIST: a missing or empty
// directory (a fresh clone has no ../shared/mnist) falls through to the
// next, and the subset is the last resort.
func TestFirstCandidate(t *testing.T) {
	subset := filepath.Clean(filepath.Join(Root(), "testdata", "mnist"))
	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		dirs []string
		want string
	}{
		{"fresh clone", []string{filepath.Join(empty, "no-shared-mnist"), subset}, subset},
		{"empty override", []string{empty, subset}, subset},
		{"override wins", []string{subset, empty}, subset},
		{"nothing", []string{empty}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, n, err := first(tc.dirs)
			if got != tc.want || (tc.want == "") != (err != nil) {
				t.Errorf("first(%v) = %q, %d, %v; want %q", tc.dirs, got, n, err, tc.want)
			}
		})
	}
}
