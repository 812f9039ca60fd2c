package vec

import (
	"fmt"
	"math"
	"testing"
)

// Transpose against its definition on every path, for row counts around
// the 8-row strips and column counts around the 8-column blocks and their
// masked tails, with gaps in both layouts; nothing outside the transposed
// elements may change, and the source must end exactly at its last element
// read (the kernel's masked loads must not reach past it).
func TestTranspose(t *testing.T) {
	for _, p := range Supported() {
		t.Run(string(p), func(t *testing.T) {
			usePath(t, p)
			r := newRand()
			for _, step := range []int{1, 2} {
				for rows := 1; rows <= 25; rows++ {
					for cols := 1; cols <= 19; cols++ {
						srcStride := step*cols + r.IntN(4)
						dstStride := rows + r.IntN(4)
						src := randSlice(r, (rows-1)*srcStride+(cols-1)*step+1)
						dst := withGuard(cols * dstStride)
						Transpose(dst, dstStride, src, srcStride, rows, cols, step)
						name := fmt.Sprintf("step=%d rows=%d cols=%d", step, rows, cols)
						for j := 0; j < cols; j++ {
							for i := 0; i < dstStride; i++ {
								got := dst[j*dstStride+i]
								if i >= rows {
									if got != guard {
										t.Fatalf("%s: wrote [%d] outside the transposed block", name, j*dstStride+i)
									}
									continue
								}
								if want := src[i*srcStride+j*step]; math.Float32bits(got) != math.Float32bits(want) {
									t.Fatalf("%s: dst[%d·%d+%d] = %v, want src[%d·%d+%d·%d] = %v", name, j, dstStride, i, got, i, srcStride, j, step, want)
								}
							}
						}
						for i := cols * dstStride; i < len(dst); i++ {
							if dst[i] != guard {
								t.Fatalf("%s: wrote past the end at %d", name, i)
							}
						}
					}
				}
			}
		})
	}
}

// CopyRowsStride2 against its definition on every path, around the 8-value
// steps and their masked tails, with the source ending at its last value
// read and guards after every destination row.
func TestCopyRowsStride2(t *testing.T) {
	for _, p := range Supported() {
		t.Run(string(p), func(t *testing.T) {
			usePath(t, p)
			r := newRand()
			for rows := 1; rows <= 4; rows++ {
				for n := 1; n <= 35; n++ {
					srcStride, dstStride := 2*n+r.IntN(3), n+1+r.IntN(3)
					src := randSlice(r, (rows-1)*srcStride+2*(n-1)+1)
					dst := withGuard(rows * dstStride)
					CopyRowsStride2(dst, src, rows, n, dstStride, srcStride)
					for i, got := range dst {
						row, q := i/dstStride, i%dstStride
						want := float32(guard)
						if row < rows && q < n {
							want = src[row*srcStride+2*q]
						}
						if math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("rows=%d n=%d: dst[%d] = %v, want %v", rows, n, i, got, want)
						}
					}
				}
			}
		})
	}
}

func TestTransposeChecksBounds(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		dst, src             int
		rows, cols, step     int
		srcStride, dstStride int
	}{
		{"source short", 64, 63, 8, 8, 1, 8, 8},
		{"destination short", 63, 64, 8, 8, 1, 8, 8},
		{"step 3", 64, 64, 2, 2, 3, 8, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			Transpose(make([]float32, tc.dst), tc.dstStride, make([]float32, tc.src), tc.srcStride, tc.rows, tc.cols, tc.step)
		})
	}
}

func BenchmarkTranspose(b *testing.B) {
	// One output-gradient row block of the conv model's last transposed
	// convolution: 32 channels of a 28×28 plane, one phase (every other
	// column), into a grid row of 16 positions × 32 channels.
	src := make([]float32, 32*28*28)
	dst := make([]float32, 16*32)
	for _, p := range Supported() {
		b.Run("path="+string(p), func(b *testing.B) {
			usePath(b, p)
			for b.Loop() {
				Transpose(dst, 32, src, 28*28, 32, 14, 2)
			}
		})
	}
}
