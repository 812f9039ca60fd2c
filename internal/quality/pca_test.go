package quality

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// orthonormal returns m random orthonormal vectors of length d
// (Gram-Schmidt, twice for accuracy).
func orthonormal(r *rand.Rand, d, m int) [][]float64 {
	out := make([][]float64, m)
	for i := range out {
		v := make([]float64, d)
		for f := range v {
			v[f] = r.NormFloat64()
		}
		for range 2 {
			for _, u := range out[:i] {
				p := dot(u, v)
				for f := range v {
					v[f] -= p * u[f]
				}
			}
		}
		norm := math.Sqrt(dot(v, v))
		for f := range v {
			v[f] /= norm
		}
		out[i] = v
	}
	return out
}

func dot(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// lowRank returns n rows of d features: mean + Σⱼ zⱼ·scaleⱼ·basisⱼ +
// noise·N(0,1), with zⱼ standard normal, so that the covariance's
// eigenvectors are near the basis and its eigenvalues near scale².
func lowRank(r *rand.Rand, n int, mean []float64, basis [][]float64, scale []float64, noise float64) []float32 {
	d := len(mean)
	x := make([]float32, n*d)
	row := make([]float64, d)
	for i := 0; i < n; i++ {
		copy(row, mean)
		for j, u := range basis {
			z := r.NormFloat64() * scale[j]
			for f := range row {
				row[f] += z * u[f]
			}
		}
		for f := range row {
			x[i*d+f] = float32(row[f] + noise*r.NormFloat64())
		}
	}
	return x
}

func randomMean(r *rand.Rand, d int) []float64 {
	m := make([]float64, d)
	for f := range m {
		m[f] = 0.2 + 0.6*r.Float64()
	}
	return m
}

// checkComponents checks that p's components are orthonormal, their
// largest-magnitude entries positive, and the explained variance
// descending and non-negative.
func checkComponents(t *testing.T, p *PCA) {
	t.Helper()
	comp := p.Components()
	for i, u := range comp {
		for j, v := range comp {
			want := 0.0
			if i == j {
				want = 1
			}
			if got := dot(u, v); math.Abs(got-want) > 1e-10 {
				t.Errorf("component %d · component %d = %.3g, want %g", i, j, got, want)
			}
		}
		big := 0
		for f, v := range u {
			if math.Abs(v) > math.Abs(u[big]) {
				big = f
			}
		}
		if u[big] <= 0 {
			t.Errorf("component %d: largest-magnitude entry %g is not positive", i, u[big])
		}
	}
	vars := p.ExplainedVariance()
	for j, v := range vars {
		if v < 0 || (j > 0 && v > vars[j-1]) {
			t.Errorf("explained variance %v: not descending and non-negative", vars)
			break
		}
	}
}

// Data on a random 3-D subspace plus tiny noise: the top 3 components span
// the subspace, reconstruction from 3 codes is near exact, the explained
// variances are near the scales², ordered, with next to nothing left.
func TestPCARecoversSubspace(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const d, n = 40, 2*pcaBlock + 276 // three blocks, the last partial
	mean := randomMean(r, d)
	basis := orthonormal(r, d, 3)
	scale := []float64{0.3, 0.2, 0.1}
	x := lowRank(r, n, mean, basis, scale, 1e-4)

	p, err := FitPCA(x, n, d, 5)
	if err != nil {
		t.Fatal(err)
	}
	checkComponents(t, p)
	comp := p.Components()
	for i, u := range basis {
		var inSpan float64
		for _, c := range comp[:3] {
			inSpan += dot(u, c) * dot(u, c)
		}
		if inSpan < 1-1e-5 {
			t.Errorf("basis vector %d: only %.8f of it in the top 3 components' span", i, inSpan)
		}
	}
	vars := p.ExplainedVariance()
	for j, s := range scale {
		if math.Abs(vars[j]/(s*s)-1) > 0.15 {
			t.Errorf("explained variance %d = %.5g, want about %.5g", j, vars[j], s*s)
		}
	}
	if vars[3] > 1e-6 || vars[4] > 1e-6 {
		t.Errorf("explained variance beyond 3 components %.3g, %.3g: want only noise", vars[3], vars[4])
	}
	ratio := p.ExplainedVarianceRatio()
	if top := ratio[0] + ratio[1] + ratio[2]; top < 0.9999 || top > 1+1e-12 {
		t.Errorf("top 3 explain %.8f of the variance, want about 1", top)
	}

	p3, err := FitPCA(x, n, d, 3)
	if err != nil {
		t.Fatal(err)
	}
	codes, back := make([]float32, n*3), make([]float32, n*d)
	p3.Project(x, n, codes)
	p3.Reconstruct(codes, n, back)
	if mse := MSE(x, back); mse > 1e-7 {
		t.Errorf("reconstruction from 3 codes: MSE %.3g, want about the noise's 1e-8", mse)
	}
	for j, c := range p3.Components() {
		if dot(c, comp[j]) < 1-1e-12 {
			t.Errorf("component %d differs between k=3 and k=5 fits", j)
		}
	}
}

// naiveCovariance is the sample covariance by the textbook double loop.
func naiveCovariance(x []float32, n, d int) [][]float64 {
	mean := make([]float64, d)
	for i := 0; i < n; i++ {
		for f := 0; f < d; f++ {
			mean[f] += float64(x[i*d+f]) / float64(n)
		}
	}
	cov := make([][]float64, d)
	for a := range cov {
		cov[a] = make([]float64, d)
		for b := range cov[a] {
			for i := 0; i < n; i++ {
				cov[a][b] += (float64(x[i*d+a]) - mean[a]) * (float64(x[i*d+b]) - mean[b])
			}
			cov[a][b] /= float64(n - 1)
		}
	}
	return cov
}

// powerEigen returns the top k eigenpairs of the symmetric matrix a by power
// iteration with deflation.
func powerEigen(a [][]float64, k int) ([]float64, [][]float64) {
	d := len(a)
	m := make([][]float64, d)
	for i := range m {
		m[i] = append([]float64(nil), a[i]...)
	}
	vals, vecs := make([]float64, k), make([][]float64, k)
	for j := 0; j < k; j++ {
		v := make([]float64, d)
		for i := range v {
			v[i] = 1 / math.Sqrt(float64(d+i))
		}
		var lambda float64
		for range 5000 {
			w := make([]float64, d)
			for i := range w {
				w[i] = dot(m[i], v)
			}
			lambda = dot(v, w)
			norm := math.Sqrt(dot(w, w))
			for i := range w {
				w[i] /= norm
			}
			v = w
		}
		vals[j], vecs[j] = lambda, v
		for a := range m {
			for b := range m[a] {
				m[a][b] -= lambda * v[a] * v[b]
			}
		}
	}
	return vals, vecs
}

// FitPCA against a brute-force float64 computation: the naive covariance's
// eigenpairs by power iteration.
func TestPCAMatchesBruteForce(t *testing.T) {
	for _, tc := range []struct {
		n, d, k int
		scale   []float64
	}{
		{50, 6, 4, []float64{0.5, 0.3, 0.2, 0.1, 0.05, 0.025}},
		{9, 5, 5, []float64{1, 0.5, 0.25, 0.125, 0.0625}},
		{700, 12, 6, []float64{0.4, 0.3, 0.2, 0.15, 0.1, 0.06, 0.03}},
	} {
		t.Run(fmt.Sprintf("n%d_d%d_k%d", tc.n, tc.d, tc.k), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.d)))
			x := lowRank(r, tc.n, randomMean(r, tc.d), orthonormal(r, tc.d, len(tc.scale)), tc.scale, 1e-3)
			p, err := FitPCA(x, tc.n, tc.d, tc.k)
			if err != nil {
				t.Fatal(err)
			}
			checkComponents(t, p)
			wantVals, wantVecs := powerEigen(naiveCovariance(x, tc.n, tc.d), tc.k)
			vals, comp := p.ExplainedVariance(), p.Components()
			for j := 0; j < tc.k; j++ {
				if math.Abs(vals[j]-wantVals[j]) > 1e-9*wantVals[0] {
					t.Errorf("eigenvalue %d = %.15g, brute force %.15g", j, vals[j], wantVals[j])
				}
				if c := math.Abs(dot(comp[j], wantVecs[j])); c < 1-1e-8 {
					t.Errorf("component %d: |cos| with brute force's eigenvector %.12f", j, c)
				}
			}
		})
	}
}

