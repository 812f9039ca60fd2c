// Package quality measures how well an autoencoder reproduces its input and
// provides the linear baseline it should beat.
//
//   - SSIM, MeanSSIM and SSIMer: the structural similarity index of Wang et
//     al. (2004), computed as scikit-image's structural_similarity with
//     gaussian_weights=True, sigma=1.5, use_sample_covariance=False and
//     data_range=1, and checked against values that skimage computed
//     (testdata/ssim_reference.py).
//   - MSE and PSNR: pixel error and peak signal-to-noise ratio for images in
//     [0,1].
//   - FitPCA and PCA: principal component analysis in float64 with gonum,
//     projecting images to k codes and reconstructing them, the linear
//     autoencoder with the least squared error for a given k.
//
// Images are float32, row-major (h rows of w pixels), with values in [0,1];
// batches are n images one after another. Sums are kept in float64.
package quality
