//go:build !amd64

package vec

const hasVNNI = false

var useVNNI = false

func gemmS8U8VNNI(c *int32, ldc int, a *int8, b *uint8, boff *int32, nkb, m, n int) {
	panic("unreachable")
}

func gemmU8S8VNNI(c *int32, ldc int, a *uint8, b *int8, boff *int32, nkb, m, n int) {
	panic("unreachable")
}
