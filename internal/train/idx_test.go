package train

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aeserve/aeserve/internal/mnistdata"
)

// sharedMNIST is a directory holding the four original MNIST files, for the tests that check
// them against their published sums or need all 60,000 training images. Without one they are
// skipped on a developer's clone, and fail under CI=true (CI has the full set); see
// internal/mnistdata.
func sharedMNIST(t testing.TB) string {
	t.Helper()
	dir := mnistdata.RequireFull(t)
	for name := range Sums {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("MNIST files are required for these tests (expected in %s): %v", dir, err)
		}
	}
	return dir
}

// anyMNIST is MNIST as far as the test needs it: the full set, or the subset committed in
// testdata/mnist (the whole test set and 2,000 training images).
func anyMNIST(t testing.TB) string {
	t.Helper()
	return mnistdata.Must(t)
}

// The training split takes a few hundred ms to decompress; several tests share one copy.
var (
	trainOnce sync.Once
	trainSet  *Set
	trainErr  error
)

func loadTrain(t *testing.T) *Set {
	t.Helper()
	dir := sharedMNIST(t)
	trainOnce.Do(func() { trainSet, trainErr = Load(dir, "train") })
	if trainErr != nil {
		t.Fatalf("Load(train): %v", trainErr)
	}
	return trainSet
}

func TestLoadReal(t *testing.T) {
	dir := sharedMNIST(t)
	tests := []struct {
		split     string
		n         int
		first     uint8
		mean      float64 // of all pixels; 0 = don't check
		wantMeanE float64
	}{
		{split: "train", n: 60000, first: 5, mean: 0.1307, wantMeanE: 1e-3},
		{split: "t10k", n: 10000, first: 7},
	}
	for _, tt := range tests {
		t.Run(tt.split, func(t *testing.T) {
			var s *Set
			if tt.split == "train" {
				s = loadTrain(t)
			} else {
				var err error
				if s, err = Load(dir, tt.split); err != nil {
					t.Fatal(err)
				}
			}
			if s.N != tt.n || len(s.Labels) != tt.n || len(s.Images) != tt.n*imageLen {
				t.Fatalf("N=%d, %d labels, %d pixels; want %d, %d, %d",
					s.N, len(s.Labels), len(s.Images), tt.n, tt.n, tt.n*imageLen)
			}
			if s.Labels[0] != tt.first {
				t.Errorf("first label %d, want %d", s.Labels[0], tt.first)
			}
			var sum float64
			lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
			for _, v := range s.Images {
				sum += float64(v)
				lo, hi = min(lo, v), max(hi, v)
			}
			// Real MNIST uses the full byte range, so both ends must map exactly.
			if lo != 0 || hi != 1 {
				t.Errorf("pixel range [%v, %v], want [0, 1]", lo, hi)
			}
			if tt.mean != 0 {
				if mean := sum / float64(len(s.Images)); math.Abs(mean-tt.mean) > tt.wantMeanE {
					t.Errorf("mean pixel %.5f, want %.4f ± %g", mean, tt.mean, tt.wantMeanE)
				}
			}
			if len(s.Image(1)) != imageLen || &s.Image(1)[0] != &s.Images[imageLen] {
				t.Error("Image(1) is not the second 784-pixel window of Images")
			}
		})
	}
}

func gunzipFile(t *testing.T, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRawAndMisnamed checks that the format is detected from the content, not the file name.
func TestRawAndMisnamed(t *testing.T) {
	shared := anyMNIST(t)
	want, err := Load(shared, "t10k")
	if err != nil {
		t.Fatal(err)
	}
	raw := t.TempDir()
	gunzipFile(t, filepath.Join(shared, "t10k-images-idx3-ubyte.gz"), filepath.Join(raw, "t10k-images-idx3-ubyte"))
	gunzipFile(t, filepath.Join(shared, "t10k-labels-idx1-ubyte.gz"), filepath.Join(raw, "t10k-labels-idx1-ubyte"))

	swapped := t.TempDir()
	// Gzip content without .gz, raw content with .gz.
	copyFile(t, filepath.Join(shared, "t10k-images-idx3-ubyte.gz"), filepath.Join(swapped, "t10k-images-idx3-ubyte"))
	copyFile(t, filepath.Join(raw, "t10k-labels-idx1-ubyte"), filepath.Join(swapped, "t10k-labels-idx1-ubyte.gz"))

	for _, tt := range []struct{ name, dir string }{{"raw", raw}, {"swapped names", swapped}} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(tt.dir, "t10k")
			if err != nil {
				t.Fatal(err)
			}
			if got.N != want.N || !slicesEqual(got.Images, want.Images) || !bytes.Equal(got.Labels, want.Labels) {
				t.Fatal("set differs from the one read from the gzip files")
			}
		})
	}
}

func slicesEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLoadPrefersGzip(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "train-images-idx3-ubyte.gz", gz(idx3(imageMagic, 2, 28, 28, pixels(2))))
	write(t, dir, "train-labels-idx1-ubyte.gz", gz(idx1(labelMagic, 2, []byte{1, 2})))
	write(t, dir, "train-images-idx3-ubyte", idx3(imageMagic, 3, 28, 28, pixels(3)))
	write(t, dir, "train-labels-idx1-ubyte", idx1(labelMagic, 3, []byte{1, 2, 3}))
	s, err := Load(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 2 {
		t.Fatalf("N = %d, want 2 (from the .gz files)", s.N)
	}
	// Pixel byte b must map to b/255.
	for i, v := range s.Images {
		if want := float32(i%256) / 255; v != want {
			t.Fatalf("pixel %d = %v, want %v", i, v, want)
		}
	}
}

// Builders for small synthetic IDX files.

func idx3(magic, n, rows, cols uint32, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	b = binary.BigEndian.AppendUint32(b, n)
	b = binary.BigEndian.AppendUint32(b, rows)
	b = binary.BigEndian.AppendUint32(b, cols)
	return append(b, data...)
}

func idx1(magic, n uint32, labels []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	b = binary.BigEndian.AppendUint32(b, n)
	return append(b, labels...)
}

