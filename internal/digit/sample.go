package digit

import "image"

// sampled is an image reduced to the grid the rest of the package works on:
// its luminance (alpha composited over black) and its opacity, both
// row-major in [0,1], and whether any pixel was less than opaque.
type sampled struct {
	lum, alpha  []float32
	w, h        int
	transparent bool
}

// ink is what the digit is read from: the opacity if any pixel is less than
// opaque (alphaInk), the luminance otherwise.
func (s *sampled) ink() (g []float32, alphaInk bool) {
	if s.transparent {
		return s.alpha, true
	}
	return s.lum, false
}

// sample reads img over canvas (pixels of canvas outside img's bounds are
// transparent black) into a grid of at most maxSide on its longer side
// (0: no bound), averaging k×k blocks for the smallest integer k that fits:
// a box filter, so every source pixel counts, and the only pass over the
// full-size image. With k = 1 each value is exactly the pixel's.
func sample(img image.Image, canvas image.Rectangle, maxSide int) *sampled {
	cw, ch := canvas.Dx(), canvas.Dy()
	k := 1
	if long := max(cw, ch); maxSide > 0 && long > maxSide {
		k = (long + maxSide - 1) / maxSide
	}
	w, h := (cw+k-1)/k, (ch+k-1)/k
	s := &sampled{lum: make([]float32, w*h), alpha: make([]float32, w*h), w: w, h: h}
	if w == 0 || h == 0 {
		return s
	}
	read := rowReader(img)
	src := img.Bounds().Intersect(canvas)
	if src != canvas {
		s.transparent = true // the part of the canvas the image leaves uncovered
	}
	lumRow, alphaRow := make([]float32, cw), make([]float32, cw)
	var accL, accA []float64
	if k > 1 {
		accL, accA = make([]float64, w), make([]float64, w)
	}
	for oy := range h {
		y0, y1 := canvas.Min.Y+oy*k, min(canvas.Min.Y+(oy+1)*k, canvas.Max.Y)
		clear(accL)
		clear(accA)
		for y := y0; y < y1; y++ {
			clear(lumRow)
			clear(alphaRow)
			if y >= src.Min.Y && y < src.Max.Y && !src.Empty() {
				i0, i1 := src.Min.X-canvas.Min.X, src.Max.X-canvas.Min.X
				if read(y, src.Min.X, lumRow[i0:i1], alphaRow[i0:i1]) {
					s.transparent = true
				}
			}
			if k == 1 {
				copy(s.lum[oy*w:], lumRow)
				copy(s.alpha[oy*w:], alphaRow)
				continue
			}
			for x, v := range lumRow {
				accL[x/k] += float64(v)
				accA[x/k] += float64(alphaRow[x])
			}
		}
		if k == 1 {
			continue
		}
		rows := y1 - y0
		for ox := range w {
			n := float64(rows * (min((ox+1)*k, cw) - ox*k))
			s.lum[oy*w+ox] = float32(accL[ox] / n)
			s.alpha[oy*w+ox] = float32(accA[ox] / n)
		}
	}
	return s
}

// lum is color.Gray16Model's formula on premultiplied 16-bit channels, so that
// transparent pixels count as black and the weights are BT.601's.
func lum(r, g, b, _ uint32) float32 {
	return float32((19595*r+38470*g+7471*b+1<<15)>>16) / 0xffff
}

