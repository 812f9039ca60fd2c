package model

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/aeserve/aeserve/internal/mnistdata"
	"github.com/aeserve/aeserve/internal/vec"
	"github.com/aeserve/aeserve/weights"
)

// testImages reads the first n MNIST test images, pixels in [0, 1].
func testImages(t testing.TB, n int) []float32 {
	f, err := os.Open(mnistdata.File(t, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var hdr [4]uint32
	if err := binary.Read(z, binary.BigEndian, &hdr); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, n*ImageLen)
	if _, err := io.ReadFull(z, raw); err != nil {
		t.Fatal(err)
	}
	img := make([]float32, len(raw))
	for i, b := range raw {
		img[i] = float32(b) / 255
	}
	return img
}

// int8Models are the shipped models whose architecture has an int8 path.
var int8Models = []string{"conv", "denoise", "classifier", "dense", "deep", "sparse", "contractive"}

func loadPair(t testing.TB, name string) (f32, i8 *Model) {
	f32, err := LoadFS(weights.FS, name)
	if err != nil {
		t.Fatal(err)
	}
	if i8, err = LoadFS(weights.FS, name); err != nil {
		t.Fatal(err)
	}
	if err := i8.UseInt8(); err != nil {
		t.Fatal(err)
	}
	return f32, i8
}

func psnr(a, b []float32) float64 {
	var se float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		se += d * d
	}
	return 10 * math.Log10(1/(se/float64(len(a))))
}

func argmax(v []float32) int {
	return slices.Index(v, slices.Max(v))
}

// TestInt8MatchesFloat32 bounds the int8 path against the float32 one on
// 512 MNIST test images, for every stage of every int8 model. The bounds
// leave room over what the shipped weights give (in brackets), and are far
// inside the models' own error: a reconstruction is about 20–25 dB from its
// input, so images within 40 dB of the float32 ones differ from them by a
// hundredth of that squared error.
//
//   - images (decoder, full): PSNR int8 vs float32 ≥ 40 dB [48–53 dB]
//   - latents (encoder): RMS of the difference ≤ 2% of the float32 RMS [0.6%]
//   - class probabilities: the same top class for ≥ 99% of images [100%],
//     and no probability off by more than 0.05 [0.008]
//
// The dense autoencoders' bounds are looser, 35 dB and 5% [deep: 39 dB
// full, 1.4%; sparse: 2.2%]: their layers are wide dot products over few
// large activations, where one scale per image costs more, and errors
// compound through deep's six layers. (Their one-layer decoders are the
// float32 output layer alone: int8 changes nothing there.)
func TestInt8MatchesFloat32(t *testing.T) {
	const n = 512
	img := testImages(t, n)
	for _, name := range int8Models {
		f32, i8 := loadPair(t, name)
		minPSNR, maxRel := 40.0, 0.02
		if f32.Arch.stages[0].Layers[0].fc != nil {
			minPSNR, maxRel = 35, 0.05
		}
		for _, h := range f32.Arch.Runnable() {
			x := img
			if h == Decoder {
				enc, _ := f32.NewRunner(Encoder)
				var err error
				if x, err = enc.Run(img, n); err != nil {
					t.Fatal(err)
				}
			}
			rf, _ := f32.NewRunner(h)
			ri, err := i8.NewRunner(h)
			if err != nil {
				t.Fatal(err)
			}
			want, err := rf.Run(x, n)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ri.Run(x, n)
			if err != nil {
				t.Fatal(err)
			}
			var se, ss, worst float64
			for i := range want {
				d := float64(got[i] - want[i])
				se, ss, worst = se+d*d, ss+float64(want[i])*float64(want[i]), max(worst, math.Abs(d))
			}
			switch h {
			case Decoder, Full:
				p := psnr(got, want)
				t.Logf("%s/%s: PSNR int8 vs float32 %.2f dB", name, h, p)
				if p < minPSNR {
					t.Errorf("%s/%s: PSNR int8 vs float32 %.2f dB, want ≥ %v", name, h, p, minPSNR)
				}
			case Encoder:
				r := math.Sqrt(se / ss)
				t.Logf("%s/%s: relative RMS difference %.4f", name, h, r)
				if r > maxRel {
					t.Errorf("%s/%s: relative RMS difference %.4f, want ≤ %v", name, h, r, maxRel)
				}
			case Classifier:
				agree := 0
				for i := 0; i < n; i++ {
					if argmax(got[i*10:][:10]) == argmax(want[i*10:][:10]) {
						agree++
					}
				}
				t.Logf("%s: top class agrees on %d/%d, max |diff| %.4f", name, agree, n, worst)
				if agree < n*99/100 || worst > 0.05 {
					t.Errorf("%s: top class agrees on %d/%d (want ≥ 99%%), max |diff| %.4f (want ≤ 0.05)", name, agree, n, worst)
				}
			}
		}
	}
}

