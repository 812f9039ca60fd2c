package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/evaluate"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/plot"
	"github.com/aeserve/aeserve/internal/quality"
)

// transmissionModels are the models whose latents the transmission section
// measures, each in every dtype it offers: the compact model made for it,
// and conv's for scale.
var transmissionModels = []string{"compact", "conv"}

// transmission is the transmission section's figures: every way of sending
// a test digit, and the grid of compact's originals and int8 decodings.
type transmission struct {
	rates []evaluate.Rate
	int8  *evaluate.Rate // compact at int8, the anchor JPEG is matched to
	grid  [][]float32
}

// evaluateTransmission sends every test digit alone, as a one-image
// latent (an int8 latent has its own scale), and decodes it.
func evaluateTransmission(cfg config, res *results, all []*model.Model) (*transmission, error) {
	t0 := time.Now()
	test := res.test
	n := test.N
	tr := &transmission{}
	for _, name := range transmissionModels {
		var m *model.Model
		for _, c := range all {
			if c.Name == name {
				m = c
			}
		}
		if m == nil {
			continue
		}
		enc, err := m.NewRunner(model.Encoder)
		if err != nil {
			return nil, err
		}
		codes, err := enc.Run(test.Images, n)
		enc.Close()
		if err != nil {
			return nil, err
		}
		dec, err := m.NewRunner(model.Decoder)
		if err != nil {
			return nil, err
		}
		latent := m.Arch.LatentShape()
		per := prod(latent)
		shape := append([]int{1}, latent...)
		for _, dt := range m.Arch.Quantizations() {
			sent := make([]float32, len(codes))
			for i := range n {
				l := &api.Latent{Fingerprint: m.Fingerprint.String(), Shape: shape, DType: api.DTypeFloat32, Data: codes[i*per : (i+1)*per]}
				q, err := l.Quantize(dt)
				if err != nil {
					dec.Close()
					return nil, fmt.Errorf("%s: digit %d at %s: %w", name, i, dt, err)
				}
				copy(sent[i*per:], q.Values())
			}
			r, out, err := decodedRate(dec, fmt.Sprintf("%s latent, %s", name, dt), sent, test.Images, n, api.BinarySize(shape, dt))
			if err != nil {
				dec.Close()
				return nil, err
			}
			tr.rates = append(tr.rates, r)
			if name == "compact" && dt == api.DTypeInt8 {
				tr.int8 = &tr.rates[len(tr.rates)-1]
				g := min(gridDigits, n)
				tr.grid = [][]float32{test.Images[:g*model.ImageLen], out[:g*model.ImageLen]}
			}
		}
		if name == "compact" {
			// Fewer bits a number, measured but not served: 4 bits, with a
			// binary16 scale, in the int8 latent's header.
			int4Bytes := api.BinarySize(shape, api.DTypeInt8) - per + (per+1)/2
			r, _, err := decodedRate(dec, "compact latent, int4 (measured, not served)", evaluate.QuantizeInt4(codes, n, per), test.Images, n, int4Bytes)
			if err != nil {
				dec.Close()
				return nil, err
			}
			tr.rates = append(tr.rates, r)
		}
		dec.Close()
	}
	p, err := evaluate.PNGRate(test.Images, n)
	if err != nil {
		return nil, err
	}
	tr.rates = append(tr.rates, p)
	if tr.int8 != nil {
		j, err := evaluate.JPEGMatching(test.Images, n, tr.int8.PSNR)
		if err != nil {
			return nil, err
		}
		j.Method += ", matching compact int8's PSNR"
		tr.rates = append(tr.rates, j)
		// tr.int8 points into rates, which the appends may have moved.
		for i := range tr.rates {
			if tr.rates[i].Method == "compact latent, int8" {
				tr.int8 = &tr.rates[i]
			}
		}
	}
	for _, q := range []int{10, 25, 50, 75, 90} {
		j, err := evaluate.JPEGRate(test.Images, n, q)
		if err != nil {
			return nil, err
		}
		tr.rates = append(tr.rates, j)
	}
	cfg.logf("transmission: %d ways of sending a digit (%s)", len(tr.rates), time.Since(t0).Round(time.Millisecond))
	return tr, nil
}

