package model_test

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/weights"
)

// refModel runs a stored half of the shipped architecture in float64 with
// plain loops, from the definitions: the reference path the fast kernels
// must match.
func refModel(m *model.Model, h model.Half, x []float64, n int) []float64 {
	p := m.Params()
	f64 := func(name string) []float64 {
		d := p[name].Data().([]float32)
		o := make([]float64, len(d))
		for i, v := range d {
			o[i] = float64(v)
		}
		return o
	}
	// conv: 3×3, stride 1, pad 1, weights [cout,cin,3,3]; convT: stride 2,
	// Keras "same" (pad 0, output 2H), weights [cin,cout,3,3].
	conv := func(x []float64, cin, cout, hw int, w, b []float64, transposed bool) []float64 {
		ohw := hw
		if transposed {
			ohw = 2 * hw
		}
		y := make([]float64, n*cout*ohw*ohw)
		for i := 0; i < n; i++ {
			for co := 0; co < cout; co++ {
				for p := 0; p < ohw*ohw; p++ {
					y[(i*cout+co)*ohw*ohw+p] = b[co]
				}
			}
			for ci := 0; ci < cin; ci++ {
				for co := 0; co < cout; co++ {
					for kh := 0; kh < 3; kh++ {
						for kw := 0; kw < 3; kw++ {
							var wv float64
							if transposed {
								wv = w[((ci*cout+co)*3+kh)*3+kw]
							} else {
								wv = w[((co*cin+ci)*3+kh)*3+kw]
							}
							for r := 0; r < hw; r++ {
								for c := 0; c < hw; c++ {
									xv := x[((i*cin+ci)*hw+r)*hw+c]
									var orow, ocol int
									if transposed { // input (r,c) feeds output (2r+kh, 2c+kw)
										orow, ocol = 2*r+kh, 2*c+kw
									} else { // input (r,c) feeds output (r−kh+1, c−kw+1)
										orow, ocol = r-kh+1, c-kw+1
									}
									if orow < 0 || orow >= ohw || ocol < 0 || ocol >= ohw {
										continue
									}
									y[((i*cout+co)*ohw+orow)*ohw+ocol] += xv * wv
								}
							}
						}
					}
				}
			}
		}
		return y
	}
	relu := func(y []float64) []float64 {
		for i, v := range y {
			y[i] = math.Max(v, 0)
		}
		return y
	}
	pool := func(y []float64, c, hw int) []float64 {
		o := make([]float64, n*c*hw*hw/4)
		for pl := 0; pl < n*c; pl++ {
			for r := 0; r < hw/2; r++ {
				for q := 0; q < hw/2; q++ {
					m := math.Inf(-1)
					for dr := 0; dr < 2; dr++ {
						for dq := 0; dq < 2; dq++ {
							m = math.Max(m, y[(pl*hw+2*r+dr)*hw+2*q+dq])
						}
					}
					o[(pl*hw/2+r)*hw/2+q] = m
				}
			}
		}
		return o
	}
	if h != model.Decoder {
		x = pool(relu(conv(x, 1, 32, 28, f64("encoder.conv1.weight"), f64("encoder.conv1.bias"), false)), 32, 28)
		x = pool(relu(conv(x, 32, 32, 14, f64("encoder.conv2.weight"), f64("encoder.conv2.bias"), false)), 32, 14)
		if h == model.Encoder {
			return x
		}
	}
	x = relu(conv(x, 32, 32, 7, f64("decoder.deconv1.weight"), f64("decoder.deconv1.bias"), true))
	x = relu(conv(x, 32, 32, 14, f64("decoder.deconv2.weight"), f64("decoder.deconv2.bias"), true))
	x = conv(x, 32, 1, 28, f64("decoder.conv3.weight"), f64("decoder.conv3.bias"), false)
	for i, v := range x {
		x[i] = 1 / (1 + math.Exp(-v))
	}
	return x
}

// The fast path, as served, equals the float64 reference within
// |a − b| ≤ 1e-5 + 1e-4·|b| for every half, model and batch size (including
// sizes that pad a bucket and sizes that split across workers), and its
// images are within one grey level.
func TestFastPathMatchesReferenceModel(t *testing.T) {
	for _, name := range []string{"conv", "denoise"} {
		m, err := model.LoadFS(weights.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []model.Half{model.Encoder, model.Decoder, model.Full} {
			r, err := m.NewRunner(h)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{1, 3, 8} {
				t.Run(fmt.Sprintf("%s/%s/n=%d", name, h, n), func(t *testing.T) {
					rng := rand.New(rand.NewSource(int64(n)))
					img := make([]float64, n*model.ImageLen)
					for i := range img {
						img[i] = float64(float32(rng.Float64()))
					}
					x := img
					if h == model.Decoder { // latents as the encoder makes them, not saturating noise
						x = refModel(m, model.Encoder, img, n)
					}
					x32 := make([]float32, len(x))
					for i, v := range x {
						x32[i] = float32(v)
						x[i] = float64(x32[i])
					}
					got, err := r.Run(x32, n)
					if err != nil {
						t.Fatal(err)
					}
					want := refModel(m, h, x, n)
					var worst float64
					for i, b := range want {
						d := math.Abs(float64(got[i]) - b)
						if !(d <= 1e-5+1e-4*math.Abs(b)) {
							t.Fatalf("value %d: fast %v, reference %v (|diff| %.3g)", i, got[i], b, d)
						}
						if h != model.Encoder {
							if g, w := math.Round(float64(got[i])*255), math.Round(b*255); math.Abs(g-w) > 1 {
								t.Fatalf("pixel %d: grey %v vs %v", i, g, w)
							}
						}
						worst = max(worst, d)
					}
					t.Logf("worst |diff| %.3g", worst)
				})
			}
			r.Close()
		}
	}
}
