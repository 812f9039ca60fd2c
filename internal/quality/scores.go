package quality

import (
	"math"
	"slices"
)

// Score is an image's reconstruction error: how far an autoencoder's output
// y is from its input x, per pixel in [0, 1]. A digit like the training
// digits reconstructs well; anything else (a letter, noise, a shape) does
// not, which makes the error an anomaly score.
type Score struct {
	MSE float64 // mean of (y − x)²
	BCE float64 // mean of −[x·log y + (1−x)·log(1−y)], y clipped to [1e-7, 1−1e-7]
}

// Scores scores n images of per pixels each: x the inputs, y the outputs.
func Scores(x, y []float32, n, per int) []Score {
	out := make([]Score, n)
	for i := range out {
		xi, yi := x[i*per:(i+1)*per], y[i*per:(i+1)*per]
		var se, bce float64
		for j, t := range xi {
			v, tv := float64(yi[j]), float64(t)
			d := v - tv
			se += d * d
			c := math.Min(math.Max(v, 1e-7), 1-1e-7)
			// A term with a zero weight adds exactly 0, and skipping its
			// logarithm halves the work on MNIST's mostly black or white
			// pixels: the server scores every image it reconstructs.
			switch tv {
			case 0:
				bce -= math.Log(1 - c)
			case 1:
				bce -= math.Log(c)
			default:
				bce -= tv*math.Log(c) + (1-tv)*math.Log(1-c)
			}
		}
		out[i] = Score{MSE: se / float64(per), BCE: bce / float64(per)}
	}
	return out
}

// Percentiles of a distribution, by the nearest-rank method.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

// PercentilesOf v (which it sorts in place).
func PercentilesOf(v []float64) Percentiles {
	if len(v) == 0 {
		return Percentiles{}
	}
	slices.Sort(v)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(v))/100-1e-9)) - 1 // 99.9/100·1000 is not exactly 999 in floating point
		return v[min(max(i, 0), len(v)-1)]
	}
	return Percentiles{P50: rank(50), P90: rank(90), P95: rank(95), P99: rank(99), P999: rank(99.9), Max: v[len(v)-1]}
}

// ROCAUC is the area under the ROC curve of a score that should be higher
// for positives than for negatives: the probability that a random positive
// scores above a random negative (ties count half), by the rank-sum
// (Mann–Whitney U) formula.
func ROCAUC(negatives, positives []float64) float64 {
	if len(negatives) == 0 || len(positives) == 0 {
		return math.NaN()
	}
	type item struct {
		v   float64
		pos bool
	}
	all := make([]item, 0, len(negatives)+len(positives))
	for _, v := range negatives {
		all = append(all, item{v, false})
	}
	for _, v := range positives {
		all = append(all, item{v, true})
	}
	slices.SortFunc(all, func(a, b item) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	// Average ranks (1-based) over ties, then sum the positives' ranks.
	var rankSum float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		avg := float64(i+1+j) / 2
		for k := i; k < j; k++ {
			if all[k].pos {
				rankSum += avg
			}
		}
		i = j
	}
	np, nn := float64(len(positives)), float64(len(negatives))
	return (rankSum - np*(np+1)/2) / (np * nn)
}

// FastScores is Scores for the serving path: it writes into dst (one
// Score per image) and takes float32 logarithms (log32), about four times
// faster, agreeing with Scores within 1e-5 relative, which no threshold
// set from a ScoreDistribution can tell apart.
func FastScores(dst []Score, x, y []float32, per int) {
	// log1m clips 1−y (or y, as 1−(1−y)) rather than y, which keeps the
	// bound at 1e-7 on both sides: 1−1e-7 is not a float32, and 1−y is
	// exact for y ≥ ½.
	for i := range dst {
		xi, yi := x[i*per:(i+1)*per], y[i*per:(i+1)*per]
		yi = yi[:len(xi)]
		var se, bce float64
		for j, t := range xi {
			v := yi[j]
			d := v - t
			se += float64(d * d)
			// Most pixels are exactly 0 or 1, in runs (the branches
			// predict well), and need one logarithm of the output's
			// distance u from them, mostly small: log1m's series,
			// written out here because log1m does not inline.
			var u float32
			switch t {
			case 0:
				u = v
			case 1:
				u = 1 - v
			default:
				bce -= float64(t*log1m(1-v) + (1-t)*log1m(v))
				continue
			}
			if u < 1.0/64 {
				bce += float64(u * (1 + u*(0.5+u*(1.0/3+u*0.25))))
			} else {
				bce -= float64(logClipped(1 - u))
			}
		}
		dst[i] = Score{MSE: se / float64(per), BCE: bce / float64(per)}
	}
}

// log1m is ln(1−u) for u in [0, 1], with 1−u clipped to 1e-7: a good
// reconstruction's pixels are within a few hundredths of their input, where
// four terms of the series −u − u²/2 − u³/3 − u⁴/4 are exact in float32 (the
// next, u⁵/5, is below 1.2e-8 relative for u < 1/64).
func log1m(u float32) float32 {
	if u < 1.0/64 {
		return -u * (1 + u*(0.5+u*(1.0/3+u*0.25)))
	}
	return logClipped(1 - u)
}

// logClipped is log32(max(v, 1e-7)), a call of its own so that log1m,
// whose common case is a few multiplications, inlines.
//
//go:noinline
func logClipped(v float32) float32 { return log32(max(v, 1e-7)) }

// log32 is the natural logarithm of a positive, finite, normal x, to about
// one float32 ulp: Cephes' logf (a degree-9 polynomial on the mantissa in
// [√½, √2)).
func log32(x float32) float32 {
	b := math.Float32bits(x)
	e := float32(int32(b>>23) - 126)
	m := math.Float32frombits(b&0x007fffff | 0x3f000000) // in [0.5, 1)
	if m < 0.70710677 {
		e--
		m = m + m - 1
	} else {
		m--
	}
	z := m * m
	p := ((((((((7.0376836292e-2*m-1.1514610310e-1)*m+1.1676998740e-1)*m-
		1.2420140846e-1)*m+1.4249322787e-1)*m-1.6668057665e-1)*m+
		2.0000714765e-1)*m-2.4999993993e-1)*m + 3.3333331174e-1) * m * z
	p += -2.12194440e-4 * e
	p += -0.5 * z
	return m + p + 0.693359375*e
}
