package model

import (
	"fmt"
	"math"

	"github.com/aeserve/aeserve/internal/vec"
)

// Int8 inference (issue 18: reduced precision, always opt-in).
//
// A model switched to int8 (Model.UseInt8) runs its convolutions,
// transposed convolutions and dense layers as integer products on
// VPDPBUSD (internal/vec): unsigned 8-bit activations times signed 8-bit
// weights, summed exactly in int32, then scaled back to float32, biased and
// activated as the float32 path does, pooling included.
//
//   - Weights: symmetric, one scale per output channel (max |w| / 127),
//     quantised once when the model is switched, from its float32 weights.
//   - Activations: one scale per image (max / 255, zero point 0), taken
//     when the layer reads its input. Per image, not per batch, so that an
//     image's result does not depend on what the batcher ran it with; no
//     calibration data is needed. Zero point 0 needs inputs ≥ 0: pixels,
//     and what a ReLU or sigmoid gives. An architecture whose int8 layers
//     could see negative inputs (a linear code, a Gaussian code) has no int8
//     path (Arch.Int8Inference). A decoder run alone reads a latent below 0
//     (which no encoder of such a model produces) as 0.
//   - A dense output layer (a decoder's last, into the sigmoid that makes
//     the pixels, or a classifier's last, into the softmax) stays float32:
//     it is the whole decoder of the one-layer dense models, and the
//     classifier's is 1,280 multiply-adds. A convolutional output layer
//     runs int8: conv-ae/v1's 32→1 convolution at float32 was an eighth of
//     the int8 pass (one output channel makes thin GEMMs), and at int8 it
//     moved its outputs' PSNR against float32 by 0.2 dB (48.3 → 48.1 on
//     conv) and its PSNR against the clean digits by less than 0.01 dB.
//
// Everything between layers stays float32, so each layer quantises its own
// input; the convolutions quantise straight into the padded, channel-
// interleaved buffer ([Cin/4][padded plane][4] bytes) whose nine shifted
// views are the B operand of one product per image (per output phase for a
// transposed convolution), as the float32 shifted path (shifted.go) does
// with nine GEMMs.

// Precisions a model runs at.
const (
	PrecisionFloat32 = "float32"
	PrecisionInt8    = "int8"
)

// Int8Inference reports whether the architecture has an int8 path: every
// layer is a 3×3 convolution or transposed convolution of the shifted
// path's geometry or a dense layer, and every layer that would run int8
// reads values ≥ 0 (pixels, or a ReLU's or sigmoid's output).
func (a *Arch) Int8Inference() bool {
	if a.Gaussian {
		return false
	}
	for _, s := range a.stages {
		nonneg := s.Half != Decoder // pixels
		if s.Half == Decoder {
			enc := a.stage(Encoder)
			act := enc.Layers[len(enc.Layers)-1].Act
			nonneg = act == ActReLU || act == ActSigmoid
		}
		for i, l := range s.Layers {
			if l.conv != nil && !l.conv.fastGrad() {
				return false
			}
			if !s.runsFloat32(i) && !nonneg {
				return false
			}
			nonneg = l.Act == ActReLU || l.Act == ActSigmoid
		}
	}
	return true
}

// runsFloat32 reports whether layer i of the stage stays float32 on the int8
// path: a dense output layer (a decoder's last, into the sigmoid that makes
// the pixels, or a classifier's last, into the softmax).
func (s *Stage) runsFloat32(i int) bool {
	return i == len(s.Layers)-1 && s.Half != Encoder && s.Layers[i].fc != nil
}

// Precision is the precision the model's runners compute at.
func (m *Model) Precision() string {
	if m.q8 != nil {
		return PrecisionInt8
	}
	return PrecisionFloat32
}

// UseInt8 switches the model to int8 inference: it quantises the loaded
// stages' weights, and runners made from then on run int8. The weights'
// fingerprint is unchanged (they are the same weights).
func (m *Model) UseInt8() error {
	if !m.Arch.Int8Inference() {
		return fmt.Errorf("model %s: architecture %s has no int8 path", m.Name, m.Arch.Name)
	}
	q := map[string]*q8Layer{}
	for _, s := range m.Arch.stages {
		if !m.loaded[s.Half] {
			continue
		}
		for i, l := range s.Layers {
			w, b := m.params[l.Name+".weight"], m.params[l.Name+".bias"]
			if w == nil || b == nil {
				return fmt.Errorf("model %s: parameter %s not loaded", m.Name, l.Name)
			}
			q[l.Name] = newQ8Layer(l, w.Data().([]float32), b.Data().([]float32), s.runsFloat32(i))
		}
	}
	m.q8 = q
	return nil
}

