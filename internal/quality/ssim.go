package quality

import (
	"fmt"
	"math"
	"sync"
)

// The SSIM window: a Gaussian of σ 1.5 truncated at 3.5σ, as scipy's
// gaussian_filter builds it for skimage: radius int(3.5·1.5+0.5) = 5, so
// 11×11 taps, separable, weights exp(−x²/2σ²) normalised to sum 1.
const (
	ssimSigma  = 1.5
	ssimRadius = 5
	ssimK1     = 0.01
	ssimK2     = 0.03
	ssimC1     = (ssimK1 * 1) * (ssimK1 * 1) // (K1·L)², data range L = 1
	ssimC2     = (ssimK2 * 1) * (ssimK2 * 1) // (K2·L)²

	// SSIMWindow is the side of the SSIM window and the least width and
	// height SSIM accepts.
	SSIMWindow = 2*ssimRadius + 1
)

// ssimWeights are the window's 1-D taps, computed as scipy's
// _gaussian_kernel1d does.
var ssimWeights = func() [SSIMWindow]float64 {
	var w [SSIMWindow]float64
	var sum float64
	for i := range w {
		x := float64(i - ssimRadius)
		w[i] = math.Exp(-0.5 / (ssimSigma * ssimSigma) * x * x)
		sum += w[i]
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}()

// moments holds one pixel's Gaussian-weighted E[a], E[b], E[a²], E[b²] and
// E[ab].
type moments struct{ a, b, aa, bb, ab float64 }

// SSIMer computes SSIM reusing its buffers, so that after the first call
// for a given image size it does not allocate. The zero value is ready to
// use. An SSIMer is not safe for concurrent use; give each goroutine its
// own.
type SSIMer struct {
	col []moments // the vertical pass: valid rows × all columns
}

var ssimPool = sync.Pool{New: func() any { return new(SSIMer) }}

// SSIM returns the structural similarity of the w×h images a and b, row-major
// with values in [0,1]: Wang et al. (2004) with an 11×11 Gaussian window of
// σ 1.5, K1 0.01, K2 0.03, data range 1 and population (not sample)
// variances, averaged over the pixels at least 5 from every border, as
// scikit-image computes
//
//	structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
//	    use_sample_covariance=False, data_range=1)
//
// for float64 images. It is 1 for identical images (including constant
// ones), exactly symmetric in a and b, and lies in [−1, 1]. w and h must be at least SSIMWindow (11), and a and b must
// hold at least w·h pixels (the first w·h are used); otherwise SSIM panics.
//
// SSIM takes an SSIMer from a pool; it is safe for concurrent use.
func SSIM(a, b []float32, w, h int) float64 {
	s := ssimPool.Get().(*SSIMer)
	v := s.SSIM(a, b, w, h)
	ssimPool.Put(s)
	return v
}

// MeanSSIM returns the mean SSIM of n pairs of w×h images: a and b hold n
// images each, one after another (at least n·w·h pixels; the rest is
// ignored). It is NaN for n = 0. It is safe for concurrent use.
func MeanSSIM(a, b []float32, n, w, h int) float64 {
	s := ssimPool.Get().(*SSIMer)
	v := s.MeanSSIM(a, b, n, w, h)
	ssimPool.Put(s)
	return v
}

// MeanSSIM is MeanSSIM with s's buffers.
func (s *SSIMer) MeanSSIM(a, b []float32, n, w, h int) float64 {
	if n < 0 {
		panic(fmt.Sprintf("quality: MeanSSIM of %d images", n))
	}
	if n == 0 {
		return math.NaN()
	}
	size := w * h
	checkSSIMArgs(a, b, w, h, n)
	var sum float64
	for i := 0; i < n; i++ {
		sum += s.ssim(a[i*size:(i+1)*size], b[i*size:(i+1)*size], w, h)
	}
	return sum / float64(n)
}

// SSIM is SSIM with s's buffers.
func (s *SSIMer) SSIM(a, b []float32, w, h int) float64 {
	checkSSIMArgs(a, b, w, h, 1)
	return s.ssim(a[:w*h], b[:w*h], w, h)
}

func checkSSIMArgs(a, b []float32, w, h, n int) {
	if w < SSIMWindow || h < SSIMWindow {
		panic(fmt.Sprintf("quality: SSIM of %d×%d images: width and height must be at least %d", w, h, SSIMWindow))
	}
	if need := n * w * h; len(a) < need || len(b) < need {
		panic(fmt.Sprintf("quality: SSIM of %d %d×%d images needs %d pixels each, have %d and %d", n, w, h, need, len(a), len(b)))
	}
}

// ssim computes one image pair's SSIM. Only the valid region's S values
// are needed, and their windows lie wholly inside the image, so the filter
// never reaches skimage's reflected border and needs no padding: a
// vertical pass over the h−10 valid rows (all columns), then a horizontal
// pass over the w−10 valid columns that forms S and sums it. The passes
// run in scipy's order (axis 0, then axis 1).
func (s *SSIMer) ssim(a, b []float32, w, h int) float64 {
	const r = ssimRadius
	vh, vw := h-2*r, w-2*r
	if cap(s.col) < vh*w {
		s.col = make([]moments, vh*w)
	}
	col := s.col[:vh*w]
	wt := &ssimWeights

	for y := 0; y < vh; y++ {
		out := col[y*w : (y+1)*w]
		for x := range out {
			var m moments
			for k, g := range wt {
				i := (y+k)*w + x
				pa, pb := float64(a[i]), float64(b[i])
				m.a += g * pa
				m.b += g * pb
				m.aa += g * (pa * pa)
				m.bb += g * (pb * pb)
				m.ab += g * (pa * pb)
			}
			out[x] = m
		}
	}

	var sum float64
	for y := 0; y < vh; y++ {
		row := col[y*w : (y+1)*w]
		for x := 0; x < vw; x++ {
			var m moments
			for k, g := range wt {
				c := &row[x+k]
				m.a += g * c.a
				m.b += g * c.b
				m.aa += g * c.aa
				m.bb += g * c.bb
				m.ab += g * c.ab
			}
			vx := m.aa - m.a*m.a
			vy := m.bb - m.b*m.b
			vxy := m.ab - m.a*m.b
			a1 := 2*m.a*m.b + ssimC1
			a2 := 2*vxy + ssimC2
			b1 := m.a*m.a + m.b*m.b + ssimC1
			b2 := vx + vy + ssimC2
			sum += (a1 * a2) / (b1 * b2)
		}
	}
	return sum / float64(vh*vw)
}
