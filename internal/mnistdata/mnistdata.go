// Package mnistdata finds MNIST for the tests, so that README's test command
// passes on a fresh clone with no network: the directory named by
// $AESERVE_MNIST, else ../shared/mnist beside the repository (where this
// project's machines keep the four original files), else the subset
// committed in testdata/mnist (the whole test set, and the first 2,000
// training images; see its README).
//
// A test that truly needs the full training set calls RequireFull: it is
// skipped where only the subset is at hand, except under CI=true, where the
// full set must be present and a missing one fails the test.
package mnistdata

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// FullTrainImages is the size of MNIST's training file.
const FullTrainImages = 60000

// Root is the repository's root directory, found from this file's path.
func Root() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var (
	once    sync.Once
	found   string
	trainN  int
	findErr error
)

// Dir returns the directory the tests read MNIST from, and how many
// training images it holds.
func Dir() (string, int, error) {
	once.Do(func() {
		var candidates []string
		if d := os.Getenv("AESERVE_MNIST"); d != "" {
			candidates = append(candidates, d)
		}
		root := Root()
		candidates = append(candidates, filepath.Join(root, "..", "shared", "mnist"), filepath.Join(root, "testdata", "mnist"))
		found, trainN, findErr = first(candidates)
	})
	return found, trainN, findErr
}

// first is the first of dirs holding the four MNIST files.
func first(dirs []string) (string, int, error) {
	var errs []error
	for _, d := range dirs {
		n, err := trainImages(d)
		if err == nil {
			return filepath.Clean(d), n, nil
		}
		errs = append(errs, err)
	}
	return "", 0, fmt.Errorf("no MNIST found (set AESERVE_MNIST): %w", errors.Join(errs...))
}

// trainImages reads the image count from the header of dir's training file.
func trainImages(dir string) (int, error) {
	for _, f := range []string{"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return 0, err
		}
	}
	f, err := os.Open(filepath.Join(dir, "train-images-idx3-ubyte.gz"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.Name(), err)
	}
	var h [8]byte
	if _, err := io.ReadFull(zr, h[:]); err != nil {
		return 0, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return int(binary.BigEndian.Uint32(h[4:])), nil
}

// Must is Dir for a test: it fails the test if no MNIST is found.
func Must(t testing.TB) string {
	t.Helper()
	d, _, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// RequireFull returns a directory holding the full training set. Without
// one it skips the test, or fails it under CI=true.
func RequireFull(t testing.TB) string {
	t.Helper()
	d, n, err := Dir()
	if err == nil && n >= FullTrainImages {
		return d
	}
	why := fmt.Sprintf("needs MNIST's full training set; found %d training images in %s (set AESERVE_MNIST)", n, d)
	if err != nil {
		why = err.Error()
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
	return ""
}

// File is the path of one of the four files in Must's directory.
func File(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(Must(t), name)
}
