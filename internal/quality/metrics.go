package quality

import (
	"fmt"
	"math"
)

// MSE returns the mean squared difference of a and b, summed in float64.
// a and b must have the same length (MSE panics otherwise); for empty ones
// it is NaN. For batches it is the mean over all pixels of all images.
func MSE(a, b []float32) float64 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("quality: MSE of %d and %d values", len(a), len(b)))
	}
	var sum float64
	for i, v := range a {
		d := float64(v) - float64(b[i])
		sum += d * d
	}
	return sum / float64(len(a))
}

// PSNR returns the peak signal-to-noise ratio in decibels for a mean squared
// error mse of images with data range 1: 10·log10(1/mse). It is +Inf for
// mse 0 and NaN for a negative or NaN mse.
func PSNR(mse float64) float64 {
	if mse < 0 || math.IsNaN(mse) {
		return math.NaN()
	}
	return -10 * math.Log10(mse)
}
