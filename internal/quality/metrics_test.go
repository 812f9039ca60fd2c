package quality

import (
	"math"
	"testing"
)

func TestMSEAndPSNR(t *testing.T) {
	for _, tc := range []struct {
		name     string
		a, b     []float32
		mse, dB  float64
		tolerate float64
	}{
		{"identical", []float32{0, 0.5, 1}, []float32{0, 0.5, 1}, 0, math.Inf(1), 0},
		{"black vs white", []float32{0, 0, 0, 0}, []float32{1, 1, 1, 1}, 1, 0, 0},
		{"off by 0.1 everywhere", []float32{0.2, 0.5, 0.9}, []float32{0.3, 0.4, 0.8}, 0.01, 20, 1e-6},
		{"one pixel of four off by 0.5", []float32{0, 1, 0, 1}, []float32{0.5, 1, 0, 1}, 0.0625, 10 * math.Log10(16), 0},
		{"empty", nil, nil, math.NaN(), math.NaN(), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mse := MSE(tc.a, tc.b)
			if !near(mse, tc.mse, tc.tolerate) {
				t.Errorf("MSE = %.17g, want %.17g", mse, tc.mse)
			}
			if got := MSE(tc.b, tc.a); !near(got, mse, 0) {
				t.Errorf("MSE not symmetric: %.17g and %.17g", mse, got)
			}
			if dB := PSNR(mse); !near(dB, tc.dB, tc.tolerate*1e3) {
				t.Errorf("PSNR(%g) = %.17g, want %.17g", mse, dB, tc.dB)
			}
		})
	}
}

func TestPSNR(t *testing.T) {
	for _, tc := range []struct{ mse, dB float64 }{
		{1, 0},
		{0.1, 10},
		{0.001, 30},
		{0, math.Inf(1)},
		{4, -10 * math.Log10(4)},
		{-1, math.NaN()},
		{math.NaN(), math.NaN()},
	} {
		if got := PSNR(tc.mse); !near(got, tc.dB, 1e-12) {
			t.Errorf("PSNR(%g) = %.17g, want %.17g", tc.mse, got, tc.dB)
		}
	}
}

func TestMSEPanicsOnLengthMismatch(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MSE of 2 and 3 values did not panic")
		}
	}()
	MSE(make([]float32, 2), make([]float32, 3))
}

// near reports whether got is within tol of want, treating NaNs and
// equal infinities as equal.
func near(got, want, tol float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	if math.IsInf(want, 0) {
		return got == want
	}
	return math.Abs(got-want) <= tol
}
