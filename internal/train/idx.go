// Package train holds everything needed to train and evaluate the autoencoders offline: MNIST IDX
// reading and download, input noise for denoising, and PNG plots. It knows nothing of HTTP serving.
package train

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	imageMagic = 0x00000803 // unsigned bytes, 3 dimensions
	labelMagic = 0x00000801 // unsigned bytes, 1 dimension

	// Side and ImageLen repeat model.ImageSide/ImageLen so that this package builds on its own.
	side     = 28
	imageLen = side * side

	imageHeaderLen = 16
	labelHeaderLen = 8

	// Deflate cannot expand by more than about 1032:1, so a gzip file of s bytes holds at most
	// s*1032 bytes. Checking an IDX header against that bound lets us refuse absurd counts from a
	// corrupt header before allocating memory for them.
	maxInflateRatio = 1032

	chunkLen = 64 << 10
)

// Errors reported by the IDX readers. They are wrapped in *FileError, which names the file, so
// test them with errors.Is.
var (
	ErrBadMagic      = errors.New("bad magic number")
	ErrBadDims       = errors.New("unexpected image dimensions")
	ErrTruncated     = errors.New("truncated")
	ErrTrailing      = errors.New("trailing data")
	ErrBadLabel      = errors.New("label out of range")
	ErrCorrupt       = errors.New("corrupt gzip stream")
	ErrCountMismatch = errors.New("image and label counts differ")
)

// FileError is a problem with one IDX file. Kind is one of the sentinel errors above (or nil for
// plain I/O failures) and Err the underlying cause, if any; errors.Is sees both.
type FileError struct {
	Path   string
	Kind   error
	Detail string
	Err    error
}

func (e *FileError) Error() string {
	s := e.Path + ": " + e.Detail
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *FileError) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

func fileErr(path string, kind error, err error, format string, args ...any) *FileError {
	return &FileError{Path: path, Kind: kind, Detail: fmt.Sprintf(format, args...), Err: err}
}

// Set is one MNIST split: N images of 784 float32 pixels in [0,1], row-major, and their labels.
type Set struct {
	Images []float32
	Labels []uint8
	N      int
}

// Image returns image i of the set (a sub-slice, not a copy).
func (s *Set) Image(i int) []float32 {
	return s.Images[i*imageLen : (i+1)*imageLen : (i+1)*imageLen]
}

// pixelLUT turns a byte into its [0,1] value without a division per pixel.
var pixelLUT = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return t
}()

// idxFile is an open IDX file, decompressed on the fly if it is gzip.
type idxFile struct {
	path string
	f    *os.File
	r    io.Reader
	gz   bool
	size int64 // on-disk size
}

func openIDX(path string) (*idxFile, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			// The PathError would repeat the path we already put first.
			return nil, fileErr(path, nil, pe.Err, "%s", pe.Op)
		}
		return nil, fileErr(path, nil, err, "open")
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fileErr(path, nil, err, "stat")
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fileErr(path, nil, nil, "not a regular file")
	}
	x := &idxFile{path: path, f: f, size: st.Size()}
	br := bufio.NewReaderSize(f, chunkLen)
	x.r = br
	// Decide by content, not by name: people gunzip files and keep the name, or the reverse.
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, x.streamErr(err, "reading gzip header")
		}
		x.r = zr
		x.gz = true
	}
	return x, nil
}

func (x *idxFile) Close() error { return x.f.Close() }

// maxLen is an upper bound on the number of decompressed bytes the file can yield.
func (x *idxFile) maxLen() int64 {
	if x.gz {
		return x.size * maxInflateRatio
	}
	return x.size
}

// streamErr classifies a read error from the (possibly gzip) stream.
func (x *idxFile) streamErr(err error, format string, args ...any) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return fileErr(x.path, ErrTruncated, err, "truncated: "+format, args...)
	case errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || isFlateError(err):
		return fileErr(x.path, ErrCorrupt, err, format, args...)
	default:
		return fileErr(x.path, nil, err, format, args...)
	}
}