// Project and Reconstruct agree with per-row float64 loops; the mean
// projects to 0; with k = d reconstruction is exact to float32.
func TestPCAProjectReconstruct(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	const n, d = 600, 30 // n > projectBlock: several blocks, the last partial
	x := make([]float32, n*d)
	for i := range x {
		x[i] = r.Float32() * float32(1+i%d) / d
	}
	for _, k := range []int{1, 7, d} {
		t.Run(fmt.Sprintf("k%d", k), func(t *testing.T) {
			p, err := FitPCA(x, n, d, k)
			if err != nil {
				t.Fatal(err)
			}
			checkComponents(t, p)
			if gd, gk := p.Dims(); gd != d || gk != k {
				t.Fatalf("Dims() = %d, %d, want %d, %d", gd, gk, d, k)
			}
			mean, comp := p.Mean(), p.Components()

			codes := make([]float32, n*k)
			p.Project(x, n, codes)
			back := make([]float32, n*d)
			p.Reconstruct(codes, n, back)
			for i := 0; i < n; i++ {
				for j := 0; j < k; j++ {
					var want float64
					for f := 0; f < d; f++ {
						want += (float64(x[i*d+f]) - mean[f]) * comp[j][f]
					}
					if got := float64(codes[i*k+j]); math.Abs(got-want) > 1e-6*(1+math.Abs(want)) {
						t.Fatalf("row %d code %d = %.9g, want %.9g", i, j, got, want)
					}
				}
				for f := 0; f < d; f++ {
					want := mean[f]
					for j := 0; j < k; j++ {
						want += float64(codes[i*k+j]) * comp[j][f]
					}
					if got := float64(back[i*d+f]); math.Abs(got-want) > 1e-6*(1+math.Abs(want)) {
						t.Fatalf("row %d feature %d reconstructed as %.9g, want %.9g", i, f, got, want)
					}
				}
			}
			if k == d {
				for i, v := range back {
					if math.Abs(float64(v-x[i])) > 1e-5 {
						t.Fatalf("with every component, value %d reconstructed as %g, was %g", i, v, x[i])
					}
				}
			}

			mean32 := make([]float32, d)
			for f, v := range mean {
				mean32[f] = float32(v)
			}
			mc := make([]float32, k)
			p.Project(mean32, 1, mc)
			for j, v := range mc {
				if math.Abs(float64(v)) > 1e-6 {
					t.Errorf("the mean's code %d = %g, want 0", j, v)
				}
			}
			zero := make([]float32, k)
			rm := make([]float32, d)
			p.Reconstruct(zero, 1, rm)
			for f, v := range rm {
				if v != mean32[f] {
					t.Errorf("zero codes reconstruct feature %d as %g, want the mean %g", f, v, mean32[f])
				}
			}
		})
	}
}

