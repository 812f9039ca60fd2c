#include "textflag.h"
#include "sgemm_amd64.h"

// Gathered-row SGEMM: C[r, 0:n] = Σ_p A[r, p] · b[off[p] : off[p]+n], the
// kernels of sgemm_amd64.s and sgemm512_amd64.s with B's row p found through
// off (float offsets) instead of a fixed stride, and no beta (C is written,
// never read). A convolution's nine taps become one product with k = 9·Cin:
// each column tile accumulates every tap in registers, so C is stored once
// instead of read and written nine times, and the tile's input rows, which
// overlap from tap to tap, stay in L1.
//
// AVX2 and AVX-512 sum each C value's k products in the same order, one FMA
// each, so they agree bit for bit.

// BROW points BX at B's row p (off[p] at (R10)) and steps R10 to p+1.
#define BROW \
	MOVQ (R10), BX \
	LEAQ (DX)(BX*4), BX \
	ADDQ $8, R10

// ---- AVX-512 ----

// func gemmGather4AVX512(c, a, b *float32, off *int, n, k, lda, ldc int)
TEXT ·gemmGather4AVX512(SB), NOSPLIT, $0-64
	MOVQ c+0(FP), DI
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), DX
	MOVQ n+32(FP), CX
	MOVQ k+40(FP), R8
	MOVQ lda+48(FP), R9
	MOVQ ldc+56(FP), R12
	SHLQ $2, R9
	SHLQ $2, R12
	LEAQ (R9)(R9*2), R13

gg4z_tile:
	CMPQ CX, $64
	JL   gg4z_tail
	ZERO16
	MOVQ AX, SI
	MOVQ off+24(FP), R10
	MOVQ R8, R11

gg4z_k:
	BROW
	VMOVUPS (BX), Z16
	VMOVUPS 64(BX), Z17
	VMOVUPS 128(BX), Z18
	VMOVUPS 192(BX), Z19
	MUL4x64
	DECQ    R11
	JNZ     gg4z_k

	LEAQ (DI)(R12*1), BX
	LEAQ (DI)(R12*2), SI
	LEAQ (BX)(R12*2), R11
	STOREROW(DI, Z0, Z1, Z2, Z3)
	STOREROW(BX, Z4, Z5, Z6, Z7)
	STOREROW(SI, Z8, Z9, Z10, Z11)
	STOREROW(R11, Z12, Z13, Z14, Z15)
	ADDQ $256, DI
	ADDQ $256, DX
	SUBQ $64, CX
	JMP  gg4z_tile

gg4z_tail:
	TESTQ CX, CX
	JZ    gg4z_done
	TAILMASKS512(CX)
	CMPQ  CX, $32
	JLE   gg4z_narrow
	ZERO16
	MOVQ AX, SI
	MOVQ off+24(FP), R10
	MOVQ R8, R11

gg4z_tk:
	BROW
	VMOVUPS.Z (BX), K1, Z16
	VMOVUPS.Z 64(BX), K2, Z17
	VMOVUPS.Z 128(BX), K3, Z18
	VMOVUPS.Z 192(BX), K4, Z19
	MUL4x64
	DECQ      R11
	JNZ       gg4z_tk

	LEAQ (DI)(R12*1), BX
	LEAQ (DI)(R12*2), SI
	LEAQ (BX)(R12*2), R11
	STOREROWM(DI, Z0, Z1, Z2, Z3)
	STOREROWM(BX, Z4, Z5, Z6, Z7)
	STOREROWM(SI, Z8, Z9, Z10, Z11)
	STOREROWM(R11, Z12, Z13, Z14, Z15)
	JMP gg4z_done

	// At most 32 columns left: two registers a row, not four, so a narrow
	// tail (half of a 14×16 grid's last tile) costs half the FMAs.
gg4z_narrow:
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	MOVQ AX, SI
	MOVQ off+24(FP), R10
	MOVQ R8, R11