func isFlateError(err error) bool {
	var ce flate.CorruptInputError
	var ie flate.InternalError
	return errors.As(err, &ce) || errors.As(err, &ie)
}

// header reads the first n bytes of the file.
func (x *idxFile) header(buf []byte, what string) error {
	got, err := io.ReadFull(x.r, buf)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fileErr(x.path, ErrTruncated, nil,
				"truncated: %d bytes, too short for an %s header (%d bytes)", got, what, len(buf))
		}
		return x.streamErr(err, "reading header")
	}
	return nil
}

// checkLen refuses a header whose payload cannot fit in the file, before anything is allocated.
// For raw files the check is exact, so truncation and trailing bytes are found here.
func (x *idxFile) checkLen(headerLen, payload int64, unit string, count int64) error {
	if x.gz {
		if headerLen+payload > x.maxLen() {
			return fileErr(x.path, ErrTruncated, nil,
				"truncated: header says %d %s (%d bytes), more than a %d-byte gzip file can hold",
				count, unit, payload, x.size)
		}
		return nil
	}
	have := x.size - headerLen
	switch {
	case have < payload:
		return fileErr(x.path, ErrTruncated, nil,
			"truncated: header says %d %s (%d bytes of data), file has %d", count, unit, payload, have)
	case have > payload:
		return fileErr(x.path, ErrTrailing, nil,
			"%d trailing bytes after %d %s", have-payload, count, unit)
	}
	return nil
}

// expectEOF reads past the payload: for gzip this is also where the CRC gets checked.
func (x *idxFile) expectEOF(count int64, unit string) error {
	// Bounded so that a gzip bomb after valid data cannot keep us busy.
	const maxCount = 1 << 20
	n, err := io.Copy(io.Discard, io.LimitReader(x.r, maxCount+1))
	if err != nil {
		return x.streamErr(err, "after %d %s", count, unit)
	}
	switch {
	case n > maxCount:
		return fileErr(x.path, ErrTrailing, nil, "more than %d trailing bytes after %d %s", maxCount, count, unit)
	case n > 0:
		return fileErr(x.path, ErrTrailing, nil, "%d trailing bytes after %d %s", n, count, unit)
	}
	return nil
}

func badMagic(path string, got, want uint32, what string) error {
	hint := ""
	switch {
	case got == imageMagic && want != imageMagic:
		hint = "; this looks like an IDX3 image file"
	case got == labelMagic && want != labelMagic:
		hint = "; this looks like an IDX1 label file"
	case got>>16 == 0x8b1f || got>>16 == 0x1f8b:
		hint = "; this looks like a damaged gzip file"
	}
	return fileErr(path, ErrBadMagic, nil, "bad magic 0x%08x, want 0x%08x (%s)%s", got, want, what, hint)
}

// ReadImages reads an IDX3 file of 28×28 images, gzip-compressed or raw, and returns n*784
// pixels scaled to [0,1]. The whole file is validated: magic, dimensions and exact length.
func ReadImages(path string) (images []float32, n int, err error) {
	x, err := openIDX(path)
	if err != nil {
		return nil, 0, err
	}
	defer x.Close()

	var hdr [imageHeaderLen]byte
	if err := x.header(hdr[:], "IDX3 image"); err != nil {
		return nil, 0, err
	}
	if m := binary.BigEndian.Uint32(hdr[0:]); m != imageMagic {
		return nil, 0, badMagic(path, m, imageMagic, "an IDX3 image file")
	}
	count := int64(binary.BigEndian.Uint32(hdr[4:]))
	rows, cols := binary.BigEndian.Uint32(hdr[8:]), binary.BigEndian.Uint32(hdr[12:])
	if rows != side || cols != side {
		return nil, 0, fileErr(path, ErrBadDims, nil, "images are %d×%d, want %d×%d", rows, cols, side, side)
	}
	payload := count * imageLen
	if err := x.checkLen(imageHeaderLen, payload, "images", count); err != nil {
		return nil, 0, err
	}

	images = make([]float32, payload)
	buf := make([]byte, chunkLen)
	for off := int64(0); off < payload; {
		m := min(int64(len(buf)), payload-off)
		got, err := io.ReadFull(x.r, buf[:m])
		if err != nil {
			done := off + int64(got)
			return nil, 0, x.streamErr(err, "header says %d images (%d bytes of pixels), stream ends after %d",
				count, payload, done)
		}
		dst := images[off : off+m]
		for i, b := range buf[:m] {
			dst[i] = pixelLUT[b]
		}
		off += m
	}
	if err := x.expectEOF(count, "images"); err != nil {
		return nil, 0, err
	}
	return images, int(count), nil
}