// The same data fits the same way, whatever GOMAXPROCS up to rounding,
// and exactly for the same GOMAXPROCS; values past n·d are ignored.
func TestPCADeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	const n, d, k = 3*pcaBlock + 5, 20, 4
	x := lowRank(r, n+3, randomMean(r, d), orthonormal(r, d, 6), []float64{0.5, 0.4, 0.3, 0.2, 0.1, 0.05}, 1e-2)
	fit := func(procs int) *PCA {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		p, err := FitPCA(x, n, d, k)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := fit(3), fit(3)
	for j := range a.vars {
		if a.vars[j] != b.vars[j] {
			t.Errorf("two fits: explained variance %d %.17g and %.17g", j, a.vars[j], b.vars[j])
		}
	}
	for i := range a.comp {
		if a.comp[i] != b.comp[i] {
			t.Fatalf("two fits: component value %d %.17g and %.17g", i, a.comp[i], b.comp[i])
		}
	}
	one := fit(1)
	for j := range a.vars {
		if math.Abs(a.vars[j]-one.vars[j]) > 1e-12*a.vars[0] {
			t.Errorf("GOMAXPROCS 3 and 1: explained variance %d %.17g and %.17g", j, a.vars[j], one.vars[j])
		}
	}
	for i := range a.comp {
		if math.Abs(a.comp[i]-one.comp[i]) > 1e-9 {
			t.Fatalf("GOMAXPROCS 3 and 1: component value %d %.17g and %.17g", i, a.comp[i], one.comp[i])
		}
	}
}

// Rows all alike: no variance, yet a valid fit.
func TestPCAConstantData(t *testing.T) {
	const n, d = 10, 4
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(i%d) / 4
	}
	p, err := FitPCA(x, n, d, 2)
	if err != nil {
		t.Fatal(err)
	}
	checkComponents(t, p)
	for j, v := range p.ExplainedVariance() {
		if v != 0 {
			t.Errorf("explained variance %d = %g, want 0", j, v)
		}
	}
	for _, v := range p.ExplainedVarianceRatio() {
		if !math.IsNaN(v) {
			t.Errorf("explained variance ratio %g of zero variance, want NaN", v)
		}
	}
	codes := make([]float32, n*2)
	p.Project(x, n, codes)
	for _, v := range codes {
		if v != 0 {
			t.Fatalf("code %g of a row equal to the mean, want 0", v)
		}
	}
}

