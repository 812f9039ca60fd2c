//go:build !amd64

package vec

const hasVNNI = false

var useVNNI = false

func gemmU8S8VNNI(c *int32, ldc int, a *uint8, b *int8, boff *int32, nkb, m, n int) {
	panic("unreachable")
}

func maxPosVNNI(x *float32, n int) float32                               { panic("unreachable") }
func quantU8x4VNNI(dst *uint8, src *float32, stride, n int, inv float32) { panic("unreachable") }

func gemmS8U8F32VNNI(c *float32, ldc int, a *int8, b *uint8, boff *int32, nkb, m, n int, scale *float32) {
	panic("unreachable")
}
