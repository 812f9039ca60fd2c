package evaluate

import (
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/aeserve/aeserve/internal/quality"
)

func randomImages(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n*ImageLen)
	for i := range x {
		x[i] = rng.Float32()
	}
	return x
}

func TestScore(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	clean := randomImages(rng, 5)
	if s := Score(clean, clean, 5); s.MSE != 0 || !math.IsInf(s.PSNR, 1) || math.Abs(s.SSIM-1) > 1e-12 {
		t.Errorf("identical images: %+v", s)
	}

	out := randomImages(rng, 5)
	s := Score(out, clean, 5)
	if want := quality.MSE(out, clean); math.Abs(s.MSE-want) > 1e-12 {
		t.Errorf("MSE %g, quality.MSE %g", s.MSE, want)
	}
	if want := -10 * math.Log10(s.MSE); math.Abs(s.PSNR-want) > 1e-9 {
		t.Errorf("PSNR %g, want %g", s.PSNR, want)
	}
	if want := quality.MeanSSIM(out, clean, 5, Side, Side); math.Abs(s.SSIM-want) > 1e-12 {
		t.Errorf("SSIM %g, quality.MeanSSIM %g", s.SSIM, want)
	}

	// BCE of a constant output y against constant targets t is
	// −(t·ln y + (1−t)·ln(1−y)); outputs of 0 and 1 are clipped.
	fill := func(v float32) []float32 {
		x := make([]float32, ImageLen)
		for i := range x {
			x[i] = v
		}
		return x
	}
	if got, want := Score(fill(0.25), fill(0.5), 1).BCE, -(0.5*math.Log(0.25) + 0.5*math.Log(0.75)); math.Abs(got-want) > 1e-12 {
		t.Errorf("BCE %g, want %g", got, want)
	}
	if got, want := Score(fill(0), fill(1), 1).BCE, -math.Log(BCEClip); math.Abs(got-want) > 1e-9 {
		t.Errorf("BCE of a certain wrong answer %g, want the clip's %g", got, want)
	}
}

func TestMeanSSIMIsOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	a, b := randomImages(rng, 7), randomImages(rng, 7)
	var want float64
	for i := range 7 {
		want += quality.SSIM(a[i*ImageLen:], b[i*ImageLen:], Side, Side)
	}
	if got := MeanSSIM(a, b, 7); got != want/7 {
		t.Errorf("MeanSSIM %v, sum in order gives %v", got, want/7)
	}
}

func TestNoisy(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	x := randomImages(rng, 4)
	a, b := Noisy(x, 0.5, 42), Noisy(x[:2*ImageLen], 0.5, 42)
	if !slices.Equal(a[:2*ImageLen], b) {
		t.Error("the first images' noise depends on the images after them")
	}
	if slices.Equal(a, Noisy(x, 0.5, 43)) {
		t.Error("seed ignored")
	}
	if !slices.Equal(Noisy(x, 0, 42), x) {
		t.Error("factor 0 is not a copy")
	}
	lo, hi := Noisy(x, 0.3, 42), Noisy(x, 0.7, 42)
	var moved int
	for i, v := range a {
		if v < 0 || v > 1 {
			t.Fatalf("pixel %d = %v, outside [0,1]", i, v)
		}
		// One seed: the same draw scaled, so the noise grows with the factor
		// wherever clipping leaves it alone.
		if d3, d5, d7 := lo[i]-x[i], v-x[i], hi[i]-x[i]; hi[i] > 0 && hi[i] < 1 {
			if math.Abs(float64(d3)/0.3-float64(d7)/0.7) > 1e-5 || math.Abs(float64(d5)/0.5-float64(d7)/0.7) > 1e-5 {
				t.Fatalf("pixel %d: noise %v, %v, %v at 0.3, 0.5, 0.7 is not one draw scaled", i, d3, d5, d7)
			}
			moved++
		}
	}
	if moved < len(x)/10 {
		t.Errorf("only %d pixels unclipped at 0.7", moved)
	}
}

func TestAccuracy(t *testing.T) {
	probs := []float32{
		0.1, 0.8, 0.1, // 1
		0.5, 0.5, 0, // tie: 0
		0, 0, 1, // 2
		0.3, 0.3, 0.4, // 2
	}
	if got := Accuracy(probs, []uint8{1, 0, 1, 2}, 3); got != 0.75 {
		t.Errorf("accuracy %v, want 0.75", got)
	}
}

// Zeroing the codes past k gives the k-component PCA, as a fit with k
// components reconstructs.
func TestPCAReconstruct(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	const n = 300
	// Images near a 6-dimensional subspace, so the components are well
	// separated.
	basis := randomImages(rng, 6)
	x := make([]float32, n*ImageLen)
	for i := range n {
		for b := range 6 {
			c := float32(rng.NormFloat64()) / float32(b+1)
			for p := range ImageLen {
				x[i*ImageLen+p] += 0.2 * c * basis[b*ImageLen+p]
			}
		}
		for p := range ImageLen {
			x[i*ImageLen+p] += 0.5 + 0.01*float32(rng.NormFloat64())
		}
	}
	p6, err := quality.FitPCA(x, n, ImageLen, 6)
	if err != nil {
		t.Fatal(err)
	}
	p3, err := quality.FitPCA(x, n, ImageLen, 3)
	if err != nil {
		t.Fatal(err)
	}
	outs := PCAReconstruct(p6, []int{3, 6}, x[:10*ImageLen], 10)
	got, all := outs[0], outs[1]
	codes := make([]float32, 10*3)
	p3.Project(x, 10, codes)
	want := make([]float32, 10*ImageLen)
	p3.Reconstruct(codes, 10, want)
	for i := range want {
		w := min(max(want[i], 0), 1)
		if math.Abs(float64(got[i]-w)) > 1e-4 {
			t.Fatalf("value %d: %v, the 3-component fit gives %v", i, got[i], w)
		}
		if got[i] < 0 || got[i] > 1 {
			t.Fatalf("value %d = %v not clipped", i, got[i])
		}
	}
	// All six components reconstruct better than three.
	if quality.MSE(all, x[:10*ImageLen]) >= quality.MSE(got, x[:10*ImageLen]) {
		t.Error("6 components are no better than 3")
	}
}

