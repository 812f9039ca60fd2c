#include "textflag.h"
#include "mask_amd64.h"

// STEP2MASKS sets Y14 and Y15 to the masks of LOAD2's two loads for a
// block of cnt (1–8) columns at step 2: lanes 0 … 2·cnt−2 of the 16, so
// min(2·cnt−1, 8) of the first vector and the rest of the second. t1, t2,
// t3 and R11 are clobbered.
#define STEP2MASKS(cnt, t1, t2, t3) \
	LEAQ    -1(cnt)(cnt*1), t1 \
	MOVQ    $8, t2 \
	CMPQ    t1, t2 \
	CMOVQLT t1, t2 \
	MASK(t2, t3, Y14) \
	SUBQ    $8, t1 \
	XORQ    t2, t2 \
	CMPQ    t1, t2 \
	CMOVQLT t2, t1 \
	MASK(t1, t3, Y15)

// LOAD2 loads lanes 0, 2, …, 14 of the 16 at R14 into reg and moves R14 a
// row on: two masked loads (masks Y14, Y15), then VSHUFPS picks the even
// lanes of each 128-bit half and VPERMPD puts the halves in order. Y8 is
// clobbered.
#define LOAD2(reg) \
	VMASKMOVPS (R14), Y14, reg \
	VMASKMOVPS 32(R14), Y15, Y8 \
	VSHUFPS $0x88, Y8, reg, reg \
	VPERMPD $0xD8, reg, reg \
	ADDQ R8, R14

// func transpose8AVX2(dst, src *float32, cols, dstStride, srcStride, step int)
//
// dst[j·dstStride + i] = src[i·srcStride + j·step] for i < 8 and j < cols,
// step 1 or 2: eight source rows, eight columns at a time, transposed in
// registers (unpack, shuffle, 128-bit permute). The loads are masked to the
// lanes a block needs, and a last block narrower than 8 stores only its
// columns, so nothing past the last element is read or written.
TEXT ·transpose8AVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ cols+16(FP), CX
	MOVQ dstStride+24(FP), BX
	MOVQ srcStride+32(FP), R8
	MOVQ step+40(FP), R9
	SHLQ $2, BX
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R13 // 3 rows
	MOVQ R9, R15
	SHLQ $5, R15         // bytes a block advances: 8·step floats

tr_block:
	TESTQ CX, CX
	JLE   tr_done
	MOVQ  CX, AX         // columns in this block
	CMPQ  AX, $8
	JLE   tr_width
	MOVQ  $8, AX

tr_width:
	MOVQ SI, R10
	CMPQ R9, $2
	JEQ  tr_step2
	MASK(AX, DX, Y15)
	VMASKMOVPS (R10), Y15, Y0
	VMASKMOVPS (R10)(R8*1), Y15, Y1
	VMASKMOVPS (R10)(R8*2), Y15, Y2
	VMASKMOVPS (R10)(R13*1), Y15, Y3
	LEAQ (R10)(R8*4), R10
	VMASKMOVPS (R10), Y15, Y4
	VMASKMOVPS (R10)(R8*1), Y15, Y5
	VMASKMOVPS (R10)(R8*2), Y15, Y6
	VMASKMOVPS (R10)(R13*1), Y15, Y7
	JMP tr_shuffle

tr_step2:
	STEP2MASKS(AX, DX, R12, R14)
	MOVQ R10, R14
	LOAD2(Y0)
	LOAD2(Y1)
	LOAD2(Y2)
	LOAD2(Y3)
	LOAD2(Y4)
	LOAD2(Y5)
	LOAD2(Y6)
	LOAD2(Y7)

tr_shuffle:
	// Go operand order: VUNPCKLPS Y1, Y0, Y8 is Intel's vunpcklps ymm8, ymm0, ymm1.
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15
	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	VSHUFPS $0x44, Y14, Y12, Y4
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8  // column 0
	VPERM2F128 $0x20, Y5, Y1, Y9  // 1
	VPERM2F128 $0x20, Y6, Y2, Y10 // 2
	VPERM2F128 $0x20, Y7, Y3, Y11 // 3
	VPERM2F128 $0x31, Y4, Y0, Y12 // 4
	VPERM2F128 $0x31, Y5, Y1, Y13 // 5
	VPERM2F128 $0x31, Y6, Y2, Y14 // 6
	VPERM2F128 $0x31, Y7, Y3, Y15 // 7

	// Store the block's AX columns.
	MOVQ    DI, R10
	VMOVUPS Y8, (R10)
	CMPQ    AX, $1
	JEQ     tr_next
	ADDQ    BX, R10
	VMOVUPS Y9, (R10)
	CMPQ    AX, $2
	JEQ     tr_next
	ADDQ    BX, R10
	VMOVUPS Y10, (R10)
	CMPQ    AX, $3
	JEQ     tr_next
	ADDQ    BX, R10
	VMOVUPS Y11, (R10)
	CMPQ    AX, $4
	JEQ     tr_next
	ADDQ    BX, R10
	VMOVUPS Y12, (R10)
	CMPQ    AX, $5
	JEQ     tr_next
	ADDQ    BX, R10
	VMOVUPS Y13, (R10)
	CMPQ    AX, $6
	JEQ     tr_next
	ADDQ    BX, R10
	VMOVUPS Y14, (R10)
	CMPQ    AX, $7
	JEQ     tr_next
	ADDQ    BX, R10
	VMOVUPS Y15, (R10)

tr_next:
	ADDQ R15, SI
	LEAQ (DI)(BX*8), DI
	SUBQ $8, CX
	JMP  tr_block

tr_done:
	VZEROUPPER
	RET

// func copyRowsStride2AVX2(dst, src *float32, rows, n, dstStride, srcStride int)
//
// dst[r·dstStride + q] = src[r·srcStride + 2q] for r < rows, q < n: eight
// outputs a step from two masked loads (LOAD2's shuffle), a row's last step
// masked on both sides, so nothing past src[…+2(n−1)] is read and nothing
// past dst[…+n−1] written.
TEXT ·copyRowsStride2AVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ rows+16(FP), R8
	MOVQ n+24(FP), R9
	MOVQ dstStride+32(FP), BX
	MOVQ srcStride+40(FP), R10
	SHLQ $2, BX
	SHLQ $2, R10
	MOVQ $7, DX
	MASK(DX, AX, Y13)      // a full step's second load: lanes 8–14 of the 16

cs_row:
	TESTQ R8, R8
	JZ    cs_done
	MOVQ  SI, R14
	MOVQ  DI, R13
	MOVQ  R9, CX

cs_step:
	CMPQ    CX, $8
	JL      cs_tail
	VMOVUPS    (R14), Y0
	VMASKMOVPS 32(R14), Y13, Y8
	VSHUFPS $0x88, Y8, Y0, Y0
	VPERMPD $0xD8, Y0, Y0
	VMOVUPS Y0, (R13)
	ADDQ    $64, R14
	ADDQ    $32, R13
	SUBQ    $8, CX
	JMP     cs_step

cs_tail:
	TESTQ CX, CX
	JZ    cs_next
	STEP2MASKS(CX, DX, R12, AX)
	MASK(CX, AX, Y12)
	VMASKMOVPS (R14), Y14, Y0
	VMASKMOVPS 32(R14), Y15, Y8
	VSHUFPS    $0x88, Y8, Y0, Y0
	VPERMPD    $0xD8, Y0, Y0
	VMASKMOVPS Y0, Y12, (R13)

cs_next:
	ADDQ R10, SI
	ADDQ BX, DI
	DECQ R8
	JMP  cs_row

cs_done:
	VZEROUPPER
	RET
