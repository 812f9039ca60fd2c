package digit

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"sync"
	"testing"

	"github.com/aeserve/aeserve/internal/mnistdata"
)

var mnist struct {
	once sync.Once
	imgs [][]byte
	err  error
}

// mnistDigits returns the first n t10k images, 784 bytes each.
func mnistDigits(t testing.TB, n int) [][]byte {
	t.Helper()
	// The tests need real handwriting: the MNIST test set, which a fresh
	// clone has in testdata (mnistdata finds it).
	path := mnistdata.File(t, "t10k-images-idx3-ubyte.gz")
	mnist.once.Do(func() {
		f, err := os.Open(path)
		if err != nil {
			mnist.err = err
			return
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			mnist.err = err
			return
		}
		var hdr [16]byte
		if _, err := io.ReadFull(zr, hdr[:]); err != nil {
			mnist.err = err
			return
		}
		if binary.BigEndian.Uint32(hdr[0:]) != 2051 || binary.BigEndian.Uint32(hdr[8:]) != 28 || binary.BigEndian.Uint32(hdr[12:]) != 28 {
			mnist.err = errors.New("not an IDX3 file of 28×28 images")
			return
		}
		for range 20 {
			img := make([]byte, 784)
			if _, err := io.ReadFull(zr, img); err != nil {
				mnist.err = err
				return
			}
			mnist.imgs = append(mnist.imgs, img)
		}
	})
	if mnist.err != nil {
		t.Fatalf("reading MNIST from %s: %v", path, mnist.err)
	}
	if n > len(mnist.imgs) {
		t.Fatalf("want %d MNIST digits, have %d", n, len(mnist.imgs))
	}
	return mnist.imgs[:n]
}

func toFloat(b []byte) []float32 {
	px := make([]float32, len(b))
	for i, v := range b {
		px[i] = float32(v) / 255
	}
	return px
}

// grayImage builds a w×h 8-bit grey image from row-major bytes.
func grayImage(w, h int, pix []byte) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	copy(img.Pix, pix)
	return img
}

// enlarge replicates each pixel into a k×k block.
func enlarge(pix []byte, w, h, kx, ky int) []byte {
	out := make([]byte, w*kx*h*ky)
	for y := 0; y < h*ky; y++ {
		for x := 0; x < w*kx; x++ {
			out[y*w*kx+x] = pix[(y/ky)*w+x/kx]
		}
	}
	return out
}

func encodeImage(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// chunk frames one PNG chunk with its length and CRC.
func chunk(typ string, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[4:]))
}

func ihdr(w, h uint32, depth, colorType byte) []byte {
	d := binary.BigEndian.AppendUint32(nil, w)
	d = binary.BigEndian.AppendUint32(d, h)
	return append(d, depth, colorType, 0, 0, 0)
}

func kindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

func meanAbsDiff(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += math.Abs(float64(a[i] - b[i]))
	}
	return s / float64(len(a))
}

// centreOfMass in pixel-index coordinates, as Fit places it.
func centreOfMass(px []float32) (x, y float64) {
	var m float64
	for i, v := range px {
		m += float64(v)
		x += float64(v) * float64(i%side)
		y += float64(v) * float64(i/side)
	}
	return x / m, y / m
}

// inkBox is the bounding box of pixels above thr in a 28×28 image.
func inkBox(px []float32, thr float32) (w, h int) {
	x0, y0, x1, y1 := side, side, -1, -1
	for i, v := range px {
		if v > thr {
			x, y := i%side, i/side
			x0, x1, y0, y1 = min(x0, x), max(x1, x), min(y0, y), max(y1, y)
		}
	}
	if x1 < 0 {
		return 0, 0
	}
	return x1 - x0 + 1, y1 - y0 + 1
}

func checkInkBox(t *testing.T, what string, px []float32) {
	t.Helper()
	w, h := inkBox(px, inkThreshold)
	if l := max(w, h); l < 19 || l > 20 {
		t.Errorf("%s: ink box %d×%d, want the longer side 20 (or 19 after resampling)", what, w, h)
	}
}