// decodedRate decodes the codes as sent and measures them against the
// digits.
func decodedRate(dec *model.Runner, method string, sent, images []float32, n, bytes int) (evaluate.Rate, []float32, error) {
	out, err := dec.Run(sent, n)
	if err != nil {
		return evaluate.Rate{}, nil, err
	}
	return evaluate.Rate{
		Method: method,
		Bytes:  float64(bytes),
		PSNR:   quality.PSNR(quality.MSE(out, images[:n*model.ImageLen])),
		SSIM:   evaluate.MeanSSIM(out, images[:n*model.ImageLen], n),
	}, out, nil
}

// plotMaxBytes bounds the rate–distortion plot's x axis, so that conv's
// kilobytes do not squeeze the tens of bytes this is about.
const plotMaxBytes = 1000

// rateGroup is a method's colour in the rate–distortion plot.
func rateGroup(method string) uint8 {
	switch {
	case strings.HasPrefix(method, "compact"):
		return 0
	case strings.HasPrefix(method, "conv"):
		return 1
	case strings.HasPrefix(method, "JPEG"):
		return 2
	}
	return 3
}

func (r *reportWriter) transmission() error {
	tr := r.res.trans
	r.printf("%s\n\n", sections[secTransmission])
	if tr == nil || len(tr.rates) == 0 {
		r.printf("Neither `compact` nor `conv` was among the models evaluated.\n\n")
		return nil
	}
	r.printf("Each test digit sent alone, as a sender would: as a one-image binary latent in each dtype the model offers (`/v1/encode?quant=`; an int8 latent carries its own binary16 scale), decoded by the model's decoder; as a PNG; and as JPEGs from Go's `image/jpeg` (baseline, standard Huffman tables; an encoder with optimised tables, such as libjpeg's, makes smaller files), one of them at the lowest quality whose PSNR reaches compact's at int8. Bytes are the mean per digit, everything the receiver needs included (the latent's header and scale; the whole JPEG or PNG file). The int4 row rounds compact's code to 4 bits a number with one scale, a measurement of fewer bits, not a format the server speaks.\n\n")
	r.printf("| how | bytes per digit | PSNR dB | SSIM |\n| --- | ---: | ---: | ---: |\n")
	for _, q := range tr.rates {
		psnr := fmt.Sprintf("%.2f", q.PSNR)
		if math.IsInf(q.PSNR, 1) {
			psnr = "lossless"
		}
		r.printf("| %s | %.1f | %s | %.4f |\n", q.Method, q.Bytes, psnr, q.SSIM)
	}
	r.printf("\n")
	var x, y []float64
	var labels []uint8
	var off []string
	for _, q := range tr.rates {
		switch {
		case math.IsInf(q.PSNR, 1):
			continue
		case q.Bytes > plotMaxBytes:
			off = append(off, fmt.Sprintf("%s, %.0f bytes", q.Method, q.Bytes))
			continue
		}
		x, y, labels = append(x, q.Bytes), append(y, q.PSNR), append(labels, rateGroup(q.Method))
	}
	link, err := r.png("transmission-rate-distortion.png", func(w io.Writer) error {
		return plot.Scatter(w, x, y, labels, "BYTES", "PSNR DB")
	})
	if err != nil {
		return err
	}
	r.printf("Rate against distortion (x: bytes per digit, y: PSNR in dB; legend 0: compact, 1: conv, 2: JPEG)")
	if len(off) > 0 {
		r.printf(", up to %d bytes (off the plot: %s)", plotMaxBytes, strings.Join(off, "; "))
	}
	r.printf(":\n\n![rate and distortion](%s)\n\n", link)
	if tr.grid != nil {
		link, err := r.png("transmission-compact-int8.png", func(w io.Writer) error { return plot.SampleGrid(w, tr.grid) })
		if err != nil {
			return err
		}
		r.printf("The first %d test digits (top) and what a receiver decodes from compact's int8 latents of %d bytes each (bottom):\n\n![compact int8](%s)\n\n",
			len(tr.grid[0])/model.ImageLen, int(tr.int8.Bytes), link)
	}
	return nil
}
