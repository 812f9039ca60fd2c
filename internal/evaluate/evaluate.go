// Package evaluate computes the figures of the evaluation report that
// cmd/eval writes: reconstruction scores (BCE, MSE, PSNR, SSIM), seeded
// noise, the PCA baseline, classification accuracy, code statistics (the
// sparsity of a code, the Frobenius norm of a sigmoid code layer's
// Jacobian) and 2-D views of code spaces.
//
// Images are MNIST's: 28×28 float32 pixels in [0,1], n of them one after
// another. Sums are kept in float64 and done in a fixed order, so results do
// not depend on how work is spread over goroutines.
package evaluate

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"slices"
	"sync"

	"github.com/aeserve/aeserve/internal/quality"
	"github.com/aeserve/aeserve/internal/train"
)

// MNIST geometry.
const (
	Side     = 28
	ImageLen = Side * Side
)

// BCEClip keeps the binary cross-entropy finite: outputs are clipped to
// [BCEClip, 1−BCEClip] before taking logarithms.
const BCEClip = 1e-7

// Scores compares n output images with their clean targets.
type Scores struct {
	BCE  float64 // binary cross-entropy of the clipped outputs, mean per pixel
	MSE  float64 // mean squared error over all pixels
	PSNR float64 // 10·log10(1/MSE), dB
	SSIM float64 // mean over images of SSIM (Wang et al. 2004), see quality.SSIM
}

// Score computes Scores of n outputs against n clean targets. BCE takes the
// targets as probabilities and the outputs, clipped, as predictions; MSE and
// PSNR use the outputs as they are.
func Score(out, clean []float32, n int) Scores {
	checkImages("Score", n, out, clean)
	var bce, se float64
	for i, t := range clean[:n*ImageLen] {
		y := min(max(float64(out[i]), BCEClip), 1-BCEClip)
		tv := float64(t)
		bce -= tv*math.Log(y) + (1-tv)*math.Log(1-y)
		d := float64(out[i]) - tv
		se += d * d
	}
	px := float64(n * ImageLen)
	return Scores{BCE: bce / px, MSE: se / px, PSNR: quality.PSNR(se / px), SSIM: MeanSSIM(out, clean, n)}
}

// MeanSSIM is the mean SSIM of n pairs of 28×28 images, computed on
// GOMAXPROCS goroutines and summed in image order.
func MeanSSIM(a, b []float32, n int) float64 {
	checkImages("MeanSSIM", n, a, b)
	vals := make([]float64, n)
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s quality.SSIMer
			for i := w; i < n; i += workers {
				vals[i] = s.SSIM(a[i*ImageLen:(i+1)*ImageLen], b[i*ImageLen:(i+1)*ImageLen], Side, Side)
			}
		}()
	}
	wg.Wait()
	var sum float64
	for _, v := range vals {
		sum += v
	}
	return sum / float64(n)
}

func checkImages(fn string, n int, sets ...[]float32) {
	if n < 1 {
		panic(fmt.Sprintf("evaluate.%s: %d images", fn, n))
	}
	for _, s := range sets {
		if len(s) < n*ImageLen {
			panic(fmt.Sprintf("evaluate.%s: %d values for %d images", fn, len(s), n))
		}
	}
}

// Noisy returns clip(x + factor·N(0,1), 0, 1) of every pixel of images,
// drawing from a source seeded with seed in pixel order (train.AddNoise).
// The first k images' noise is therefore the same whatever follows them,
// and, for one seed, every factor scales the same draws.
func Noisy(images []float32, factor float64, seed int64) []float32 {
	out := make([]float32, len(images))
	train.AddNoise(out, images, factor, rand.New(rand.NewSource(seed)))
	return out
}

// Accuracy is the fraction of the n rows of probs (classes values each)
// whose largest value is at the label's index (the first, on a tie).
func Accuracy(probs []float32, labels []uint8, classes int) float64 {
	n := len(labels)
	if n == 0 || len(probs) != n*classes {
		panic(fmt.Sprintf("evaluate.Accuracy: %d probabilities for %d labels of %d classes", len(probs), n, classes))
	}
	var right int
	for i, l := range labels {
		p := probs[i*classes : (i+1)*classes]
		best := 0
		for j, v := range p {
			if v > p[best] {
				best = j
			}
		}
		if best == int(l) {
			right++
		}
	}
	return float64(right) / float64(n)
}

// PCAReconstruct projects n images onto the components of p once and
// returns, for each k in ks, their reconstruction from the first k
// components, clipped to [0,1]. Since p's components are in order of
// explained variance, that is the reconstruction of a k-component PCA of
// the same data.
func PCAReconstruct(p *quality.PCA, ks []int, images []float32, n int) [][]float32 {
	d, kmax := p.Dims()
	codes := make([]float32, n*kmax)
	p.Project(images, n, codes)
	outs := make([][]float32, len(ks))
	part := make([]float32, n*kmax)
	for o, k := range ks {
		if k < 1 || k > kmax {
			panic(fmt.Sprintf("evaluate.PCAReconstruct: %d of %d components", k, kmax))
		}
		copy(part, codes)
		for i := 0; i < n; i++ {
			clear(part[i*kmax+k : (i+1)*kmax])
		}
		out := make([]float32, n*d)
		p.Reconstruct(part, n, out)
		for i, v := range out {
			out[i] = min(max(v, 0), 1)
		}
		outs[o] = out
	}
	return outs
}

