#include "textflag.h"

// Int8 products with AVX-512 VNNI (see int8.go for the layouts). A tile is 4
// rows × 32 columns, its 8 sums in Z0–Z7 over the whole k loop: per k-block
// two 16-column loads of B (masked at the right edge, so a partial tile
// reads and writes nothing past column n), four broadcasts of A's rows'
// 4-byte groups, and eight VPDPBUSD (u8×s8, four products summed into each
// int32 lane, without saturation). The two functions differ in which operand
// is the unsigned one, and in what they store: float32 scaled per row for a
// convolution (A the weights), int32 for a dense layer (A the activations).
//
// Called with m a positive multiple of 4, n ≥ 1 and nkb ≥ 1 (int8.go checks).

// A signed (broadcast, VPDPBUSD's s8 operand), B unsigned (loaded, its u8
// operand), each row r of sums converted to float32 and multiplied by
// scale[r] before it is stored.
// func gemmS8U8F32VNNI(c *float32, ldc int, a *int8, b *uint8, boff *int32, nkb, m, n int, scale *float32)
TEXT ·gemmS8U8F32VNNI(SB), NOSPLIT, $0-72
	MOVQ c+0(FP), DI
	MOVQ ldc+8(FP), R9
	SHLQ $2, R9
	MOVQ a+16(FP), SI
	MOVQ b+24(FP), BX
	MOVQ boff+32(FP), R11
	MOVQ nkb+40(FP), R12
	MOVQ m+48(FP), R13
	MOVQ n+56(FP), R14

gemmS8U8F32VNNI_rows:
	XORQ CX, CX

gemmS8U8F32VNNI_cols:
	// Masks of the tile's two 16-column halves: rem = min(n−col, 32).
	MOVQ    R14, AX
	SUBQ    CX, AX
	MOVQ    $32, DX
	CMPQ    AX, DX
	CMOVQGT DX, AX
	MOVQ    $0xffff, DX
	BZHIQ   AX, DX, R8
	KMOVW   R8, K1
	SUBQ    $16, AX
	XORQ    R8, R8
	CMPQ    AX, R8
	CMOVQLT R8, AX
	BZHIQ   AX, DX, R8
	KMOVW   R8, K2

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7

	LEAQ (BX)(CX*4), R10 // column col of every k-block
	MOVQ SI, R8          // the row block's panel
	MOVQ R11, DX
	MOVQ R12, AX

gemmS8U8F32VNNI_k:
	MOVLQSX      (DX), R15
	ADDQ         R10, R15
	VMOVDQU32.Z  (R15), K1, Z16
	VMOVDQU32.Z  64(R15), K2, Z17
	VPBROADCASTD (R8), Z20
	VPBROADCASTD 4(R8), Z21
	VPBROADCASTD 8(R8), Z22
	VPBROADCASTD 12(R8), Z23
	VPDPBUSD Z20, Z16, Z0
	VPDPBUSD Z20, Z17, Z1
	VPDPBUSD Z21, Z16, Z2
	VPDPBUSD Z21, Z17, Z3
	VPDPBUSD Z22, Z16, Z4
	VPDPBUSD Z22, Z17, Z5
	VPDPBUSD Z23, Z16, Z6
	VPDPBUSD Z23, Z17, Z7
	ADDQ         $16, R8
	ADDQ         $4, DX
	DECQ         AX
	JNZ          gemmS8U8F32VNNI_k

	// The row block's scales: rows m − R13 … m − R13 + 3.
	MOVQ         scale+64(FP), AX
	MOVQ         m+48(FP), DX
	SUBQ         R13, DX
	LEAQ         (AX)(DX*4), AX
	VBROADCASTSS (AX), Z20
	VBROADCASTSS 4(AX), Z21
	VBROADCASTSS 8(AX), Z22
	VBROADCASTSS 12(AX), Z23
	VCVTDQ2PS    Z0, Z0
	VCVTDQ2PS    Z1, Z1
	VCVTDQ2PS    Z2, Z2
	VCVTDQ2PS    Z3, Z3
	VCVTDQ2PS    Z4, Z4
	VCVTDQ2PS    Z5, Z5
	VCVTDQ2PS    Z6, Z6
	VCVTDQ2PS    Z7, Z7
	VMULPS       Z20, Z0, Z0
	VMULPS       Z20, Z1, Z1
	VMULPS       Z21, Z2, Z2
	VMULPS       Z21, Z3, Z3
	VMULPS       Z22, Z4, Z4
	VMULPS       Z22, Z5, Z5
	VMULPS       Z23, Z6, Z6
	VMULPS       Z23, Z7, Z7
	LEAQ         (DI)(CX*4), R15
	VMOVUPS      Z0, K1, (R15)
	VMOVUPS      Z1, K2, 64(R15)
	ADDQ         R9, R15
	VMOVUPS      Z2, K1, (R15)
	VMOVUPS      Z3, K2, 64(R15)
	ADDQ         R9, R15
	VMOVUPS      Z4, K1, (R15)
	VMOVUPS      Z5, K2, 64(R15)
	ADDQ         R9, R15
	VMOVUPS      Z6, K1, (R15)
	VMOVUPS      Z7, K2, 64(R15)

	ADDQ $32, CX
	CMPQ CX, R14
	JLT  gemmS8U8F32VNNI_cols

	MOVQ R8, SI // the next row block's panel
	LEAQ (DI)(R9*4), DI
	SUBQ $4, R13
	JGT  gemmS8U8F32VNNI_rows
	VZEROUPPER
	RET