func TestSparsityOf(t *testing.T) {
	codes := []float32{
		0.001, 0.2, 0.04, 0.9, // 2 of 4 below 0.05
		0.005, 0.3, 0.5, 0.02, // 2 of 4
		0.009, 0.01, 0.6, 0.7, // 2 of 4
		0, 0.04, 0.01, 0.001, // 4 of 4
	}
	s := SparsityOf(codes, 4, 4)
	var sum float64
	for _, v := range codes {
		sum += float64(v)
	}
	if s.Units != 4 || s.MedianInactive != 0.5 || math.Abs(s.MeanActivation-sum/16) > 1e-12 || s.Dead != 1 {
		t.Errorf("%+v: want 4 units, median 0.5, mean %g, 1 dead (unit 0: never above 0.01)", s, sum/16)
	}
	if s := SparsityOf(codes[:12], 3, 4); s.MedianInactive != 0.5 {
		t.Errorf("odd count: median %v", s.MedianInactive)
	}
}

// JacobianOf agrees with the Jacobian of SigmoidLayer by central
// differences.
func TestJacobianOf(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	const n, d, k = 3, 20, 5
	x := make([]float32, n*d)
	w := make([]float32, k*d)
	b := make([]float32, k)
	for i := range x {
		x[i] = rng.Float32()
	}
	for i := range w {
		w[i] = float32(rng.NormFloat64()) * 0.5
	}
	for i := range b {
		b[i] = float32(rng.NormFloat64())
	}
	h := SigmoidLayer(x, n, w, b)
	jac := JacobianOf(h, n, k, w)
	var norm, norm2 float64
	const eps = 1e-2
	for i := range n {
		var s float64
		for l := range d {
			up, down := slices.Clone(x[i*d:(i+1)*d]), slices.Clone(x[i*d:(i+1)*d])
			up[l] += eps
			down[l] -= eps
			hu, hd := SigmoidLayer(up, 1, w, b), SigmoidLayer(down, 1, w, b)
			for j := range k {
				g := float64(hu[j]-hd[j]) / (2 * eps)
				s += g * g
			}
		}
		norm += math.Sqrt(s) / n
		norm2 += s / n
	}
	if math.Abs(jac.MeanNorm-norm) > 1e-3*norm || math.Abs(jac.MeanNorm2-norm2) > 2e-3*norm2 {
		t.Errorf("JacobianOf %+v, central differences give ‖J‖_F %g, ‖J‖²_F %g", jac, norm, norm2)
	}
}

func TestCodeView(t *testing.T) {
	// Codes along one direction plus a little spread along another: the
	// first component explains nearly everything, and the view keeps the
	// order along it.
	rng := rand.New(rand.NewSource(6))
	const n, k = 200, 8
	codes := make([]float32, n*k)
	for i := range n {
		s := float64(i)/n - 0.5
		for j := range k {
			codes[i*k+j] = float32(s*float64(j+1) + 0.01*rng.NormFloat64())
		}
	}
	x, y, ex, err := CodeView(codes, n, k)
	if err != nil {
		t.Fatal(err)
	}
	if len(x) != n || len(y) != n || ex[0] < 0.99 || ex[1] > 0.01 {
		t.Fatalf("%d, %d points, explained %v", len(x), len(y), ex)
	}
	sign := math.Copysign(1, x[n-1]-x[0])
	for i := 1; i < n; i++ {
		if sign*(x[i]-x[i-1]) < -0.1 {
			t.Fatalf("point %d out of order along the first component", i)
		}
	}
	if x, y, _, err := CodeView([]float32{1, 2, 3}, 3, 1); err != nil || x[2] != 3 || y[2] != 0 {
		t.Errorf("one-value codes: %v %v %v", x, y, err)
	}
	if _, _, _, err := CodeView([]float32{1}, 1, 1); err == nil {
		t.Error("one code accepted")
	}
}

// The non-digits are what they claim: three kinds, n of each, white on
// black in [0, 1] with some ink and not the whole square lit, and the same
// for the same seed.
func TestNonDigits(t *testing.T) {
	images, kinds := NonDigits(50, 7)
	again, _ := NonDigits(50, 7)
	if len(kinds) != 150 || len(images) != 150*784 {
		t.Fatalf("%d kinds, %d pixels", len(kinds), len(images))
	}
	count := map[string]int{}
	for i, k := range kinds {
		count[k]++
		var ink float64
		for _, v := range images[i*784 : (i+1)*784] {
			if v < 0 || v > 1 {
				t.Fatalf("image %d: value %v", i, v)
			}
			ink += float64(v)
		}
		if mean := ink / 784; mean <= 0.01 || mean >= 0.6 {
			t.Errorf("image %d (%s): mean brightness %.3f", i, k, mean)
		}
	}
	if count[KindNoise] != 50 || count[KindShapes] != 50 || count[KindLetters] != 50 {
		t.Errorf("kinds %v", count)
	}
	for i := range images {
		if images[i] != again[i] {
			t.Fatal("the same seed drew other images")
		}
	}
}
