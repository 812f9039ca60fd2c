package evaluate

import (
	"math"
	"testing"
)

// A JPEG's PSNR rises with its quality and so does its size; PNG is
// lossless; the JPEG matching a PSNR reaches it at the lowest quality that
// does.
func TestJPEGAndPNGRates(t *testing.T) {
	imgs, _ := NonDigits(10, 3)
	n := len(imgs) / (side * side)
	lo, err := JPEGRate(imgs, n, 20)
	if err != nil {
		t.Fatal(err)
	}
	hi, err := JPEGRate(imgs, n, 90)
	if err != nil {
		t.Fatal(err)
	}
	if !(lo.PSNR < hi.PSNR && lo.Bytes < hi.Bytes && hi.SSIM <= 1) {
		t.Errorf("q=20 %+v, q=90 %+v", lo, hi)
	}
	m, err := JPEGMatching(imgs, n, (lo.PSNR+hi.PSNR)/2)
	if err != nil {
		t.Fatal(err)
	}
	if m.PSNR < (lo.PSNR+hi.PSNR)/2 || m.Bytes > hi.Bytes {
		t.Errorf("matching %+v between %+v and %+v", m, lo, hi)
	}
	p, err := PNGRate(imgs, n)
	if err != nil || !math.IsInf(p.PSNR, 1) || p.Bytes < 67 {
		t.Errorf("PNG %+v, %v", p, err)
	}
}

func TestQuantizeInt4(t *testing.T) {
	codes := []float32{0.7, -0.35, 0, 0.1, 0, 0, 0, 0}
	got := QuantizeInt4(codes, 2, 4)
	s := float32(0.1) // 0.7 / 7
	for i, v := range codes[:4] {
		if d := math.Abs(float64(got[i] - v)); d > float64(s)/2+1e-6 {
			t.Errorf("code %d: %v → %v, more than half a step", i, v, got[i])
		}
	}
	for i := 4; i < 8; i++ {
		if got[i] != 0 {
			t.Errorf("an all-zero code quantises to %v", got[4:])
		}
	}
}
