package quality

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// PCA is a principal component analysis fitted by FitPCA: the mean of the
// training rows and the k unit eigenvectors of their covariance with the
// largest eigenvalues. Projecting onto the components and reconstructing
// is the linear autoencoder with k codes that has the least mean squared
// error on the training data.
//
// A PCA is not changed by its methods and is safe for concurrent use.
type PCA struct {
	d, k  int
	mean  []float64 // d
	comp  []float64 // k×d, row j the j-th component
	vars  []float64 // k eigenvalues, descending
	total float64   // trace of the covariance
}

// pcaBlock is how many rows FitPCA centres and transposes at a time: its
// covariance pass does one d×d rank-pcaBlock update per block.
const pcaBlock = 512

// FitPCA fits a PCA with k components to the n rows of d features in x
// (row-major, at least n·d values; the rest is ignored).
//
// All arithmetic is float64. It computes the mean of each feature, then the
// sample covariance Σ (xᵢ−μ)(xᵢ−μ)ᵀ / (n−1) by symmetric rank updates (BLAS
// dsyrk) on blocks of centred rows, split over GOMAXPROCS goroutines, then
// every eigenpair of the covariance with gonum's mat.EigenSym. It keeps the
// k with the largest eigenvalues, in descending order. Each eigenvector's
// sign is fixed so that its entry of largest magnitude (the first such
// entry, on a tie) is positive, so fits of the same data agree. For
// n = 60,000 and d = 784 (MNIST) it takes a few seconds; the covariance
// dominates, and the eigendecomposition costs about the same for any n.
// Results are deterministic for a given GOMAXPROCS (which sets how the
// sums are grouped) and agree across GOMAXPROCS to rounding.
//
// It needs n ≥ 2, 1 ≤ k ≤ d, and finite values.
func FitPCA(x []float32, n, d, k int) (*PCA, error) {
	switch {
	case d < 1:
		return nil, fmt.Errorf("quality: PCA of %d features", d)
	case k < 1 || k > d:
		return nil, fmt.Errorf("quality: PCA with %d components of %d features: need 1 ≤ k ≤ d", k, d)
	case n < 2:
		return nil, fmt.Errorf("quality: PCA of %d rows: need at least 2", n)
	case len(x) < n*d:
		return nil, fmt.Errorf("quality: PCA of %d rows of %d features needs %d values, have %d", n, d, n*d, len(x))
	}
	x = x[:n*d]

	mean := make([]float64, d)
	for i := 0; i < n; i++ {
		row := x[i*d : (i+1)*d]
		for f, v := range row {
			mean[f] += float64(v)
		}
	}
	for f := range mean {
		mean[f] /= float64(n)
		if math.IsNaN(mean[f]) || math.IsInf(mean[f], 0) {
			return nil, errors.New("quality: PCA of data with NaN or infinite values")
		}
	}

	cov := covariance(x, n, d, mean)
	var total float64
	for f := 0; f < d; f++ {
		total += cov[f*d+f]
	}

	var eig mat.EigenSym
	if !eig.Factorize(mat.NewSymDense(d, cov), true) {
		return nil, errors.New("quality: PCA: eigendecomposition of the covariance did not converge")
	}
	vals := eig.Values(nil) // ascending
	var vecs mat.Dense
	eig.VectorsTo(&vecs) // columns

	p := &PCA{d: d, k: k, mean: mean, comp: make([]float64, k*d), vars: make([]float64, k), total: total}
	for j := 0; j < k; j++ {
		c := d - 1 - j
		p.vars[j] = max(vals[c], 0) // a negative eigenvalue of a covariance is rounding
		row := p.comp[j*d : (j+1)*d]
		mat.Col(row, c, &vecs)
		big := 0
		for f, v := range row {
			if math.Abs(v) > math.Abs(row[big]) {
				big = f
			}
		}
		if row[big] < 0 {
			for f := range row {
				row[f] = -row[f]
			}
		}
	}
	return p, nil
}

// covariance returns the upper triangle (row-major d×d; the lower triangle
// is zero) of the sample covariance of x's n rows about mean. Worker w of P
// takes blocks w, w+P, w+2P, … into its own accumulator; the accumulators
// are added in worker order, so the result depends only on P.
func covariance(x []float32, n, d int, mean []float64) []float64 {
	blocks := (n + pcaBlock - 1) / pcaBlock
	workers := min(runtime.GOMAXPROCS(0), blocks)
	acc := make([][]float64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		acc[w] = make([]float64, d*d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := blas64.Symmetric{Uplo: blas.Upper, N: d, Stride: d, Data: acc[w]}
			t := make([]float64, d*pcaBlock) // d×rows: row f holds feature f of the block, centred
			for b := w; b < blocks; b += workers {
				r0 := b * pcaBlock
				rows := min(pcaBlock, n-r0)
				for l := 0; l < rows; l++ {
					src := x[(r0+l)*d : (r0+l+1)*d]
					for f, v := range src {
						t[f*pcaBlock+l] = float64(v) - mean[f]
					}
				}
				blas64.Syrk(blas.NoTrans, 1, blas64.General{Rows: d, Cols: rows, Stride: pcaBlock, Data: t}, 1, c)
			}
		}()
	}
	wg.Wait()

	cov := acc[0]
	for _, a := range acc[1:] {
		for i := 0; i < d; i++ {
			dst, src := cov[i*d+i:(i+1)*d], a[i*d+i:(i+1)*d]
			for j, v := range src {
				dst[j] += v
			}
		}
	}
	scale := 1 / float64(n-1)
	for i := 0; i < d; i++ {
		row := cov[i*d+i : (i+1)*d]
		for j := range row {
			row[j] *= scale
		}
	}
	return cov
}