// A unsigned (broadcast), B signed (loaded).
// func gemmU8S8VNNI(c *int32, ldc int, a *uint8, b *int8, boff *int32, nkb, m, n int)
TEXT ·gemmU8S8VNNI(SB), NOSPLIT, $0-64
	MOVQ c+0(FP), DI
	MOVQ ldc+8(FP), R9
	SHLQ $2, R9
	MOVQ a+16(FP), SI
	MOVQ b+24(FP), BX
	MOVQ boff+32(FP), R11
	MOVQ nkb+40(FP), R12
	MOVQ m+48(FP), R13
	MOVQ n+56(FP), R14

gemmU8S8VNNI_rows:
	XORQ CX, CX

gemmU8S8VNNI_cols:
	// Masks of the tile's two 16-column halves: rem = min(n−col, 32).
	MOVQ    R14, AX
	SUBQ    CX, AX
	MOVQ    $32, DX
	CMPQ    AX, DX
	CMOVQGT DX, AX
	MOVQ    $0xffff, DX
	BZHIQ   AX, DX, R8
	KMOVW   R8, K1
	SUBQ    $16, AX
	XORQ    R8, R8
	CMPQ    AX, R8
	CMOVQLT R8, AX
	BZHIQ   AX, DX, R8
	KMOVW   R8, K2

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7

	LEAQ (BX)(CX*4), R10 // column col of every k-block
	MOVQ SI, R8          // the row block's panel
	MOVQ R11, DX
	MOVQ R12, AX

gemmU8S8VNNI_k:
	MOVLQSX      (DX), R15
	ADDQ         R10, R15
	VMOVDQU32.Z  (R15), K1, Z16
	VMOVDQU32.Z  64(R15), K2, Z17
	VPBROADCASTD (R8), Z20
	VPBROADCASTD 4(R8), Z21
	VPBROADCASTD 8(R8), Z22
	VPBROADCASTD 12(R8), Z23
	VPDPBUSD Z16, Z20, Z0
	VPDPBUSD Z17, Z20, Z1
	VPDPBUSD Z16, Z21, Z2
	VPDPBUSD Z17, Z21, Z3
	VPDPBUSD Z16, Z22, Z4
	VPDPBUSD Z17, Z22, Z5
	VPDPBUSD Z16, Z23, Z6
	VPDPBUSD Z17, Z23, Z7
	ADDQ         $16, R8
	ADDQ         $4, DX
	DECQ         AX
	JNZ          gemmU8S8VNNI_k

	LEAQ      (DI)(CX*4), R15
	VMOVDQU32 Z0, K1, (R15)
	VMOVDQU32 Z1, K2, 64(R15)
	ADDQ      R9, R15
	VMOVDQU32 Z2, K1, (R15)
	VMOVDQU32 Z3, K2, 64(R15)
	ADDQ      R9, R15
	VMOVDQU32 Z4, K1, (R15)
	VMOVDQU32 Z5, K2, 64(R15)
	ADDQ      R9, R15
	VMOVDQU32 Z6, K1, (R15)
	VMOVDQU32 Z7, K2, 64(R15)

	ADDQ $32, CX
	CMPQ CX, R14
	JLT  gemmU8S8VNNI_cols

	MOVQ R8, SI // the next row block's panel
	LEAQ (DI)(R9*4), DI
	SUBQ $4, R13
	JGT  gemmU8S8VNNI_rows
	VZEROUPPER
	RET