func TestFitPCAErrors(t *testing.T) {
	good := make([]float32, 10*4)
	for i := range good {
		good[i] = float32(i%7) / 7
	}
	withValue := func(v float32) []float32 {
		x := append([]float32(nil), good...)
		x[13] = v
		return x
	}
	for _, tc := range []struct {
		name    string
		x       []float32
		n, d, k int
	}{
		{"no features", good, 10, 0, 1},
		{"no components", good, 10, 4, 0},
		{"more components than features", good, 10, 4, 5},
		{"one row", good, 1, 4, 2},
		{"too few values", good, 11, 4, 2},
		{"NaN", withValue(float32(math.NaN())), 10, 4, 2},
		{"+Inf", withValue(float32(math.Inf(1))), 10, 4, 2},
		{"-Inf", withValue(float32(math.Inf(-1))), 10, 4, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := FitPCA(tc.x, tc.n, tc.d, tc.k); err == nil {
				t.Errorf("FitPCA(n=%d, d=%d, k=%d) = %v, want an error", tc.n, tc.d, tc.k, p)
			}
		})
	}
	if _, err := FitPCA(good, 10, 4, 4); err != nil {
		t.Errorf("valid arguments: %v", err)
	}
}

func TestPCAPanicsOnShortBuffers(t *testing.T) {
	x := make([]float32, 10*4)
	for i := range x {
		x[i] = float32(i*i%11) / 11
	}
	p, err := FitPCA(x, 10, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Project short x", func() { p.Project(x[:39], 10, make([]float32, 20)) }},
		{"Project short dst", func() { p.Project(x, 10, make([]float32, 19)) }},
		{"Project negative n", func() { p.Project(x, -1, make([]float32, 20)) }},
		{"Reconstruct short codes", func() { p.Reconstruct(make([]float32, 19), 10, make([]float32, 40)) }},
		{"Reconstruct short dst", func() { p.Reconstruct(make([]float32, 20), 10, make([]float32, 39)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.f()
		})
	}
}

// mnistLike returns n rows of 28×28 pixels in [0,1], quantised to 1/255:
// each a random one of 30 blurry prototype strokes, shifted in intensity,
// plus noise; roughly MNIST's size and spread of variance.
func mnistLike(n int) []float32 {
	const d = 784
	r := rand.New(rand.NewPCG(41, 42))
	protos := make([][]float64, 30)
	for p := range protos {
		img := make([]float64, d)
		for range 4 {
			cx, cy, s := 6+16*r.Float64(), 6+16*r.Float64(), 1.5+2*r.Float64()
			for y := 0; y < 28; y++ {
				for x := 0; x < 28; x++ {
					dx, dy := float64(x)-cx, float64(y)-cy
					img[y*28+x] += math.Exp(-(dx*dx + dy*dy) / (2 * s * s))
				}
			}
		}
		protos[p] = img
	}
	x := make([]float32, n*d)
	for i := 0; i < n; i++ {
		img, gain := protos[r.IntN(len(protos))], 0.6+0.6*r.Float64()
		for f, v := range img {
			px := min(max(gain*v+0.05*r.NormFloat64(), 0), 1)
			x[i*d+f] = float32(math.Round(px*255)) / 255
		}
	}
	return x
}

// BenchmarkFitPCAMNIST fits 32 components to 60,000 rows of 784 features,
// MNIST's training set size:
//
//	go test -run '^$' -bench FitPCA -benchtime 1x ./internal/quality
func BenchmarkFitPCAMNIST(b *testing.B) {
	const n, d, k = 60000, 784, 32
	x := mnistLike(n)
	b.Run("covariance", func(b *testing.B) {
		mean := make([]float64, d)
		for b.Loop() {
			covariance(x, n, d, mean)
		}
	})
	b.Run("FitPCA", func(b *testing.B) {
		for b.Loop() {
			if _, err := FitPCA(x, n, d, k); err != nil {
				b.Fatal(err)
			}
		}
	})
	p, err := FitPCA(x, n, d, k)
	if err != nil {
		b.Fatal(err)
	}
	codes, back := make([]float32, n*k), make([]float32, n*d)
	b.Run("Project", func(b *testing.B) {
		for b.Loop() {
			p.Project(x, n, codes)
		}
	})
	b.Run("Reconstruct", func(b *testing.B) {
		for b.Loop() {
			p.Reconstruct(codes, n, back)
		}
	})
}