// Dims returns the number of features d and of components k.
func (p *PCA) Dims() (d, k int) { return p.d, p.k }

// Mean returns a copy of the training rows' mean, d values.
func (p *PCA) Mean() []float64 { return append([]float64(nil), p.mean...) }

// Components returns a copy of the k components, each d unit-length values,
// mutually orthogonal, in order of decreasing explained variance.
func (p *PCA) Components() [][]float64 {
	out := make([][]float64, p.k)
	for j := range out {
		out[j] = append([]float64(nil), p.comp[j*p.d:(j+1)*p.d]...)
	}
	return out
}

// ExplainedVariance returns the variance of the training data along each
// component (the covariance's eigenvalues, with the n−1 of a sample
// covariance as scikit-learn's explained_variance_), descending. Tiny
// negative eigenvalues from rounding are reported as 0.
func (p *PCA) ExplainedVariance() []float64 { return append([]float64(nil), p.vars...) }

// ExplainedVarianceRatio returns each component's share of the training
// data's total variance (the covariance's trace); they sum to at most 1.
// With zero total variance (every row the same) they are NaN.
func (p *PCA) ExplainedVarianceRatio() []float64 {
	out := make([]float64, p.k)
	for j, v := range p.vars {
		out[j] = v / p.total
	}
	return out
}

// projectBlock is how many rows Project and Reconstruct convert to float64
// at a time for one matrix product.
const projectBlock = 256

// Project writes the codes of x's n rows of d features into dst, n rows of
// k: code j of a row is the dot product of (row − mean) with component j,
// computed in float64. x must hold at least n·d values and dst n·k;
// otherwise Project panics.
func (p *PCA) Project(x []float32, n int, dst []float32) {
	d, k := p.d, p.k
	if n < 0 || len(x) < n*d || len(dst) < n*k {
		panic(fmt.Sprintf("quality: PCA.Project of %d rows of %d features into %d codes each: have %d values and room for %d", n, d, k, len(x), len(dst)))
	}
	rows := min(n, projectBlock)
	xc := make([]float64, rows*d)
	out := make([]float64, rows*k)
	comp := blas64.General{Rows: k, Cols: d, Stride: d, Data: p.comp}
	for r0 := 0; r0 < n; r0 += rows {
		m := min(rows, n-r0)
		src := x[r0*d : (r0+m)*d]
		for i, v := range src {
			xc[i] = float64(v) - p.mean[i%d]
		}
		// out (m×k) = xc (m×d) · compᵀ (d×k)
		blas64.Gemm(blas.NoTrans, blas.Trans, 1, blas64.General{Rows: m, Cols: d, Stride: d, Data: xc}, comp,
			0, blas64.General{Rows: m, Cols: k, Stride: k, Data: out})
		for i, v := range out[:m*k] {
			dst[r0*k+i] = float32(v)
		}
	}
}

// Reconstruct writes into dst the n rows of d features that n rows of k
// codes stand for: mean + Σⱼ codeⱼ · component j, computed in float64.
// codes must hold at least n·k values and dst n·d; otherwise Reconstruct
// panics. Values are not clipped to [0,1].
func (p *PCA) Reconstruct(codes []float32, n int, dst []float32) {
	d, k := p.d, p.k
	if n < 0 || len(codes) < n*k || len(dst) < n*d {
		panic(fmt.Sprintf("quality: PCA.Reconstruct of %d rows of %d codes into %d features each: have %d codes and room for %d", n, k, d, len(codes), len(dst)))
	}
	rows := min(n, projectBlock)
	c := make([]float64, rows*k)
	out := make([]float64, rows*d)
	comp := blas64.General{Rows: k, Cols: d, Stride: d, Data: p.comp}
	for r0 := 0; r0 < n; r0 += rows {
		m := min(rows, n-r0)
		for i, v := range codes[r0*k : (r0+m)*k] {
			c[i] = float64(v)
		}
		for i := 0; i < m; i++ {
			copy(out[i*d:(i+1)*d], p.mean)
		}
		// out (m×d) = mean + c (m×k) · comp (k×d)
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, blas64.General{Rows: m, Cols: k, Stride: k, Data: c}, comp,
			1, blas64.General{Rows: m, Cols: d, Stride: d, Data: out})
		for i, v := range out[:m*d] {
			dst[r0*d+i] = float32(v)
		}
	}
}
