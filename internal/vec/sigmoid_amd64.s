#include "textflag.h"

// Sigmoid constants, each as 8 lanes (AVX2 has no broadcast operands).
#define C8(name, bits) \
	DATA name+0(SB)/4, $bits \
	DATA name+4(SB)/4, $bits \
	DATA name+8(SB)/4, $bits \
	DATA name+12(SB)/4, $bits \
	DATA name+16(SB)/4, $bits \
	DATA name+20(SB)/4, $bits \
	DATA name+24(SB)/4, $bits \
	DATA name+28(SB)/4, $bits \
	GLOBL name(SB), RODATA|NOPTR, $32

C8(·sigSign, 0x80000000)
C8(·sigHi, 0x42b00000)    // 88
C8(·sigLo, 0xc2ae0000)    // -87
C8(·sigLog2e, 0x3fb8aa3b) // 1.44269504
C8(·sigC1, 0x3f318000)    // 0.693359375
C8(·sigC2, 0xb95e8083)    // -2.12194440e-4
C8(·sigP0, 0x39506967)    // 1.9875691500e-4
C8(·sigP1, 0x3ab743ce)    // 1.3981999507e-3
C8(·sigP2, 0x3c088908)    // 8.3334519073e-3
C8(·sigP3, 0x3d2aa9c1)    // 4.1665795894e-2
C8(·sigP4, 0x3e2aaaaa)    // 1.6666665459e-1
C8(·sigP5, 0x3f000000)    // 5.0000001201e-1
C8(·sigOne, 0x3f800000)   // 1
C8(·sigBias, 0x0000007f)  // 127

// SIG8 sets Y0 to sigmoid(Y0 + b) (b in Y15, the clamp's bounds in Y13 and
// Y14), exactly as sigmoidGo computes it: each product and sum rounded on
// its own (no FMA), so that the Go reference gives the same bits. Clobbers
// Y1–Y3. The clamp keeps a NaN: VMAXPS and VMINPS return their second
// source (Intel order) when either is NaN, and that is x; a NaN then flows
// through to the result, which the server refuses as non-finite.
#define SIG8 \
	VADDPS    Y15, Y0, Y0 \
	VXORPS    ·sigSign(SB), Y0, Y0 \
	VMAXPS    Y0, Y13, Y0 \
	VMINPS    Y0, Y14, Y0 \
	VMULPS    ·sigLog2e(SB), Y0, Y1 \
	VROUNDPS  $0, Y1, Y1 \
	VMULPS    ·sigC1(SB), Y1, Y2 \
	VSUBPS    Y2, Y0, Y0 \
	VMULPS    ·sigC2(SB), Y1, Y2 \
	VSUBPS    Y2, Y0, Y0 \
	VMOVUPS   ·sigP0(SB), Y2 \
	VMULPS    Y0, Y2, Y2 \
	VADDPS    ·sigP1(SB), Y2, Y2 \
	VMULPS    Y0, Y2, Y2 \
	VADDPS    ·sigP2(SB), Y2, Y2 \
	VMULPS    Y0, Y2, Y2 \
	VADDPS    ·sigP3(SB), Y2, Y2 \
	VMULPS    Y0, Y2, Y2 \
	VADDPS    ·sigP4(SB), Y2, Y2 \
	VMULPS    Y0, Y2, Y2 \
	VADDPS    ·sigP5(SB), Y2, Y2 \
	VMULPS    Y0, Y0, Y3 \
	VMULPS    Y3, Y2, Y2 \
	VADDPS    Y0, Y2, Y2 \
	VADDPS    ·sigOne(SB), Y2, Y2 \
	VCVTPS2DQ Y1, Y1 \
	VPADDD    ·sigBias(SB), Y1, Y1 \
	VPSLLD    $23, Y1, Y1 \
	VMULPS    Y1, Y2, Y2 \
	VADDPS    ·sigOne(SB), Y2, Y2 \
	VMOVUPS   ·sigOne(SB), Y0 \
	VDIVPS    Y2, Y0, Y0

// func addSigmoidAVX2(dst, src *float32, n int, b float32)
TEXT ·addSigmoidAVX2(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS b+24(FP), Y15
	VMOVUPS      ·sigLo(SB), Y13
	VMOVUPS      ·sigHi(SB), Y14

sig_loop:
	CMPQ CX, $8
	JL   sig_tail
	VMOVUPS (SI), Y0
	SIG8
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  sig_loop

sig_tail:
	TESTQ CX, CX
	JZ    sig_done
	MOVQ  $8, DX
	SUBQ  CX, DX
	LEAQ  ·lanemask(SB), R11
	VMOVDQU (R11)(DX*4), Y4
	VMASKMOVPS (SI), Y4, Y0
	SIG8
	VMASKMOVPS Y0, Y4, (DI)

sig_done:
	VZEROUPPER
	RET