// rowReader returns a function that reads len(l) pixels of row y from x0
// into luminance l and opacity a, and reports whether any is less than
// opaque. The concrete cases avoid the per-pixel allocation of
// image.Image.At on multi-megapixel inputs; each gives the generic path's
// value, except *image.YCbCr, whose luma is taken as it is (JFIF's Y is
// BT.601 luma; the generic path would round it through clipped 8-bit RGB).
func rowReader(img image.Image) func(y, x0 int, l, a []float32) bool {
	opaque := func(a []float32) {
		for i := range a {
			a[i] = 1
		}
	}
	rgba := func(l, a []float32, i int, r, g, b, al uint32) bool {
		l[i] = lum(r, g, b, al)
		a[i] = float32(al) / 0xffff
		return al < 0xffff
	}
	switch m := img.(type) {
	case *image.Gray:
		return func(y, x0 int, l, a []float32) bool {
			for i, v := range m.Pix[m.PixOffset(x0, y):][:len(l)] {
				// Equal to lum(v*0x101, …) since 257/65535 == 1/255, and exact k/255.
				l[i] = float32(v) / 255
			}
			opaque(a)
			return false
		}
	case *image.Gray16:
		return func(y, x0 int, l, a []float32) bool {
			for i := range l {
				l[i] = float32(m.Gray16At(x0+i, y).Y) / 0xffff
			}
			opaque(a)
			return false
		}
	case *image.YCbCr:
		return func(y, x0 int, l, a []float32) bool {
			for i, v := range m.Y[m.YOffset(x0, y):][:len(l)] {
				l[i] = float32(v) / 255
			}
			opaque(a)
			return false
		}
	case *image.CMYK:
		return func(y, x0 int, l, a []float32) bool {
			for i := range l {
				l[i] = lum(m.CMYKAt(x0+i, y).RGBA())
			}
			opaque(a)
			return false
		}
	case *image.RGBA:
		return func(y, x0 int, l, a []float32) (t bool) {
			for i := range l {
				r, g, b, al := m.RGBAAt(x0+i, y).RGBA()
				t = rgba(l, a, i, r, g, b, al) || t
			}
			return t
		}
	case *image.NRGBA:
		return func(y, x0 int, l, a []float32) (t bool) {
			for i := range l {
				r, g, b, al := m.NRGBAAt(x0+i, y).RGBA()
				t = rgba(l, a, i, r, g, b, al) || t
			}
			return t
		}
	case *image.RGBA64:
		return func(y, x0 int, l, a []float32) (t bool) {
			for i := range l {
				r, g, b, al := m.RGBA64At(x0+i, y).RGBA()
				t = rgba(l, a, i, r, g, b, al) || t
			}
			return t
		}
	case *image.NRGBA64:
		return func(y, x0 int, l, a []float32) (t bool) {
			for i := range l {
				r, g, b, al := m.NRGBA64At(x0+i, y).RGBA()
				t = rgba(l, a, i, r, g, b, al) || t
			}
			return t
		}
	case *image.Paletted:
		// image/png pads short palettes with opaque black; images built
		// elsewhere may not, and an index past the palette counts as
		// opaque black.
		var pl, pa [256]float32
		var pt [256]bool
		for j := range pa {
			pa[j] = 1
		}
		for j, c := range m.Palette {
			if c != nil && j < 256 {
				r, g, b, al := c.RGBA()
				pl[j], pa[j], pt[j] = lum(r, g, b, al), float32(al)/0xffff, al < 0xffff
			}
		}
		return func(y, x0 int, l, a []float32) (t bool) {
			for i, ci := range m.Pix[m.PixOffset(x0, y):][:len(l)] {
				l[i], a[i] = pl[ci], pa[ci]
				t = t || pt[ci]
			}
			return t
		}
	}
	return func(y, x0 int, l, a []float32) (t bool) {
		for i := range l {
			r, g, b, al := img.At(x0+i, y).RGBA()
			t = rgba(l, a, i, r, g, b, al) || t
		}
		return t
	}
}

// grey converts img to row-major luminance in [0,1], alpha over black,
// at full size.
func grey(img image.Image) (g []float32, w, h int) {
	s := sample(img, img.Bounds(), 0)
	return s.lum, s.w, s.h
}

// orient applies an EXIF orientation (1–8) to the grid, so that it is as a
// viewer displays it. Each display pixel (X, Y) takes stored pixel (x, y):
//
//	1 (x, y) = (X, Y)            5 transpose   (x, y) = (Y, X)
//	2 mirror  (x, y) = (w-1-X, Y)  6 rotate 90° clockwise  (x, y) = (Y, h-1-X)
//	3 rotate 180° (w-1-X, h-1-Y)   7 transverse  (x, y) = (w-1-Y, h-1-X)
//	4 flip   (x, y) = (X, h-1-Y)   8 rotate 90° counter-clockwise (x, y) = (w-1-Y, X)
//
// where w×h is the stored size; 5 to 8 swap width and height.
func (s *sampled) orient(o int) {
	if o < 2 || o > 8 {
		return
	}
	s.lum, _, _ = orientPlane(s.lum, s.w, s.h, o)
	s.alpha, s.w, s.h = orientPlane(s.alpha, s.w, s.h, o)
}

func orientPlane(p []float32, w, h, o int) (out []float32, ow, oh int) {
	ow, oh = w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out = make([]float32, len(p))
	for Y := range oh {
		for X := range ow {
			var x, y int
			switch o {
			case 2:
				x, y = w-1-X, Y
			case 3:
				x, y = w-1-X, h-1-Y
			case 4:
				x, y = X, h-1-Y
			case 5:
				x, y = Y, X
			case 6:
				x, y = Y, h-1-X
			case 7:
				x, y = w-1-Y, h-1-X
			case 8:
				x, y = w-1-Y, X
			}
			out[Y*ow+X] = p[y*w+x]
		}
	}
	return out, ow, oh
}