// ReadLabels reads an IDX1 label file, gzip-compressed or raw; every label must be in 0..9.
func ReadLabels(path string) ([]uint8, error) {
	x, err := openIDX(path)
	if err != nil {
		return nil, err
	}
	defer x.Close()

	var hdr [labelHeaderLen]byte
	if err := x.header(hdr[:], "IDX1 label"); err != nil {
		return nil, err
	}
	if m := binary.BigEndian.Uint32(hdr[0:]); m != labelMagic {
		return nil, badMagic(path, m, labelMagic, "an IDX1 label file")
	}
	count := int64(binary.BigEndian.Uint32(hdr[4:]))
	if err := x.checkLen(labelHeaderLen, count, "labels", count); err != nil {
		return nil, err
	}
	labels := make([]uint8, count)
	if got, err := io.ReadFull(x.r, labels); err != nil {
		return nil, x.streamErr(err, "header says %d labels, stream ends after %d", count, got)
	}
	if err := x.expectEOF(count, "labels"); err != nil {
		return nil, err
	}
	for i, l := range labels {
		if l > 9 {
			return nil, fileErr(path, ErrBadLabel, nil, "label %d at index %d out of range 0..9", l, i)
		}
	}
	return labels, nil
}

// Split names accepted by Load.
const (
	SplitTrain = "train"
	SplitTest  = "t10k"
)

// Load reads one MNIST split ("train" or "t10k") from dir, where the files are
// <split>-images-idx3-ubyte and <split>-labels-idx1-ubyte, each with or without .gz.
func Load(dir, split string) (*Set, error) {
	if split != SplitTrain && split != SplitTest {
		return nil, fmt.Errorf("train: unknown MNIST split %q, want %q or %q", split, SplitTrain, SplitTest)
	}
	imgPath, err := findIDX(dir, split+"-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	lblPath, err := findIDX(dir, split+"-labels-idx1-ubyte")
	if err != nil {
		return nil, err
	}
	images, n, err := ReadImages(imgPath)
	if err != nil {
		return nil, err
	}
	labels, err := ReadLabels(lblPath)
	if err != nil {
		return nil, err
	}
	if len(labels) != n {
		return nil, fmt.Errorf("%w: %s has %d images but %s has %d labels",
			ErrCountMismatch, imgPath, n, lblPath, len(labels))
	}
	return &Set{Images: images, Labels: labels, N: n}, nil
}

// findIDX prefers the .gz name because that is the form whose checksum Download and Verify know.
func findIDX(dir, base string) (string, error) {
	for _, name := range []string{base + ".gz", base} {
		p := filepath.Join(dir, name)
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("train: %w", err)
		}
	}
	return "", fmt.Errorf("train: %s(.gz) not found in %s (run the download first): %w",
		base, dir, fs.ErrNotExist)
}

// HasData reports, without reading them, whether dir holds the four MNIST
// files training needs (each with or without .gz); the error names the
// first one missing.
func HasData(dir string) error {
	for _, split := range []string{SplitTrain, SplitTest} {
		for _, kind := range []string{"-images-idx3-ubyte", "-labels-idx1-ubyte"} {
			if _, err := findIDX(dir, split+kind); err != nil {
				return err
			}
		}
	}
	return nil
}
