package evaluate

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math"

	"github.com/aeserve/aeserve/internal/quality"
)

// Rate is one way of sending the test digits: its mean size per digit and
// how close what arrives is to what was sent.
type Rate struct {
	Method string
	Bytes  float64 // mean bytes per digit
	PSNR   float64 // dB, from the mean squared error over all digits
	SSIM   float64
}

// grey turns a [0,1] image into 8-bit grey, as the PNG inputs are.
func grey(px []float32) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, side, side))
	for i, v := range px {
		g.Pix[i] = uint8(math.Round(float64(min(max(v, 0), 1)) * 255))
	}
	return g
}

// PNGRate is each digit alone as a grey PNG from Go's encoder at its best
// compression: lossless, so only its size matters.
func PNGRate(images []float32, n int) (Rate, error) {
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	var total int
	for i := range n {
		var b bytes.Buffer
		if err := enc.Encode(&b, grey(images[i*side*side:(i+1)*side*side])); err != nil {
			return Rate{}, err
		}
		total += b.Len()
	}
	return Rate{Method: "PNG (Go image/png, best compression)", Bytes: float64(total) / float64(n), PSNR: math.Inf(1), SSIM: 1}, nil
}

// JPEGRate is each digit alone as a grey JPEG of the given quality from
// Go's image/jpeg (baseline, standard Huffman tables: no optimisation).
func JPEGRate(images []float32, n, q int) (Rate, error) {
	out := make([]float32, n*side*side)
	var total int
	for i := range n {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, grey(images[i*side*side:(i+1)*side*side]), &jpeg.Options{Quality: q}); err != nil {
			return Rate{}, err
		}
		total += b.Len()
		img, err := jpeg.Decode(&b)
		if err != nil {
			return Rate{}, err
		}
		g, ok := img.(*image.Gray)
		if !ok {
			return Rate{}, fmt.Errorf("jpeg decoded a %T", img)
		}
		// The decoder's planes are padded to whole 8×8 blocks: read by
		// rows, through the stride.
		for y := range side {
			for x := range side {
				out[i*side*side+y*side+x] = float32(g.Pix[g.PixOffset(x+g.Rect.Min.X, y+g.Rect.Min.Y)]) / 255
			}
		}
	}
	return Rate{
		Method: fmt.Sprintf("JPEG q=%d (Go image/jpeg)", q),
		Bytes:  float64(total) / float64(n),
		PSNR:   quality.PSNR(quality.MSE(out, images[:n*side*side])),
		SSIM:   MeanSSIM(out, images[:n*side*side], n),
	}, nil
}

// JPEGMatching is the JPEG of the lowest quality whose PSNR reaches psnr
// (quality 100 if none does): the size a JPEG needs to match a codec.
func JPEGMatching(images []float32, n int, psnr float64) (Rate, error) {
	lo, hi := 1, 100
	best, err := JPEGRate(images, n, hi)
	if err != nil || best.PSNR < psnr {
		return best, err
	}
	for lo < hi { // PSNR grows with the quality
		mid := (lo + hi) / 2
		r, err := JPEGRate(images, n, mid)
		if err != nil {
			return Rate{}, err
		}
		if r.PSNR >= psnr {
			hi, best = mid, r
		} else {
			lo = mid + 1
		}
	}
	return best, nil
}

// QuantizeInt4 rounds each code of per numbers to 4-bit integers (−7…7)
// with one scale per code, the max magnitude over 7, and returns what they
// stand for: a measurement of fewer bits per number, not a served format.
func QuantizeInt4(codes []float32, n, per int) []float32 {
	out := make([]float32, len(codes))
	for i := range n {
		c := codes[i*per : (i+1)*per]
		var m float32
		for _, v := range c {
			m = max(m, float32(math.Abs(float64(v))))
		}
		if m == 0 {
			continue
		}
		s := m / 7
		for j, v := range c {
			out[i*per+j] = float32(math.Round(float64(v/s))) * s
		}
	}
	return out
}
