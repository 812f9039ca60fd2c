package model

// FLOPs counts multiply-adds as two operations, for the layers as they run
// here (transposed convolutions as GEMM + col2im, not as convolutions over
// zero-stuffed inputs), per item of half h.
func FLOPs(h Half) int {
	var f int
	for _, s := range stored(h) {
		for _, lp := range convLayers[s] {
			l := lp.l
			if l.kind == kindConvT {
				f += 2 * l.Cin * l.Cout * l.K * l.K * l.H * l.W
			} else {
				f += 2 * l.Cin * l.Cout * l.K * l.K * l.OH * l.OW
			}
		}
	}
	return f
}
