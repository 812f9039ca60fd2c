package vec

import "golang.org/x/sys/cpu"

// hasVNNI: the int8 kernels need AVX-512 F (512-bit registers, masks), BW
// (byte masks are not used, but every VNNI CPU has it) and VNNI, and BMI2
// (BZHI builds the tail masks).
var (
	hasVNNI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI && cpu.X86.HasBMI2
	useVNNI = hasVNNI
)

//go:noescape
func gemmU8S8VNNI(c *int32, ldc int, a *uint8, b *int8, boff *int32, nkb, m, n int)

//go:noescape
func maxPosVNNI(x *float32, n int) float32

//go:noescape
func quantU8x4VNNI(dst *uint8, src *float32, stride, n int, inv float32)

//go:noescape
func gemmS8U8F32VNNI(c *float32, ldc int, a *int8, b *uint8, boff *int32, nkb, m, n int, scale *float32)
