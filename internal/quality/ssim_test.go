package quality

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// ssimReference is testdata/ssim_reference.json, written by
// testdata/ssim_reference.py with scikit-image.
type ssimReference struct {
	Skimage string `json:"skimage"`
	Cases   []struct {
		Name string  `json:"name"`
		W    int     `json:"w"`
		H    int     `json:"h"`
		A    string  `json:"a"` // hex bytes k; pixel float32(k)/255
		B    string  `json:"b"`
		SSIM float64 `json:"ssim"`
	} `json:"cases"`
}

func bytePixels(t *testing.T, s string, n int) []float32 {
	t.Helper()
	raw, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != n {
		t.Fatalf("%d pixels, want %d", len(raw), n)
	}
	px := make([]float32, n)
	for i, k := range raw {
		px[i] = float32(k) / 255
	}
	return px
}

// SSIM agrees with skimage's structural_similarity on the fixture pairs.
func TestSSIMMatchesSkimage(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "ssim_reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref ssimReference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) < 10 {
		t.Fatalf("%d reference cases, want at least 10", len(ref.Cases))
	}
	var s SSIMer
	var worst float64
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			a := bytePixels(t, c.A, c.W*c.H)
			b := bytePixels(t, c.B, c.W*c.H)
			for _, got := range []float64{SSIM(a, b, c.W, c.H), s.SSIM(a, b, c.W, c.H)} {
				diff := math.Abs(got - c.SSIM)
				worst = max(worst, diff)
				if !(diff <= 1e-6) {
					t.Errorf("SSIM = %.17g, skimage %s says %.17g (diff %.3g)", got, ref.Skimage, c.SSIM, diff)
				}
			}
		})
	}
	t.Logf("%d cases, largest difference from skimage %s: %.3g", len(ref.Cases), ref.Skimage, worst)
}

// naiveSSIM is SSIM spelled out as skimage does it, independently of the
// package's code: 2-D Gaussian filtering of the whole image with scipy's
// "reflect" border (d c b a | a b c d | d c b a), the S map everywhere,
// then the mean of its interior.
func naiveSSIM(a, b []float32, w, h int) float64 {
	const r = 5
	var g [2*r + 1]float64
	var sum float64
	for i := range g {
		x := float64(i - r)
		g[i] = math.Exp(-x * x / (2 * 1.5 * 1.5))
		sum += g[i]
	}
	reflect := func(i, n int) int {
		for i < 0 || i >= n {
			if i < 0 {
				i = -i - 1
			} else {
				i = 2*n - i - 1
			}
		}
		return i
	}
	filter := func(f func(i int) float64) []float64 {
		out := make([]float64, w*h)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				var s float64
				for dy := -r; dy <= r; dy++ {
					for dx := -r; dx <= r; dx++ {
						s += g[dy+r] * g[dx+r] / (sum * sum) * f(reflect(y+dy, h)*w+reflect(x+dx, w))
					}
				}
				out[y*w+x] = s
			}
		}
		return out
	}
	ux := filter(func(i int) float64 { return float64(a[i]) })
	uy := filter(func(i int) float64 { return float64(b[i]) })
	uxx := filter(func(i int) float64 { return float64(a[i]) * float64(a[i]) })
	uyy := filter(func(i int) float64 { return float64(b[i]) * float64(b[i]) })
	uxy := filter(func(i int) float64 { return float64(a[i]) * float64(b[i]) })
	c1, c2 := 0.01*0.01, 0.03*0.03
	var total float64
	for y := r; y < h-r; y++ {
		for x := r; x < w-r; x++ {
			i := y*w + x
			vx, vy, vxy := uxx[i]-ux[i]*ux[i], uyy[i]-uy[i]*uy[i], uxy[i]-ux[i]*uy[i]
			total += (2*ux[i]*uy[i] + c1) * (2*vxy + c2) / ((ux[i]*ux[i] + uy[i]*uy[i] + c1) * (vx + vy + c2))
		}
	}
	return total / float64((w-2*r)*(h-2*r))
}

func randImage(r *rand.Rand, n int) []float32 {
	px := make([]float32, n)
	for i := range px {
		px[i] = r.Float32()
	}
	return px
}

// noisy returns img plus amp times noise, clipped to [0,1].
func noisy(img, noise []float32, amp float32) []float32 {
	out := make([]float32, len(img))
	for i, v := range img {
		out[i] = min(max(v+amp*noise[i], 0), 1)
	}
	return out
}

// blob is a smooth w×h test image: a Gaussian bump on a dim background.
func blob(w, h int) []float32 {
	px := make([]float32, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dx, dy := float64(x)-0.55*float64(w), float64(y)-0.45*float64(h)
			px[y*w+x] = float32(0.1 + 0.8*math.Exp(-(dx*dx+dy*dy)/(2*25)))
		}
	}
	return px
}

// SSIM agrees with a direct 2-D implementation on sizes from the least
// allowed up, square or not, with related and unrelated images.
func TestSSIMMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, sz := range [][2]int{{11, 11}, {11, 14}, {14, 11}, {16, 16}, {28, 28}, {31, 19}} {
		w, h := sz[0], sz[1]
		base := blob(w, h)
		noise := make([]float32, w*h)
		for i := range noise {
			noise[i] = float32(r.NormFloat64())
		}
		for _, tc := range []struct {
			name string
			a, b []float32
		}{
			{"blob vs noisy", base, noisy(base, noise, 0.1)},
			{"random pair", randImage(r, w*h), randImage(r, w*h)},
			{"blob vs random", base, randImage(r, w*h)},
		} {
			t.Run(fmt.Sprintf("%dx%d/%s", w, h, tc.name), func(t *testing.T) {
				got, want := SSIM(tc.a, tc.b, w, h), naiveSSIM(tc.a, tc.b, w, h)
				if math.Abs(got-want) > 1e-12 {
					t.Errorf("SSIM = %.17g, direct 2-D computation %.17g", got, want)
				}
			})
		}
	}
}

