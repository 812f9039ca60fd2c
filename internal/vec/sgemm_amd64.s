#include "textflag.h"
#include "sgemm_amd64.h"

// C[r, 0:n] = A[r, 0:k] · B[0:k, 0:n] (+ beta·C[r, 0:n]) for rows r of a block
// of 4 (sgemm4AVX2) or 1 (sgemm1AVX2), row-major, strides in floats. Each
// 16-column tile keeps its sums in registers over the whole k loop: B's
// rows are loaded once per k and every A value is broadcast once, so a tile
// of the 4-row kernel does 8 FMAs per 2 loads and 4 broadcasts. The last
// tile of fewer than 16 columns uses masked loads and stores.

// func sgemm4AVX2(c, a, b *float32, n, k, lda, ldb, ldc, accum int, beta float32)
TEXT ·sgemm4AVX2(SB), NOSPLIT, $0-76
	MOVQ c+0(FP), DI
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), R8
	MOVQ lda+40(FP), R9
	MOVQ ldb+48(FP), R10
	MOVQ ldc+56(FP), R12
	VBROADCASTSS beta+72(FP), Y14
	SHLQ $2, R9
	SHLQ $2, R10
	SHLQ $2, R12
	LEAQ (R9)(R9*2), R13 // 3 rows of A

g4_tile:
	CMPQ CX, $16
	JL   g4_tail
	ZERO8
	MOVQ AX, SI
	MOVQ DX, BX
	MOVQ R8, R11

g4_k:
	VMOVUPS      (BX), Y8
	VMOVUPS      32(BX), Y9
	MUL4x16
	ADDQ R10, BX
	DECQ         R11
	JNZ          g4_k

	LEAQ (DI)(R12*2), BX // row 2; row 3 is BX+ldc
	CMPQ accum+64(FP), $0
	JEQ  g4_store
	VFMADD231PS (DI), Y14, Y0
	VFMADD231PS 32(DI), Y14, Y1
	VFMADD231PS (DI)(R12*1), Y14, Y2
	VFMADD231PS 32(DI)(R12*1), Y14, Y3
	VFMADD231PS (BX), Y14, Y4
	VFMADD231PS 32(BX), Y14, Y5
	VFMADD231PS (BX)(R12*1), Y14, Y6
	VFMADD231PS 32(BX)(R12*1), Y14, Y7

g4_store:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, (DI)(R12*1)
	VMOVUPS Y3, 32(DI)(R12*1)
	VMOVUPS Y4, (BX)
	VMOVUPS Y5, 32(BX)
	VMOVUPS Y6, (BX)(R12*1)
	VMOVUPS Y7, 32(BX)(R12*1)
	ADDQ $64, DI
	ADDQ $64, DX
	SUBQ $16, CX
	JMP  g4_tile

g4_tail:
	TESTQ CX, CX
	JZ    g4_done
	TAILMASKS(CX)
	ZERO8
	MOVQ AX, SI
	MOVQ DX, BX
	MOVQ R8, R11

g4_tk:
	VMASKMOVPS   (BX), Y12, Y8
	VMASKMOVPS   32(BX), Y13, Y9
	MUL4x16
	ADDQ R10, BX
	DECQ         R11
	JNZ          g4_tk

	LEAQ (DI)(R12*2), BX
	CMPQ accum+64(FP), $0
	JEQ  g4_tstore
	VMASKMOVPS  (DI), Y12, Y8
	VFMADD231PS Y8, Y14, Y0
	VMASKMOVPS  32(DI), Y13, Y8
	VFMADD231PS Y8, Y14, Y1
	VMASKMOVPS  (DI)(R12*1), Y12, Y8
	VFMADD231PS Y8, Y14, Y2
	VMASKMOVPS  32(DI)(R12*1), Y13, Y8
	VFMADD231PS Y8, Y14, Y3
	VMASKMOVPS  (BX), Y12, Y8
	VFMADD231PS Y8, Y14, Y4
	VMASKMOVPS  32(BX), Y13, Y8
	VFMADD231PS Y8, Y14, Y5
	VMASKMOVPS  (BX)(R12*1), Y12, Y8
	VFMADD231PS Y8, Y14, Y6
	VMASKMOVPS  32(BX)(R12*1), Y13, Y8
	VFMADD231PS Y8, Y14, Y7