// TestInt8PortableMatchesAssembly: integer sums are exact, so the int8
// path gives the same bits on the AVX-512 VNNI assembly and on the
// portable loop; and an item's result does not depend on its batch (one
// activation scale per image), so items run alone give the batch's bits.
func TestInt8PortableMatchesAssembly(t *testing.T) {
	const n = 37 // a tail block of 1 item for the dense layers
	img := testImages(t, n)
	for _, name := range int8Models {
		_, i8 := loadPair(t, name)
		for _, h := range i8.Arch.Runnable() {
			t.Run(fmt.Sprintf("%s/%s", name, h), func(t *testing.T) {
				x := img
				if h == Decoder {
					enc, _ := i8.NewRunner(Encoder)
					x, _ = enc.Run(img, n)
				}
				r, err := i8.NewRunner(h)
				if err != nil {
					t.Fatal(err)
				}
				asm, err := r.Run(x, n)
				if err != nil {
					t.Fatal(err)
				}
				prev := vec.SetInt8Accelerated(false)
				portable, err := r.Run(x, n)
				vec.SetInt8Accelerated(prev)
				if err != nil {
					t.Fatal(err)
				}
				if !vec.Int8Accelerated() {
					t.Log("no AVX-512 VNNI here: portable against portable")
				}
				if i := firstDiff(asm, portable); i >= 0 {
					t.Fatalf("value %d: assembly %v, portable %v", i, asm[i], portable[i])
				}
				inL, outL := r.InLen(), r.OutLen()
				for _, i := range []int{0, 17, n - 1} {
					one, err := r.Run(x[i*inL:(i+1)*inL], 1)
					if err != nil {
						t.Fatal(err)
					}
					if !batchInvariant() { // float32 dense output layers through OpenBLAS
						closeTo(t, fmt.Sprintf("item %d alone", i), one, asm[i*outL:(i+1)*outL])
						continue
					}
					if j := firstDiff(one, asm[i*outL:(i+1)*outL]); j >= 0 {
						t.Fatalf("item %d alone: value %d is %v, in the batch %v", i, j, one[j], asm[i*outL+j])
					}
				}
			})
		}
	}
}

func firstDiff(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// TestInt8Inference: which architectures have an int8 path, and that the
// others refuse it; the default is float32, and switching keeps the
// fingerprint.
func TestInt8Inference(t *testing.T) {
	want := map[string]bool{
		"conv-ae/v1": true, "cnn-classifier/v1": true, "dense-ae/v1": true, "deep-ae/v1": true,
		"dense-sigmoid-ae/128": true, "dense-sigmoid-ae/64": true,
		"compact-ae/v1": false, // a linear code feeds the decoder
	}
	for name, ok := range want {
		a, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if a.Int8Inference() != ok {
			t.Errorf("%s: Int8Inference %v, want %v", name, !ok, ok)
		}
	}
	for _, name := range Architectures() {
		if a, _ := Lookup(name); a.Gaussian && a.Int8Inference() {
			t.Errorf("%s: a Gaussian code has an int8 path", name)
		}
	}
	m, err := LoadFS(weights.FS, "compact")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.UseInt8(); err == nil || m.Precision() != PrecisionFloat32 {
		t.Errorf("compact: UseInt8 gave %v, precision %s", err, m.Precision())
	}
	f32, i8 := loadPair(t, "conv")
	if f32.Precision() != PrecisionFloat32 || i8.Precision() != PrecisionInt8 || f32.Fingerprint != i8.Fingerprint {
		t.Errorf("precisions %s/%s, fingerprints %s/%s", f32.Precision(), i8.Precision(), f32.Fingerprint, i8.Fingerprint)
	}
}

// TestInt8ZeroAllocs: like the float32 path, an int8 pass with a reused
// output allocates nothing once its buffers have grown.
func TestInt8ZeroAllocs(t *testing.T) {
	for _, name := range int8Models {
		_, i8 := loadPair(t, name)
		for _, h := range i8.Arch.Runnable() {
			r, _ := i8.NewRunner(h)
			for _, n := range []int{1, 64} {
				in, out := make([]float32, n*r.InLen()), make([]float32, n*r.OutLen())
				for i := range in {
					in[i] = float32(i%7) / 7
				}
				if err := r.RunInto(out, in, n); err != nil {
					t.Fatal(err)
				}
				if a := testing.AllocsPerRun(5, func() { _ = r.RunInto(out, in, n) }); a != 0 {
					t.Errorf("%s/%s n=%d: %v allocations per pass", name, h, n, a)
				}
			}
		}
	}
}