gg4z_nk:
	BROW
	VMOVUPS.Z    (BX), K1, Z16
	VMOVUPS.Z    64(BX), K2, Z17
	VBROADCASTSS (SI), Z20
	VFMADD231PS  Z16, Z20, Z0
	VFMADD231PS  Z17, Z20, Z1
	VBROADCASTSS (SI)(R9*1), Z21
	VFMADD231PS  Z16, Z21, Z4
	VFMADD231PS  Z17, Z21, Z5
	VBROADCASTSS (SI)(R9*2), Z22
	VFMADD231PS  Z16, Z22, Z8
	VFMADD231PS  Z17, Z22, Z9
	VBROADCASTSS (SI)(R13*1), Z23
	VFMADD231PS  Z16, Z23, Z12
	VFMADD231PS  Z17, Z23, Z13
	ADDQ         $4, SI
	DECQ         R11
	JNZ          gg4z_nk

	LEAQ    (DI)(R12*1), BX
	LEAQ    (DI)(R12*2), SI
	LEAQ    (BX)(R12*2), R11
	VMOVUPS Z0, K1, (DI)
	VMOVUPS Z1, K2, 64(DI)
	VMOVUPS Z4, K1, (BX)
	VMOVUPS Z5, K2, 64(BX)
	VMOVUPS Z8, K1, (SI)
	VMOVUPS Z9, K2, 64(SI)
	VMOVUPS Z12, K1, (R11)
	VMOVUPS Z13, K2, 64(R11)

gg4z_done:
	VZEROUPPER
	RET

// func gemmGather1AVX512(c, a, b *float32, off *int, n, k int)
TEXT ·gemmGather1AVX512(SB), NOSPLIT, $0-48
	MOVQ c+0(FP), DI
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), DX
	MOVQ n+32(FP), CX
	MOVQ k+40(FP), R8

gg1z_tile:
	CMPQ CX, $128
	JL   gg1z_tail
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	MOVQ AX, SI
	MOVQ off+24(FP), R10
	MOVQ R8, R11

gg1z_k:
	BROW
	VBROADCASTSS (SI), Z20
	VFMADD231PS  (BX), Z20, Z0
	VFMADD231PS  64(BX), Z20, Z1
	VFMADD231PS  128(BX), Z20, Z2
	VFMADD231PS  192(BX), Z20, Z3
	VFMADD231PS  256(BX), Z20, Z4
	VFMADD231PS  320(BX), Z20, Z5
	VFMADD231PS  384(BX), Z20, Z6
	VFMADD231PS  448(BX), Z20, Z7
	ADDQ         $4, SI
	DECQ         R11
	JNZ          gg1z_k

	LEAQ 256(DI), BX
	STOREROW(DI, Z0, Z1, Z2, Z3)
	STOREROW(BX, Z4, Z5, Z6, Z7)
	ADDQ $512, DI
	ADDQ $512, DX
	SUBQ $128, CX
	JMP  gg1z_tile

gg1z_tail:
	TESTQ CX, CX
	JZ    gg1z_done
	TAILMASKS512(CX)
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	MOVQ AX, SI
	MOVQ off+24(FP), R10
	MOVQ R8, R11

gg1z_tk:
	BROW
	VBROADCASTSS (SI), Z20
	VMOVUPS.Z    (BX), K1, Z16
	VMOVUPS.Z    64(BX), K2, Z17
	VMOVUPS.Z    128(BX), K3, Z18
	VMOVUPS.Z    192(BX), K4, Z19
	VFMADD231PS  Z16, Z20, Z0
	VFMADD231PS  Z17, Z20, Z1
	VFMADD231PS  Z18, Z20, Z2
	VFMADD231PS  Z19, Z20, Z3
	ADDQ         $4, SI
	DECQ         R11
	JNZ          gg1z_tk

	STOREROWM(DI, Z0, Z1, Z2, Z3)
	ADDQ $256, DI
	ADDQ $256, DX
	SUBQ $64, CX
	JG   gg1z_tail

gg1z_done:
	VZEROUPPER
	RET

// ---- AVX2 ----