// q8Layer is one layer's weights as the int8 path runs them, shared by the
// model's runners (read only).
type q8Layer struct {
	l     Layer
	b     []float32
	float bool // a dense output layer: runs float32 (Stage.runsFloat32)

	// float32 layer: the weights transposed, [In, Out].
	w32 []float32

	// int8: per output channel weight scales.
	sw []float32

	// convolution: cp = Cin rounded up to 4, one panel and one offset list
	// per output phase (1, or 4 for a transposed convolution).
	cp     int
	pg     padGeom
	panels [][]int8
	boffs  [][]int32

	// dense: weights [In/4][Out][4], offsets kb·4·Out.
	wq   []int8
	boff []int32
}

func round4(n int) int { return (n + 3) &^ 3 }

// quantScale is the symmetric scale of ws: max |w| / 127 (0 for all zeros).
func quantScale(ws []float32) float32 {
	var m float32
	for _, v := range ws {
		m = max(m, float32(math.Abs(float64(v))))
	}
	return m / 127
}

// quant8 is w/s rounded to the nearest of −127…127.
func quant8(v, s float32) int8 {
	if s == 0 {
		return 0
	}
	return int8(max(-127, min(127, math.Round(float64(v/s)))))
}

func newQ8Layer(l Layer, w, b []float32, final bool) *q8Layer {
	q := &q8Layer{l: l, b: b, float: final}
	switch {
	case final && l.fc != nil:
		q.w32 = make([]float32, len(w))
		transpose(w, q.w32, l.fc.Out, l.fc.In)
	case l.fc != nil:
		d := *l.fc
		nkb := round4(d.In) / 4
		q.sw = make([]float32, d.Out)
		q.wq = make([]int8, nkb*d.Out*4)
		q.boff = make([]int32, nkb)
		for kb := range q.boff {
			q.boff[kb] = int32(kb * d.Out * 4)
		}
		for o := 0; o < d.Out; o++ {
			row := w[o*d.In:][:d.In]
			q.sw[o] = quantScale(row)
			for i, v := range row {
				q.wq[(i/4*d.Out+o)*4+i%4] = quant8(v, q.sw[o])
			}
		}
	default:
		c := *l.conv
		q.cp, q.pg = round4(c.Cin), c.padGeom()
		// Per output channel scales over its Cin×3×3 weights.
		q.sw = make([]float32, c.Cout)
		at := func(co, ci, tap int) float32 {
			if c.kind == kindConv {
				return w[(co*c.Cin+ci)*9+tap]
			}
			return w[(ci*c.Cout+co)*9+tap]
		}
		for co := range q.sw {
			var m float32
			for ci := 0; ci < c.Cin; ci++ {
				for tap := 0; tap < 9; tap++ {
					m = max(m, float32(math.Abs(float64(at(co, ci, tap)))))
				}
			}
			q.sw[co] = m / 127
		}
		for _, taps := range c.phases() {
			nkb := len(taps) * q.cp / 4
			panel := make([]int8, vec.PanelLen(c.Cout, nkb))
			boff := make([]int32, nkb)
			for ti, t := range taps {
				off := t[1]*q.pg.pw + t[2]
				for g := 0; g < q.cp/4; g++ {
					boff[ti*q.cp/4+g] = int32((g*q.pg.chStride + off) * 4)
				}
				for co := 0; co < c.Cout; co++ {
					for ci := 0; ci < c.Cin; ci++ {
						panel[vec.PanelIndex(co, ti*q.cp+ci, nkb)] = quant8(at(co, ci, t[0]), q.sw[co])
					}
				}
			}
			q.panels, q.boffs = append(q.panels, panel), append(q.boffs, boff)
		}
	}
	return q
}

// actScale is the per-image activation scale: max(x)/255, or 0 when no
// value is above 0 or the largest is infinite (everything quantises to 0).
func actScale(x []float32) float32 {
	m := vec.MaxPositive(x)
	if m == 0 || math.IsInf(float64(m), 1) {
		return 0
	}
	return m / 255
}
