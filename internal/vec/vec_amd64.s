#include "textflag.h"
#include "mask_amd64.h"

// ·lanemask: 8 lanes of all ones, then 8 of zeros. The 8 lanes loaded from
// byte offset 4·(8−m) enable exactly the first m (0 ≤ m ≤ 8): VMASKMOVPS
// then reads and writes only those, so no kernel touches memory past n.
// (sgemm_amd64.s uses it too.)
DATA ·lanemask+0(SB)/8, $0xffffffffffffffff
DATA ·lanemask+8(SB)/8, $0xffffffffffffffff
DATA ·lanemask+16(SB)/8, $0xffffffffffffffff
DATA ·lanemask+24(SB)/8, $0xffffffffffffffff
DATA ·lanemask+32(SB)/8, $0
DATA ·lanemask+40(SB)/8, $0
DATA ·lanemask+48(SB)/8, $0
DATA ·lanemask+56(SB)/8, $0
GLOBL ·lanemask(SB), RODATA|NOPTR, $64

// Go assembly lists AVX operands in reverse of Intel order: VMAXPS Z, X, D
// is Intel's vmaxps D, X, Z, which returns Z (here +0) when X is ±0 or NaN.

// func addReLUAVX2(dst, src *float32, n int, b float32)
TEXT ·addReLUAVX2(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS b+24(FP), Y1
	VXORPS Y2, Y2, Y2

relu_loop:
	CMPQ CX, $8
	JL   relu_tail
	VADDPS (SI), Y1, Y0
	VMAXPS Y2, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  relu_loop

relu_tail:
	TESTQ CX, CX
	JZ    relu_done
	MASK(CX, DX, Y3)
	VMASKMOVPS (SI), Y3, Y0
	VADDPS     Y1, Y0, Y0
	VMAXPS     Y2, Y0, Y0
	VMASKMOVPS Y0, Y3, (DI)

relu_done:
	VZEROUPPER
	RET

// POOL8 reduces the 16 column pairs' vertical maxima in Y3 (columns 0–7)
// and Y4 (8–15) to 8 horizontal maxima in Y5, in order, plus bias and ReLU.
//   VSHUFPS $0x88 / $0xDD pick the even / odd columns within each 128-bit
//   half: [c0 c2 c8 c10 | c4 c6 c12 c14] and [c1 c3 c9 c11 | c5 c7 c13 c15];
//   their maximum is pair maxima p0 p1 p4 p5 | p2 p3 p6 p7, and VPERMPD $0xD8
//   swaps the middle 64-bit quarters into p0 … p7.
#define POOL8 \
	VSHUFPS $0x88, Y4, Y3, Y5 \
	VSHUFPS $0xDD, Y4, Y3, Y6 \
	VMAXPS  Y6, Y5, Y5 \
	VPERMPD $0xD8, Y5, Y5 \
	VADDPS  Y1, Y5, Y5 \
	VMAXPS  Y2, Y5, Y5

// INTERLEAVE8 merges relu(Y3 + b) and relu(Y4 + b) lane by lane into Y7
// (q = 0…3) and Y8 (q = 4…7): VUNPCKLPS/HPS interleave within 128-bit
// halves, VPERM2F128 puts the halves in order.
#define INTERLEAVE8 \
	VADDPS     Y1, Y3, Y3 \
	VADDPS     Y1, Y4, Y4 \
	VMAXPS     Y2, Y3, Y3 \
	VMAXPS     Y2, Y4, Y4 \
	VUNPCKLPS  Y4, Y3, Y5 \
	VUNPCKHPS  Y4, Y3, Y6 \
	VPERM2F128 $0x20, Y6, Y5, Y7 \
	VPERM2F128 $0x31, Y6, Y5, Y8

// func interleaveAddReLURowsAVX2(dst, p0, p1 *float32, rows, n, dstStride, srcStride int, b float32)
TEXT ·interleaveAddReLURowsAVX2(SB), NOSPLIT, $0-60
	MOVQ dst+0(FP), DI
	MOVQ p0+8(FP), SI
	MOVQ p1+16(FP), DX
	MOVQ rows+24(FP), R12
	MOVQ n+32(FP), R13
	MOVQ dstStride+40(FP), BX
	MOVQ srcStride+48(FP), R8
	VBROADCASTSS b+56(FP), Y1
	VXORPS Y2, Y2, Y2
	SHLQ $2, BX
	SHLQ $2, R8

	// Every row has the same tail of m = n mod 8 pairs: its masks are made
	// once. Y9 enables m inputs; Y10 and Y11 the 2m outputs, split 8 and 8.
	MOVQ R13, AX
	ANDQ $7, AX
	MASK(AX, CX, Y9)
	SHLQ $1, AX
	MOVQ AX, R9
	CMPQ R9, $8
	JLE  il_masks
	MOVQ $8, R9
il_masks:
	MASK(R9, CX, Y10)
	SUBQ R9, AX
	MASK(AX, CX, Y11)

il_row:
	TESTQ R12, R12
	JZ    il_done
	MOVQ  SI, AX
	MOVQ  DX, R9
	MOVQ  DI, R10
	MOVQ  R13, CX

il_loop:
	CMPQ CX, $8
	JL   il_tail
	VMOVUPS (AX), Y3
	VMOVUPS (R9), Y4
	INTERLEAVE8
	VMOVUPS Y7, (R10)
	VMOVUPS Y8, 32(R10)
	ADDQ $32, AX
	ADDQ $32, R9
	ADDQ $64, R10
	SUBQ $8, CX
	JMP  il_loop

il_tail:
	TESTQ CX, CX
	JZ    il_next
	VMASKMOVPS (AX), Y9, Y3
	VMASKMOVPS (R9), Y9, Y4
	INTERLEAVE8
	VMASKMOVPS Y7, Y10, (R10)
	VMASKMOVPS Y8, Y11, 32(R10)

il_next:
	ADDQ R8, SI
	ADDQ R8, DX
	ADDQ BX, DI
	DECQ R12
	JMP  il_row

il_done:
	VZEROUPPER
	RET

// func copyRowsAVX2(dst, src *float32, rows, n, dstStride, srcStride int)
TEXT ·copyRowsAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ rows+16(FP), R12
	MOVQ n+24(FP), R13
	MOVQ dstStride+32(FP), BX
	MOVQ srcStride+40(FP), R8
	SHLQ $2, BX
	SHLQ $2, R8
	MOVQ R13, AX
	ANDQ $7, AX
	MASK(AX, CX, Y9)

cp_row:
	TESTQ R12, R12
	JZ    cp_done
	MOVQ  SI, AX
	MOVQ  DI, R10
	MOVQ  R13, CX

cp_loop:
	CMPQ CX, $8
	JL   cp_tail
	VMOVUPS (AX), Y0
	VMOVUPS Y0, (R10)
	ADDQ $32, AX
	ADDQ $32, R10
	SUBQ $8, CX
	JMP  cp_loop

cp_tail:
	TESTQ CX, CX
	JZ    cp_next
	VMASKMOVPS (AX), Y9, Y0
	VMASKMOVPS Y0, Y9, (R10)

cp_next:
	ADDQ R8, SI
	ADDQ BX, DI
	DECQ R12
	JMP  cp_row

cp_done:
	VZEROUPPER
	RET

// func poolAddReLURowsAVX2(out, in *float32, rows, n, outStride, inStride int, b float32)
// Output row r pools input rows 2r and 2r+1, 8 outputs at a time.
TEXT ·poolAddReLURowsAVX2(SB), NOSPLIT, $0-52
	MOVQ out+0(FP), DI
	MOVQ in+8(FP), SI
	MOVQ rows+16(FP), R12
	MOVQ n+24(FP), R13
	MOVQ outStride+32(FP), BX
	MOVQ inStride+40(FP), R8
	VBROADCASTSS b+48(FP), Y1
	VXORPS Y2, Y2, Y2
	SHLQ $2, BX
	SHLQ $2, R8

	// The tail of m = n mod 8 outputs, the same in every row: Y11 enables
	// the m outputs, Y7 and Y8 the 2m inputs (8 and 8).
	MOVQ R13, AX
	ANDQ $7, AX
	MASK(AX, CX, Y11)
	SHLQ $1, AX
	MOVQ AX, R9
	CMPQ R9, $8
	JLE  pr_lo
	MOVQ $8, R9
pr_lo:
	MASK(R9, CX, Y7)
	SUBQ R9, AX
	MASK(AX, CX, Y8)

pr_row:
	TESTQ R12, R12
	JZ    pr_done
	MOVQ  SI, AX
	LEAQ  (SI)(R8*1), DX
	MOVQ  DI, R10
	MOVQ  R13, CX

pr_loop:
	CMPQ CX, $8
	JL   pr_tail
	VMOVUPS (AX), Y3
	VMOVUPS 32(AX), Y4
	VMAXPS  (DX), Y3, Y3
	VMAXPS  32(DX), Y4, Y4
	POOL8
	VMOVUPS Y5, (R10)
	ADDQ $64, AX
	ADDQ $64, DX
	ADDQ $32, R10
	SUBQ $8, CX
	JMP  pr_loop

pr_tail:
	TESTQ CX, CX
	JZ    pr_next
	VMASKMOVPS (AX), Y7, Y3
	VMASKMOVPS 32(AX), Y8, Y4
	VMASKMOVPS (DX), Y7, Y9
	VMASKMOVPS 32(DX), Y8, Y10
	VMAXPS Y9, Y3, Y3
	VMAXPS Y10, Y4, Y4
	POOL8
	VMASKMOVPS Y5, Y11, (R10)

pr_next:
	LEAQ (SI)(R8*2), SI
	ADDQ BX, DI
	DECQ R12
	JMP  pr_row

pr_done:
	VZEROUPPER
	RET
