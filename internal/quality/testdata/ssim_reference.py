#!/usr/bin/python3
"""Reference SSIM values for internal/quality's tests, from scikit-image.

Writes ssim_reference.json beside this script: deterministic image pairs
(a seeded numpy RNG and closed-form shapes) and, for each pair, the value of

    skimage.metrics.structural_similarity(a, b, gaussian_weights=True,
        sigma=1.5, use_sample_covariance=False, data_range=1)

How it was run (Debian 12, the distribution's packages, no pip):

    apt-get install -y --no-install-recommends python3-skimage python3-numpy
    /usr/bin/python3 internal/quality/testdata/ssim_reference.py

with python3-skimage 0.19.3-8 (scikit-image 0.19.3), numpy 1.24.2 and
scipy 1.10.1. The Go tests read only the JSON file; they do not need Python.

Pixels are stored as bytes k (hex, row-major, h rows of w) and mean
float32(k)/255, the way the project loads MNIST. The script computes that
division in float32 as Go does, then hands skimage float64 arrays: skimage
filters in the input's float type, and float64 is what the Go code uses.
"""

import json
import os

import numpy as np
import scipy
import skimage
from skimage.metrics import structural_similarity

SEED = 20240601


def to_bytes(img):
    """[0,1] floats -> uint8 by rounding, clipped."""
    return np.clip(np.rint(np.asarray(img) * 255), 0, 255).astype(np.uint8)


def pixels(k):
    """uint8 -> float32(k)/255 (rounded once, in float32) -> float64."""
    return (k.astype(np.float32) / np.float32(255)).astype(np.float64)


def blob(h, w, cy, cx, s):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s * s))


def stroke(h, w):
    """A thick ring with a bar: an MNIST-like pen stroke on black."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.hypot(y - h / 2 + 0.5, x - w / 2 + 0.5)
    ring = np.clip(1.6 - np.abs(r - 0.3 * min(h, w)), 0, 1)
    bar = np.clip(1.6 - np.abs(x - 0.62 * w), 0, 1) * (y > 0.25 * h) * (y < 0.9 * h)
    return np.maximum(ring, bar)


def main():
    rng = np.random.default_rng(SEED)
    h, w = 28, 28
    smooth = to_bytes(blob(h, w, 13.0, 14.5, 5.0))
    digit = to_bytes(stroke(h, w))
    noisy = lambda img, s: to_bytes(pixels(img) + rng.normal(0, s, img.shape))

    cases = [
        ("identical blob", smooth, smooth.copy()),
        ("blob vs noisy 0.05", smooth, noisy(smooth, 0.05)),
        ("blob vs noisy 0.2", smooth, noisy(smooth, 0.2)),
        ("blob vs shifted (2,1)", smooth, np.roll(smooth, (2, 1), axis=(0, 1))),
        ("blob vs constant 0.5", smooth, np.full((h, w), 128, np.uint8)),
        ("constant 0.2 vs constant 0.7", np.full((h, w), 51, np.uint8), np.full((h, w), 178, np.uint8)),
        ("zeros vs zeros", np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)),
        ("random vs random", rng.integers(0, 256, (h, w), dtype=np.uint8),
         rng.integers(0, 256, (h, w), dtype=np.uint8)),
        ("stroke vs noisy 0.1", digit, noisy(digit, 0.1)),
        ("stroke vs blurred", digit, to_bytes(scipy.ndimage.gaussian_filter(pixels(digit), 1.0))),
        ("stroke vs inverted", digit, 255 - digit),
        ("stroke vs blob", digit, smooth),
    ]
    # Other shapes: w != h catches a transposed index; 11x11 is the least
    # skimage accepts with this window (one valid pixel).
    for hh, ww in ((20, 32), (33, 17), (11, 11), (12, 15)):
        a = to_bytes(blob(hh, ww, hh * 0.4, ww * 0.55, min(hh, ww) / 5))
        cases.append((f"{ww}x{hh} blob vs noisy 0.1", a, noisy(a, 0.1)))
        cases.append((f"{ww}x{hh} random vs random",
                      rng.integers(0, 256, (hh, ww), dtype=np.uint8),
                      rng.integers(0, 256, (hh, ww), dtype=np.uint8)))

    out = []
    for name, a, b in cases:
        assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
        v = structural_similarity(pixels(a), pixels(b), gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False, data_range=1)
        out.append({
            "name": name,
            "w": int(a.shape[1]),
            "h": int(a.shape[0]),
            "a": a.tobytes().hex(),
            "b": b.tobytes().hex(),
            "ssim": float(v),
        })

    doc = {
        "generator": "ssim_reference.py",
        "skimage": skimage.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "call": "structural_similarity(a, b, gaussian_weights=True, sigma=1.5, "
                "use_sample_covariance=False, data_range=1)",
        "pixels": "byte k is float32(k)/255; row-major, h rows of w",
        "cases": out,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ssim_reference.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    for c in out:
        print(f"{c['name']:32s} {c['ssim']!r}")


if __name__ == "__main__":
    main()
