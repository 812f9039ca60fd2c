package plot

import (
	"bytes"
	"image/color"
	"math"
	"math/rand"
	"strings"
	"testing"
)

func TestScatter(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	clusters := func(n int) (x, y []float64, l []uint8) {
		for i := range n {
			d := uint8(i % 10)
			a := float64(d) * 2 * math.Pi / 10
			x = append(x, 5*math.Cos(a)+rng.NormFloat64())
			y = append(y, 3*math.Sin(a)+rng.NormFloat64())
			l = append(l, d)
		}
		return
	}
	x, y, l := clusters(2000)
	nan := math.NaN()
	tests := []struct {
		name    string
		x, y    []float64
		labels  []uint8
		want    []uint8 // labels whose colour must appear
		wantErr string
	}{
		{name: "ten clusters", x: x, y: y, labels: l, want: []uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{name: "one point", x: []float64{3}, y: []float64{-2}, labels: []uint8{7}, want: []uint8{7}},
		{name: "all at one place", x: []float64{0, 0, 0}, y: []float64{0, 0, 0}, labels: []uint8{1, 2, 3}, want: []uint8{3}},
		{name: "a line", x: []float64{1, 2, 3}, y: []float64{5, 5, 5}, labels: []uint8{4, 5, 6}, want: []uint8{4, 5, 6}},
		{name: "tiny spread", x: []float64{1e-9, 2e-9}, y: []float64{-1e-9, 3e-9}, labels: []uint8{0, 9}, want: []uint8{0, 9}},
		{name: "huge spread", x: []float64{-3e7, 2e7}, y: []float64{1e8, 3e8}, labels: []uint8{2, 8}, want: []uint8{2, 8}},
		{name: "non-finite left out", x: []float64{nan, 1, math.Inf(1), 2}, y: []float64{0, 1, 1, nan}, labels: []uint8{3, 4, 5, 6}, want: []uint8{4}},
		{name: "nothing", wantErr: "no finite points"},
		{name: "all NaN", x: []float64{nan}, y: []float64{nan}, labels: []uint8{0}, wantErr: "no finite points"},
		{name: "lengths differ", x: []float64{1, 2}, y: []float64{1}, labels: []uint8{1, 2}, wantErr: "2 x, 1 y and 2 labels"},
		{name: "label 10", x: []float64{1}, y: []float64{1}, labels: []uint8{10}, wantErr: "not a digit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Scatter(&buf, tt.x, tt.y, tt.labels, "PC1", "PC2")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			saveForInspection(t, "scatter-"+tt.name+".png", buf.Bytes())
			img := decodePNG(t, buf.Bytes())
			if b := img.Bounds(); b.Dx() != scatterWidth || b.Dy() != scatterHeight {
				t.Fatalf("size %v, want %dx%d", b.Size(), scatterWidth, scatterHeight)
			}
			cs := []color.Color{color.Black}
			for _, c := range ClassColours {
				cs = append(cs, c)
			}
			n := countColours(img, cs...)
			if n[0] < 1000 {
				t.Errorf("only %d black pixels: axes or labels missing", n[0])
			}
			want := map[uint8]bool{}
			for _, d := range tt.want {
				want[d] = true
				if n[1+d] == 0 {
					t.Errorf("no pixel of digit %d's colour", d)
				}
			}
			// Absent labels get neither points nor a legend entry.
			for d := range uint8(Classes) {
				if n[1+d] > 0 && !want[d] && !contains(tt.labels, d) {
					t.Errorf("%d pixels of absent digit %d's colour", n[1+d], d)
				}
			}
		})
	}
}

// The points land where their coordinates say: the lowest-left point near
// the plot's bottom-left corner, the highest-right near its top-right.
func TestScatterPlacesPoints(t *testing.T) {
	var buf bytes.Buffer
	if err := Scatter(&buf, []float64{0, 10}, []float64{0, 10}, []uint8{1, 2}, "PC1", "PC2"); err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, buf.Bytes())
	where := func(c color.Color) (x, y int) {
		b := img.Bounds()
		for yy := scatterTop; yy <= scatterBottom; yy++ {
			for xx := scatterLeft; xx <= scatterRight; xx++ {
				if colorEq(img.At(xx, yy), c) {
					return xx, yy
				}
			}
		}
		t.Fatalf("colour %v not found in the plot area %v", c, b)
		return
	}
	x1, y1 := where(ClassColours[1])
	x2, y2 := where(ClassColours[2])
	if !(x1 < x2 && y1 > y2) {
		t.Errorf("point (0,0) at (%d,%d), point (10,10) at (%d,%d)", x1, y1, x2, y2)
	}
	if x1-scatterLeft > 60 || scatterBottom-y1 > 60 || scatterRight-x2 > 60 || y2-scatterTop > 60 {
		t.Errorf("points at (%d,%d) and (%d,%d) are far from the corners", x1, y1, x2, y2)
	}
}

func contains(s []uint8, v uint8) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