// Sparsity thresholds: a unit is inactive on an image below InactiveBelow,
// and dead if it never exceeds DeadAtMost on any image.
const (
	InactiveBelow = 0.05
	DeadAtMost    = 0.01
)

// Sparsity describes how much of a code is in use over a set of images.
type Sparsity struct {
	Units int // code values per image
	// MedianInactive is the median over images of the fraction of units
	// below InactiveBelow on that image.
	MedianInactive float64
	// MeanActivation is the mean of every code value of every image.
	MeanActivation float64
	// Dead counts the units never above DeadAtMost on any image.
	Dead int
}

// SparsityOf computes Sparsity from n codes of k values each.
func SparsityOf(codes []float32, n, k int) Sparsity {
	if n < 1 || k < 1 || len(codes) != n*k {
		panic(fmt.Sprintf("evaluate.SparsityOf: %d values for %d codes of %d", len(codes), n, k))
	}
	frac := make([]float64, n)
	alive := make([]bool, k)
	var sum float64
	for i := range n {
		var below int
		for j, v := range codes[i*k : (i+1)*k] {
			if v < InactiveBelow {
				below++
			}
			if v > DeadAtMost {
				alive[j] = true
			}
			sum += float64(v)
		}
		frac[i] = float64(below) / float64(k)
	}
	s := Sparsity{Units: k, MedianInactive: median(frac), MeanActivation: sum / float64(n*k)}
	for _, a := range alive {
		if !a {
			s.Dead++
		}
	}
	return s
}

// median of v, which it sorts; the mean of the middle two for an even count.
func median(v []float64) float64 {
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}

// Jacobian holds the mean over images of a sigmoid code layer's Jacobian
// norms: for h = σ(Wx + b), ‖J‖²_F = Σ_j (h_j(1−h_j))² Σ_i W_ji².
type Jacobian struct {
	MeanNorm  float64 // mean of ‖J‖_F
	MeanNorm2 float64 // mean of ‖J‖²_F, what a contractive penalty minimises
}

// JacobianOf computes Jacobian from n codes of k sigmoid outputs each and
// the layer's weights w, k rows of d inputs.
func JacobianOf(codes []float32, n, k int, w []float32) Jacobian {
	if n < 1 || k < 1 || len(codes) != n*k || len(w) == 0 || len(w)%k != 0 {
		panic(fmt.Sprintf("evaluate.JacobianOf: %d values for %d codes of %d, %d weights", len(codes), n, k, len(w)))
	}
	d := len(w) / k
	rows := make([]float64, k) // Σ_i W_ji²
	for j := range rows {
		for _, v := range w[j*d : (j+1)*d] {
			rows[j] += float64(v) * float64(v)
		}
	}
	var jac Jacobian
	for i := range n {
		var s float64
		for j, v := range codes[i*k : (i+1)*k] {
			g := float64(v) * (1 - float64(v))
			s += g * g * rows[j]
		}
		jac.MeanNorm += math.Sqrt(s)
		jac.MeanNorm2 += s
	}
	jac.MeanNorm /= float64(n)
	jac.MeanNorm2 /= float64(n)
	return jac
}

// SigmoidLayer computes σ(Wx + b) for n inputs of d values, W k×d: what a
// single dense sigmoid encoder layer gives, to check that a model's code
// is one.
func SigmoidLayer(x []float32, n int, w, b []float32) []float32 {
	k := len(b)
	if k == 0 || len(w)%k != 0 || len(x) < n*(len(w)/k) {
		panic(fmt.Sprintf("evaluate.SigmoidLayer: %d weights, %d biases, %d inputs for %d items", len(w), k, len(x), n))
	}
	d := len(w) / k
	out := make([]float32, n*k)
	for i := range n {
		xi := x[i*d : (i+1)*d]
		for j := range k {
			s := float64(b[j])
			for l, v := range w[j*d : (j+1)*d] {
				s += float64(v) * float64(xi[l])
			}
			out[i*k+j] = float32(1 / (1 + math.Exp(-s)))
		}
	}
	return out
}

// CodeView projects n codes of k values onto their first two principal
// components (a PCA of the codes themselves, quality.FitPCA), for a scatter
// plot, and returns the share of the codes' variance each component
// explains. A one-value code is its own first coordinate and 0 the second.
func CodeView(codes []float32, n, k int) (x, y []float64, explained [2]float64, err error) {
	if n < 2 || k < 1 || len(codes) < n*k {
		return nil, nil, explained, fmt.Errorf("evaluate: code view of %d codes of %d values (%d given)", n, k, len(codes))
	}
	x, y = make([]float64, n), make([]float64, n)
	if k == 1 {
		for i := range n {
			x[i] = float64(codes[i])
		}
		return x, y, [2]float64{1, 0}, nil
	}
	p, err := quality.FitPCA(codes, n, k, 2)
	if err != nil {
		return nil, nil, explained, err
	}
	xy := make([]float32, 2*n)
	p.Project(codes, n, xy)
	for i := range n {
		x[i], y[i] = float64(xy[2*i]), float64(xy[2*i+1])
	}
	r := p.ExplainedVarianceRatio()
	return x, y, [2]float64{r[0], r[1]}, nil
}