// func gemmGather4AVX2(c, a, b *float32, off *int, n, k, lda, ldc int)
TEXT ·gemmGather4AVX2(SB), NOSPLIT, $0-64
	MOVQ c+0(FP), DI
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), DX
	MOVQ n+32(FP), CX
	MOVQ k+40(FP), R8
	MOVQ lda+48(FP), R9
	MOVQ ldc+56(FP), R12
	SHLQ $2, R9
	SHLQ $2, R12
	LEAQ (R9)(R9*2), R13

gg4y_tile:
	CMPQ CX, $16
	JL   gg4y_tail
	ZERO8
	MOVQ AX, SI
	MOVQ off+24(FP), R10
	MOVQ R8, R11

gg4y_k:
	BROW
	VMOVUPS (BX), Y8
	VMOVUPS 32(BX), Y9
	MUL4x16
	DECQ    R11
	JNZ     gg4y_k

	LEAQ (DI)(R12*2), BX
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
	JMP  gg4y_tile

gg4y_tail:
	TESTQ CX, CX
	JZ    gg4y_done
	TAILMASKS(CX)
	ZERO8
	MOVQ AX, SI
	MOVQ off+24(FP), R10
	MOVQ R8, R11

gg4y_tk:
	BROW
	VMASKMOVPS (BX), Y12, Y8
	VMASKMOVPS 32(BX), Y13, Y9
	MUL4x16
	DECQ       R11
	JNZ        gg4y_tk

	LEAQ (DI)(R12*2), BX
	VMASKMOVPS Y0, Y12, (DI)
	VMASKMOVPS Y1, Y13, 32(DI)
	VMASKMOVPS Y2, Y12, (DI)(R12*1)
	VMASKMOVPS Y3, Y13, 32(DI)(R12*1)
	VMASKMOVPS Y4, Y12, (BX)
	VMASKMOVPS Y5, Y13, 32(BX)
	VMASKMOVPS Y6, Y12, (BX)(R12*1)
	VMASKMOVPS Y7, Y13, 32(BX)(R12*1)

gg4y_done:
	VZEROUPPER
	RET

// func gemmGather1AVX2(c, a, b *float32, off *int, n, k int)
TEXT ·gemmGather1AVX2(SB), NOSPLIT, $0-48
	MOVQ c+0(FP), DI
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), DX
	MOVQ n+32(FP), CX
	MOVQ k+40(FP), R8

gg1y_tile:
	CMPQ CX, $32
	JL   gg1y_half
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ AX, SI
	MOVQ off+24(FP), R10
	MOVQ R8, R11

gg1y_k:
	BROW
	VBROADCASTSS (SI), Y10
	VFMADD231PS  (BX), Y10, Y0
	VFMADD231PS  32(BX), Y10, Y1
	VFMADD231PS  64(BX), Y10, Y2
	VFMADD231PS  96(BX), Y10, Y3
	ADDQ         $4, SI
	DECQ         R11
	JNZ          gg1y_k

	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, DI
	ADDQ $128, DX
	SUBQ $32, CX
	JMP  gg1y_tile

gg1y_half:
	TESTQ CX, CX
	JZ    gg1y_done
	MOVQ  CX, R9
	CMPQ  R9, $16
	JLE   gg1y_masks
	MOVQ  $16, R9

gg1y_masks:
	TAILMASKS(R9)
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	MOVQ AX, SI
	MOVQ off+24(FP), R10
	MOVQ R8, R11

gg1y_tk:
	BROW
	VBROADCASTSS (SI), Y10
	VMASKMOVPS   (BX), Y12, Y8
	VMASKMOVPS   32(BX), Y13, Y9
	VFMADD231PS  Y8, Y10, Y0
	VFMADD231PS  Y9, Y10, Y1
	ADDQ         $4, SI
	DECQ         R11
	JNZ          gg1y_tk

	VMASKMOVPS Y0, Y12, (DI)
	VMASKMOVPS Y1, Y13, 32(DI)
	ADDQ $64, DI
	ADDQ $64, DX
	SUBQ R9, CX
	JMP  gg1y_half

gg1y_done:
	VZEROUPPER
	RET
