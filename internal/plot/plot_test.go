package plot

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// saveForInspection writes b to $PLOT_DIR, if set, because whether a plot is readable is
// something only a person looking at it can judge.
func saveForInspection(t *testing.T, name string, b []byte) {
	dir := os.Getenv("PLOT_DIR")
	if dir == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, strings.ReplaceAll(name, " ", "-")), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("output is not a PNG: %v", err)
	}
	return img
}

// countColours counts pixels of each of the given colours.
func countColours(img image.Image, cs ...color.Color) []int {
	n := make([]int, len(cs))
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			for i, c := range cs {
				cr, cg, cb, ca := c.RGBA()
				if r == cr && g == cg && bl == cb && a == ca {
					n[i]++
				}
			}
		}
	}
	return n
}

func TestLossCurve(t *testing.T) {
	decay := func(n int, scale float64) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = scale * (0.02 + 0.08*math.Exp(-float64(i)/5))
		}
		return s
	}
	nan := math.NaN()
	tests := []struct {
		name       string
		train, val []float64
		wantOrange bool
		wantErr    string
	}{
		{name: "typical", train: decay(20, 1), val: decay(20, 1.1), wantOrange: true},
		{name: "one epoch", train: []float64{0.07}, val: []float64{0.08}, wantOrange: true},
		{name: "train only", train: decay(5, 1)},
		{name: "val only", val: decay(5, 1), wantOrange: true},
		{name: "many epochs", train: decay(300, 1), val: decay(300, 1.2), wantOrange: true},
		{name: "flat", train: []float64{0.5, 0.5, 0.5}, val: []float64{0.5, 0.5, 0.5}, wantOrange: true},
		{name: "tiny losses", train: decay(10, 1e-6), val: decay(10, 1.3e-6), wantOrange: true},
		{name: "huge losses", train: decay(10, 1e8), wantOrange: false},
		{name: "non-finite gaps", train: []float64{0.1, nan, 0.08, math.Inf(1), 0.05}, val: []float64{nan, 0.09}, wantOrange: true},
		{name: "different lengths", train: decay(10, 1), val: decay(4, 1), wantOrange: true},
		{name: "nothing", wantErr: "no finite values"},
		{name: "all NaN", train: []float64{nan, nan}, wantErr: "no finite values"},
	}
	blue, orange := curvePalette[cBlue], curvePalette[cOrange]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := LossCurve(&buf, tt.train, tt.val)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			saveForInspection(t, "loss-"+tt.name+".png", buf.Bytes())
			img := decodePNG(t, buf.Bytes())
			if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 400 {
				t.Fatalf("size %v, want 640×400", b.Size())
			}
			if r, g, b, _ := img.At(0, 0).RGBA(); r != 0xffff || g != 0xffff || b != 0xffff {
				t.Error("background is not white")
			}
			n := countColours(img, blue, orange, color.Black)
			if wantBlue := len(tt.train) > 0; (n[0] > 0) != wantBlue {
				t.Errorf("%d blue pixels, want some: %v", n[0], wantBlue)
			}
			if (n[1] > 0) != tt.wantOrange {
				t.Errorf("%d orange pixels, want some: %v", n[1], tt.wantOrange)
			}
			if n[2] < 1000 { // axes, ticks and labels
				t.Errorf("only %d black pixels: axes or labels missing", n[2])
			}
		})
	}
}

// TestLossCurveLines checks where a falling curve goes: from high on the left down to the x axis
// (loss 0) on the right, monotonically.
func TestLossCurveLines(t *testing.T) {
	var buf bytes.Buffer
	if err := LossCurve(&buf, []float64{1, 0}, nil); err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, buf.Bytes())
	blue := curvePalette[cBlue]
	// Mean y of the blue pixels in column x, ignoring the legend in the top-right corner.
	lineY := func(x int) float64 {
		var sum, n int
		for y := plotTop; y <= plotBottom+2; y++ {
			inLegend := x > plotRight-150 && y < plotTop+60
			if !inLegend && colorEq(img.At(x, y), blue) {
				sum, n = sum+y, n+1
			}
		}
		if n == 0 {
			t.Fatalf("no line in column %d", x)
		}
		return float64(sum) / float64(n)
	}
	prev := math.Inf(-1)
	for x := plotLeft + 4; x <= plotRight-4; x += 8 {
		y := lineY(x)
		if y < prev {
			t.Fatalf("line rises at x=%d (y %.1f after %.1f) for a falling loss", x, y, prev)
		}
		prev = y
	}
	if y := lineY(plotLeft + 4); y > (plotTop+plotBottom)/2 {
		t.Errorf("loss 1 drawn at y=%.1f, below the middle of the plot", y)
	}
	if y := lineY(plotRight - 1); math.Abs(y-plotBottom) > 3 {
		t.Errorf("loss 0 drawn at y=%.1f, want the x axis at %d", y, plotBottom)
	}
}