g4_tstore:
	VMASKMOVPS Y0, Y12, (DI)
	VMASKMOVPS Y1, Y13, 32(DI)
	VMASKMOVPS Y2, Y12, (DI)(R12*1)
	VMASKMOVPS Y3, Y13, 32(DI)(R12*1)
	VMASKMOVPS Y4, Y12, (BX)
	VMASKMOVPS Y5, Y13, 32(BX)
	VMASKMOVPS Y6, Y12, (BX)(R12*1)
	VMASKMOVPS Y7, Y13, 32(BX)(R12*1)

g4_done:
	VZEROUPPER
	RET

// func sgemm1AVX2(c, a, b *float32, n, k, ldb, accum int, beta float32)
// One row, 32 columns a tile (four independent sums hide the FMA latency).
TEXT ·sgemm1AVX2(SB), NOSPLIT, $0-60
	MOVQ c+0(FP), DI
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), R8
	MOVQ ldb+40(FP), R10
	VBROADCASTSS beta+56(FP), Y14
	SHLQ $2, R10

g1_tile:
	CMPQ CX, $32
	JL   g1_half
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ AX, SI
	MOVQ DX, BX
	MOVQ R8, R11

g1_k:
	VBROADCASTSS (SI), Y10
	VFMADD231PS  (BX), Y10, Y0
	VFMADD231PS  32(BX), Y10, Y1
	VFMADD231PS  64(BX), Y10, Y2
	VFMADD231PS  96(BX), Y10, Y3
	ADDQ         $4, SI
	ADDQ         R10, BX
	DECQ         R11
	JNZ          g1_k

	CMPQ accum+48(FP), $0
	JEQ  g1_store
	VFMADD231PS (DI), Y14, Y0
	VFMADD231PS 32(DI), Y14, Y1
	VFMADD231PS 64(DI), Y14, Y2
	VFMADD231PS 96(DI), Y14, Y3

g1_store:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, DI
	ADDQ $128, DX
	SUBQ $32, CX
	JMP  g1_tile

	// Fewer than 32 columns left: 16-column tiles, the last one masked.
g1_half:
	TESTQ CX, CX
	JZ    g1_done
	MOVQ  CX, R9
	CMPQ  R9, $16
	JLE   g1_masks
	MOVQ  $16, R9

g1_masks:
	TAILMASKS(R9)
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	MOVQ AX, SI
	MOVQ DX, BX
	MOVQ R8, R11

g1_tk:
	VBROADCASTSS (SI), Y10
	VMASKMOVPS   (BX), Y12, Y8
	VMASKMOVPS   32(BX), Y13, Y9
	VFMADD231PS  Y8, Y10, Y0
	VFMADD231PS  Y9, Y10, Y1
	ADDQ         $4, SI
	ADDQ         R10, BX
	DECQ         R11
	JNZ          g1_tk

	CMPQ accum+48(FP), $0
	JEQ  g1_tstore
	VMASKMOVPS  (DI), Y12, Y8
	VFMADD231PS Y8, Y14, Y0
	VMASKMOVPS  32(DI), Y13, Y8
	VFMADD231PS Y8, Y14, Y1

g1_tstore:
	VMASKMOVPS Y0, Y12, (DI)
	VMASKMOVPS Y1, Y13, 32(DI)
	ADDQ $64, DI
	ADDQ $64, DX
	SUBQ R9, CX
	JMP  g1_half

g1_done:
	VZEROUPPER
	RET