func pixels(n int) []byte {
	b := make([]byte, n*imageLen)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func write(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadErrors(t *testing.T) {
	const (
		imgName = "train-images-idx3-ubyte"
		lblName = "train-labels-idx1-ubyte"
	)
	goodGz := gz(idx3(imageMagic, 2, 28, 28, pixels(2)))
	badCRC := bytes.Clone(goodGz)
	badCRC[len(badCRC)-8] ^= 0xff // CRC-32 in the gzip trailer

	tests := []struct {
		name     string
		file     string
		data     []byte
		bothWays bool // also try the data gzip-compressed
		labels   bool // read with ReadLabels instead of ReadImages
		wantIs   error
		wantMsg  string
	}{
		{name: "image bad magic", file: imgName, data: idx3(labelMagic, 1, 28, 28, pixels(1)), bothWays: true,
			wantIs: ErrBadMagic, wantMsg: "bad magic 0x00000801, want 0x00000803 (an IDX3 image file)"},
		{name: "label bad magic", file: lblName, data: idx3(imageMagic, 1, 28, 28, pixels(1)), bothWays: true, labels: true,
			wantIs: ErrBadMagic, wantMsg: "bad magic 0x00000803, want 0x00000801 (an IDX1 label file)"},
		{name: "short header", file: imgName, data: idx3(imageMagic, 1, 28, 28, nil)[:10], bothWays: true,
			wantIs: ErrTruncated, wantMsg: "too short for an IDX3 image header"},
		{name: "empty file", file: lblName, data: nil, labels: true,
			wantIs: ErrTruncated, wantMsg: "0 bytes"},
		{name: "truncated images", file: imgName, data: idx3(imageMagic, 3, 28, 28, pixels(2)), bothWays: true,
			wantIs: ErrTruncated, wantMsg: "header says 3 images"},
		{name: "valid control", file: imgName, data: idx3(imageMagic, 2, 28, 28, pixels(2)), bothWays: true},
		{name: "valid labels control", file: lblName, data: idx1(labelMagic, 2, []byte{0, 9}), bothWays: true, labels: true},
		{name: "trailing bytes", file: imgName, data: append(idx3(imageMagic, 2, 28, 28, pixels(2)), 1, 2, 3, 4, 5), bothWays: true,
			wantIs: ErrTrailing, wantMsg: "5 trailing bytes after 2 images"},
		{name: "wrong rows", file: imgName, data: idx3(imageMagic, 1, 27, 28, make([]byte, 27*28)), bothWays: true,
			wantIs: ErrBadDims, wantMsg: "images are 27×28, want 28×28"},
		{name: "wrong cols", file: imgName, data: idx3(imageMagic, 1, 28, 32, make([]byte, 28*32)), bothWays: true,
			wantIs: ErrBadDims, wantMsg: "28×32"},
		{name: "absurd count", file: imgName, data: idx3(imageMagic, 1<<31, 28, 28, pixels(1)), bothWays: true,
			wantIs: ErrTruncated, wantMsg: "header says 2147483648 images"},
		{name: "label out of range", file: lblName, data: idx1(labelMagic, 3, []byte{0, 10, 9}), bothWays: true, labels: true,
			wantIs: ErrBadLabel, wantMsg: "label 10 at index 1 out of range 0..9"},
		{name: "truncated labels", file: lblName, data: idx1(labelMagic, 4, []byte{0, 1, 2}), bothWays: true, labels: true,
			wantIs: ErrTruncated, wantMsg: "header says 4 labels"},
		{name: "trailing label bytes", file: lblName, data: idx1(labelMagic, 2, []byte{0, 1, 2}), bothWays: true, labels: true,
			wantIs: ErrTrailing, wantMsg: "1 trailing bytes after 2 labels"},
		{name: "gzip bad crc", file: imgName + ".gz", data: badCRC,
			wantIs: ErrCorrupt, wantMsg: "checksum"},
		{name: "gzip cut short", file: imgName + ".gz", data: goodGz[:len(goodGz)/2],
			wantIs: ErrTruncated, wantMsg: "truncated"},
		{name: "gzip junk after magic", file: imgName + ".gz", data: []byte{0x1f, 0x8b, 0, 0, 0},
			wantIs: ErrTruncated, wantMsg: "gzip header"},
	}
	for _, tt := range tests {
		variants := []bool{false}
		if tt.bothWays {
			variants = append(variants, true)
		}
		for _, compressed := range variants {
			name, file, data := tt.name, tt.file, tt.data
			if compressed {
				name, file, data = name+"/gz", file+".gz", gz(data)
			}
			t.Run(name, func(t *testing.T) {
				path := write(t, t.TempDir(), file, data)
				var err error
				if tt.labels {
					_, err = ReadLabels(path)
				} else {
					_, _, err = ReadImages(path)
				}
				if tt.wantIs == nil {
					if err != nil {
						t.Fatalf("unexpected error: %v", err)
					}
					return
				}
				checkFileErr(t, err, path, tt.wantIs, tt.wantMsg)
			})
		}
	}
}

func checkFileErr(t *testing.T, err error, path string, wantIs error, wantMsg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", wantIs)
	}
	if !errors.Is(err, wantIs) {
		t.Errorf("error %q is not %v", err, wantIs)
	}
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != path {
		t.Errorf("error %q: not a *FileError for %s", err, path)
	}
	if msg := err.Error(); !strings.Contains(msg, filepath.Base(path)) || !strings.Contains(msg, wantMsg) {
		t.Errorf("error %q should name %s and say %q", msg, filepath.Base(path), wantMsg)
	}
}

func TestMissingFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t10k-images-idx3-ubyte.gz")
	_, _, err := ReadImages(path)
	checkFileErr(t, err, path, fs.ErrNotExist, "no such file")
	_, err = ReadLabels(path)
	checkFileErr(t, err, path, fs.ErrNotExist, "no such file")

	tests := []struct {
		name    string
		files   map[string][]byte
		split   string
		wantIs  error
		wantMsg []string
	}{
		{name: "empty dir", split: "t10k", wantIs: fs.ErrNotExist,
			wantMsg: []string{"t10k-images-idx3-ubyte(.gz) not found", dir}},
		{name: "labels missing", split: "t10k", wantIs: fs.ErrNotExist,
			files:   map[string][]byte{"t10k-images-idx3-ubyte": idx3(imageMagic, 1, 28, 28, pixels(1))},
			wantMsg: []string{"t10k-labels-idx1-ubyte(.gz) not found"}},
		{name: "count mismatch", split: "t10k", wantIs: ErrCountMismatch,
			files: map[string][]byte{
				"t10k-images-idx3-ubyte.gz": gz(idx3(imageMagic, 3, 28, 28, pixels(3))),
				"t10k-labels-idx1-ubyte.gz": gz(idx1(labelMagic, 2, []byte{4, 2})),
			},
			wantMsg: []string{"t10k-images-idx3-ubyte.gz has 3 images", "t10k-labels-idx1-ubyte.gz has 2 labels"}},
		{name: "bad labels surface from Load", split: "train", wantIs: ErrBadLabel,
			files: map[string][]byte{
				"train-images-idx3-ubyte": idx3(imageMagic, 1, 28, 28, pixels(1)),
				"train-labels-idx1-ubyte": idx1(labelMagic, 1, []byte{200}),
			},
			wantMsg: []string{"train-labels-idx1-ubyte: label 200"}},
		{name: "unknown split", split: "test", wantMsg: []string{`unknown MNIST split "test"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dir
			if len(tt.files) > 0 {
				d = t.TempDir()
				for name, b := range tt.files {
					write(t, d, name, b)
				}
			}
			s, err := Load(d, tt.split)
			if err == nil {
				t.Fatalf("Load = %+v, want an error", s)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", err, tt.wantIs)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not contain %q", err, m)
				}
			}
		})
	}
}

func BenchmarkReadTrainImages(b *testing.B) {
	path := filepath.Join(sharedMNIST(b), "train-images-idx3-ubyte.gz")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ReadImages(path); err != nil {
			b.Fatal(err)
		}
	}
}