func colorEq(a, b color.Color) bool {
	r1, g1, b1, a1 := a.RGBA()
	r2, g2, b2, a2 := b.RGBA()
	return r1 == r2 && g1 == g2 && b1 == b2 && a1 == a2
}

func TestSampleGrid(t *testing.T) {
	tile := func(f func(i int) float32) []float32 {
		p := make([]float32, imageLen)
		for i := range p {
			p[i] = f(i)
		}
		return p
	}
	ramp := tile(func(i int) float32 { return float32(i%256) / 255 })
	black := tile(func(int) float32 { return 0 })
	row := func(tiles ...[]float32) []float32 {
		var r []float32
		for _, t := range tiles {
			r = append(r, t...)
		}
		return r
	}

	tests := []struct {
		name    string
		rows    [][]float32
		w, h    int
		known   [2]int // row, column of the ramp tile
		wantErr string
	}{
		{name: "1×1", rows: [][]float32{ramp}, w: 56, h: 56},
		{name: "3 rows of 4", rows: [][]float32{
			row(black, black, black, black),
			row(black, black, ramp, black),
			row(black, black, black, black),
		}, w: 4*58 - 2, h: 3*58 - 2, known: [2]int{1, 2}},
		{name: "2 rows of 8", rows: [][]float32{
			row(black, black, black, black, black, black, black, ramp),
			row(black, black, black, black, black, black, black, black),
		}, w: 8*58 - 2, h: 2*58 - 2, known: [2]int{0, 7}},
		{name: "no rows", wantErr: "no rows"},
		{name: "empty row", rows: [][]float32{ramp, nil}, wantErr: "row 1 has 0 values"},
		{name: "partial image", rows: [][]float32{ramp[:700]}, wantErr: "row 0 has 700 values"},
		{name: "ragged", rows: [][]float32{row(ramp, ramp), ramp}, wantErr: "row 1 has 1 images, row 0 has 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := SampleGrid(&buf, tt.rows)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			saveForInspection(t, "grid-"+tt.name+".png", buf.Bytes())
			img := decodePNG(t, buf.Bytes())
			g, ok := img.(*image.Gray)
			if !ok {
				t.Fatalf("decoded as %T, want 8-bit grey", img)
			}
			if b := g.Bounds(); b.Dx() != tt.w || b.Dy() != tt.h {
				t.Fatalf("size %v, want %dx%d", b.Size(), tt.w, tt.h)
			}
			x0, y0 := tt.known[1]*58, tt.known[0]*58
			for i := range imageLen {
				want := uint8(i % 256)
				x, y := x0+2*(i%28), y0+2*(i/28)
				for _, d := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
					if got := g.GrayAt(x+d[0], y+d[1]).Y; got != want {
						t.Fatalf("pixel %d of the known tile at (%d,%d) = %d, want %d", i, x+d[0], y+d[1], got, want)
					}
				}
			}
			var blackSeen bool
			for y := range tt.h {
				for x := range tt.w {
					v := g.GrayAt(x, y).Y
					inGap := x%58 >= 56 || y%58 >= 56
					if inGap && v != gapGrey {
						t.Fatalf("gap pixel (%d,%d) = %d, want %d", x, y, v, gapGrey)
					}
					blackSeen = blackSeen || (!inGap && v == 0 && (x/58 != tt.known[1] || y/58 != tt.known[0]))
				}
			}
			if len(tt.rows)*len(tt.rows[0]) > imageLen && !blackSeen {
				t.Error("the black tiles are not black")
			}
		})
	}
}

func TestSampleGridClamps(t *testing.T) {
	px := make([]float32, imageLen)
	copy(px, []float32{-0.5, 1.5, float32(math.NaN()), 0.5, float32(math.Inf(1))})
	var buf bytes.Buffer
	if err := SampleGrid(&buf, [][]float32{px}); err != nil {
		t.Fatal(err)
	}
	g := decodePNG(t, buf.Bytes()).(*image.Gray)
	for i, want := range []uint8{0, 255, 0, 128, 255} {
		if got := g.GrayAt(2*i, 0).Y; got != want {
			t.Errorf("pixel %d = %d, want %d", i, got, want)
		}
	}
}
