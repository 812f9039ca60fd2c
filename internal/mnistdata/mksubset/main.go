// Command mksubset writes the MNIST subset committed in testdata/mnist, from
// the four original files: the whole test set, as it is, and the first
// images of the training set with their labels, so that a fresh clone's
// tests run with no network and no ../shared/mnist.
//
//	go run ./internal/mnistdata/mksubset --from ../shared/mnist --out testdata/mnist --train 2000
package main

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

func main() {
	from := flag.String("from", "../shared/mnist", "directory of the four original MNIST .gz files")
	out := flag.String("out", "testdata/mnist", "output directory")
	n := flag.Int("train", 2000, "training images (and labels) to keep, from the start of the training file")
	flag.Parse()
	if err := run(*from, *out, *n); err != nil {
		fmt.Fprintln(os.Stderr, "mksubset:", err)
		os.Exit(1)
	}
}

func run(from, out string, n int) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	// The test set, byte for byte: its SHA-256 stays the original's.
	for _, f := range []string{"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"} {
		b, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, f), b, 0o644); err != nil {
			return err
		}
	}
	if err := subset(filepath.Join(from, "train-images-idx3-ubyte.gz"), filepath.Join(out, "train-images-idx3-ubyte.gz"), n, 16, 784); err != nil {
		return err
	}
	if err := subset(filepath.Join(from, "train-labels-idx1-ubyte.gz"), filepath.Join(out, "train-labels-idx1-ubyte.gz"), n, 8, 1); err != nil {
		return err
	}
	return sums(out)
}

// subset copies an IDX file's header, with the item count set to n, and its
// first n items.
func subset(src, dst string, n, header, item int) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	buf := make([]byte, header+n*item)
	if _, err := io.ReadFull(zr, buf); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if have := int(binary.BigEndian.Uint32(buf[4:8])); have < n {
		return fmt.Errorf("%s holds %d items, fewer than %d", src, have, n)
	}
	binary.BigEndian.PutUint32(buf[4:8], uint32(n))
	o, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(o, gzip.BestCompression)
	if err != nil {
		return err
	}
	zw.ModTime = zw.ModTime.UTC() // zero: the file is the same every run
	if _, err := zw.Write(buf); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return o.Close()
}

// sums writes SHA256SUMS, in sha256sum's format.
func sums(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.gz"))
	if err != nil {
		return err
	}
	sort.Strings(names)
	var lines string
	for _, p := range names {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines += fmt.Sprintf("%x  %s\n", sha256.Sum256(b), filepath.Base(p))
	}
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(lines), 0o644)
}