// TAILMASK sets K1 to the lanes of min(rem, 16) columns, rem = n − i
// (n in R14, i in CX); clobbers AX and DX.
#define TAILMASK \
	MOVQ    R14, AX \
	SUBQ    CX, AX \
	MOVQ    $16, DX \
	CMPQ    AX, DX \
	CMOVQGT DX, AX \
	MOVQ    $0xffff, DX \
	BZHIQ   AX, DX, DX \
	KMOVW   DX, K1

// func maxPosVNNI(x *float32, n int) float32
// The largest of 0 and x's values; NaN is never larger (VMAXPS keeps the
// second operand, the running maximum, when either is NaN).
TEXT ·maxPosVNNI(SB), NOSPLIT, $0-20
	MOVQ   x+0(FP), SI
	MOVQ   n+8(FP), R14
	VPXORD Z0, Z0, Z0
	XORQ   CX, CX
	CMPQ   CX, R14
	JGE    maxpos_reduce

maxpos_loop:
	TAILMASK
	VMOVUPS.Z (SI)(CX*4), K1, Z1
	VMAXPS    Z0, Z1, Z0
	ADDQ      $16, CX
	CMPQ      CX, R14
	JLT       maxpos_loop

maxpos_reduce:
	VEXTRACTF32X8 $1, Z0, Y1
	VMAXPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VPSHUFD       $0x4e, X0, X1
	VMAXPS        X1, X0, X0
	VPSHUFD       $0xb1, X0, X1
	VMAXPS        X1, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+16(FP)
	RET

// func quantU8x4VNNI(dst *uint8, src *float32, stride, n int, inv float32)
// dst[4j+c] = min(255, round-to-even(src[c·stride+j]·inv)), 0 for values
// below 0 and NaN, for j < n and the four rows c = 0…3: four channels of
// a row of pixels, interleaved as the int8 convolutions read them. VMINPS
// with 255 first keeps NaN (so that the conversion makes it negative, then
// 0) and keeps huge values from overflowing the conversion.
TEXT ·quantU8x4VNNI(SB), NOSPLIT, $0-36
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         stride+16(FP), R8
	SHLQ         $2, R8
	MOVQ         n+24(FP), R14
	VBROADCASTSS inv+32(FP), Z31
	MOVL         $0x437f0000, AX // 255.0
	VPBROADCASTD AX, Z30
	VPXORD       Z29, Z29, Z29
	LEAQ         (SI)(R8*2), R9  // rows 2 and 3 at (R9), (R9)(R8*1)
	XORQ         CX, CX

quant_loop:
	TAILMASK
	VMOVUPS.Z (SI)(CX*4), K1, Z0
	LEAQ      (SI)(R8*1), R10
	VMOVUPS.Z (R10)(CX*4), K1, Z1
	VMOVUPS.Z (R9)(CX*4), K1, Z2
	LEAQ      (R9)(R8*1), R10
	VMOVUPS.Z (R10)(CX*4), K1, Z3
	VMULPS    Z31, Z0, Z0
	VMULPS    Z31, Z1, Z1
	VMULPS    Z31, Z2, Z2
	VMULPS    Z31, Z3, Z3
	VMINPS    Z0, Z30, Z0
	VMINPS    Z1, Z30, Z1
	VMINPS    Z2, Z30, Z2
	VMINPS    Z3, Z30, Z3
	VCVTPS2DQ Z0, Z0
	VCVTPS2DQ Z1, Z1
	VCVTPS2DQ Z2, Z2
	VCVTPS2DQ Z3, Z3
	VPMAXSD   Z29, Z0, Z0
	VPMAXSD   Z29, Z1, Z1
	VPMAXSD   Z29, Z2, Z2
	VPMAXSD   Z29, Z3, Z3
	VPSLLD    $8, Z1, Z1
	VPSLLD    $16, Z2, Z2
	VPSLLD    $24, Z3, Z3
	VPORD     Z1, Z0, Z0
	VPORD     Z3, Z2, Z2
	VPORD     Z2, Z0, Z0
	VMOVDQU32 Z0, K1, (DI)(CX*4)
	ADDQ      $16, CX
	CMPQ      CX, R14
	JLT       quant_loop
	VZEROUPPER
	RET
