// Package plot draws the small PNGs that training and evaluation write for
// people to look at: loss curves, grids of MNIST digits, weight images
// (filters) and scatter plots of codes coloured by digit. It depends on the
// standard library only; text is drawn with a tiny built-in 3×5 pixel font
// (digits, a few capitals and punctuation), and images are paletted or 8-bit
// grey so that the files stay small.
package plot

// MNIST geometry: the sample grid's tiles are 28×28 images.
const (
	side     = 28
	imageLen = side * side
)
