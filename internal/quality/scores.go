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
			bce -= tv*math.Log(c) + (1-tv)*math.Log(1-c)
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