func TestSSIMProperties(t *testing.T) {
	const w, h = 28, 28
	r := rand.New(rand.NewPCG(1, 2))
	noise := make([]float32, w*h)
	for i := range noise {
		noise[i] = float32(r.NormFloat64())
	}
	constant := func(v float32) []float32 {
		px := make([]float32, w*h)
		for i := range px {
			px[i] = v
		}
		return px
	}
	images := []struct {
		name string
		px   []float32
	}{
		{"blob", blob(w, h)},
		{"random", randImage(r, w*h)},
		{"zeros", constant(0)},
		{"ones", constant(1)},
		{"constant 0.3", constant(0.3)},
	}

	t.Run("identical is 1", func(t *testing.T) {
		for _, im := range images {
			if got := SSIM(im.px, append([]float32(nil), im.px...), w, h); math.Abs(got-1) > 1e-12 {
				t.Errorf("SSIM(%s, %s) = %.17g, want 1", im.name, im.name, got)
			}
		}
	})

	t.Run("symmetric and in [-1,1]", func(t *testing.T) {
		for _, a := range images {
			for _, b := range images {
				ab, ba := SSIM(a.px, b.px, w, h), SSIM(b.px, a.px, w, h)
				if ab != ba {
					t.Errorf("SSIM(%s, %s) = %.17g but SSIM(%s, %s) = %.17g", a.name, b.name, ab, b.name, a.name, ba)
				}
				if !(ab >= -1 && ab <= 1+1e-12) {
					t.Errorf("SSIM(%s, %s) = %.17g, outside [-1,1]", a.name, b.name, ab)
				}
			}
		}
	})

	t.Run("drops as noise grows", func(t *testing.T) {
		for _, im := range images[:2] {
			prev := math.Inf(1)
			for _, amp := range []float32{0, 0.01, 0.03, 0.1, 0.2, 0.4} {
				got := SSIM(im.px, noisy(im.px, noise, amp), w, h)
				if !(got < prev) {
					t.Errorf("%s with noise %g: SSIM %.6f, not below %.6f at less noise", im.name, amp, got, prev)
				}
				prev = got
			}
		}
	})

	t.Run("inverted is negative", func(t *testing.T) {
		a := blob(w, h)
		inv := make([]float32, len(a))
		for i, v := range a {
			inv[i] = 1 - v
		}
		if got := SSIM(a, inv, w, h); got >= 0 {
			t.Errorf("SSIM(blob, 1-blob) = %.6f, want negative", got)
		}
	})
}

func TestMeanSSIM(t *testing.T) {
	const w, h, n = 28, 20, 5
	r := rand.New(rand.NewPCG(3, 4))
	a, b := randImage(r, n*w*h), make([]float32, n*w*h)
	noise := randImage(r, n*w*h)
	copy(b, noisy(a, noise, 0.3))
	var want float64
	for i := 0; i < n; i++ {
		want += SSIM(a[i*w*h:(i+1)*w*h], b[i*w*h:(i+1)*w*h], w, h)
	}
	want /= n
	if got := MeanSSIM(a, b, n, w, h); math.Abs(got-want) > 1e-15 {
		t.Errorf("MeanSSIM = %.17g, mean of SSIMs %.17g", got, want)
	}
	// Longer slices: only the first n images count.
	if got := MeanSSIM(append(a, randImage(r, w*h)...), append(b, randImage(r, w*h)...), n, w, h); math.Abs(got-want) > 1e-15 {
		t.Errorf("MeanSSIM with a spare image = %.17g, want %.17g", got, want)
	}
	if got := MeanSSIM(nil, nil, 0, w, h); !math.IsNaN(got) {
		t.Errorf("MeanSSIM of no images = %g, want NaN", got)
	}
}

func TestSSIMPanicsOnBadShapes(t *testing.T) {
	px := make([]float32, 28*28)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"width 10", func() { SSIM(px, px, 10, 28) }},
		{"height 10", func() { SSIM(px, px, 28, 10) }},
		{"short a", func() { SSIM(px[:100], px, 28, 28) }},
		{"short b", func() { SSIM(px, px[:783], 28, 28) }},
		{"MeanSSIM short", func() { MeanSSIM(px, px, 2, 28, 28) }},
		{"MeanSSIM negative n", func() { MeanSSIM(px, px, -1, 28, 28) }},
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

// An SSIMer does not allocate once its buffer fits.
func TestSSIMerAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	a, b := randImage(r, 4*28*28), randImage(r, 4*28*28)
	var s SSIMer
	if n := testing.AllocsPerRun(20, func() { s.SSIM(a, b, 28, 28) }); n != 0 {
		t.Errorf("SSIMer.SSIM: %g allocations a call, want 0", n)
	}
	if n := testing.AllocsPerRun(20, func() { s.MeanSSIM(a, b, 4, 28, 28) }); n != 0 {
		t.Errorf("SSIMer.MeanSSIM: %g allocations a call, want 0", n)
	}
}

func BenchmarkSSIM28(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	x, y := randImage(r, 28*28), randImage(r, 28*28)
	var s SSIMer
	for b.Loop() {
		s.SSIM(x, y, 28, 28)
	}
}
