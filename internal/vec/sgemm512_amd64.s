#include "textflag.h"
#include "sgemm_amd64.h"

// The AVX-512 SGEMM kernels: the AVX2 kernels' scheme (sgemm_amd64.s) at
// twice the width with twice the registers. The 4-row kernel keeps a 4 × 64
// tile of sums in Z0–Z15 over the whole k loop, so each k step does 16 FMAs
// for 4 loads of B's row and 4 broadcasts of A; the 1-row kernel keeps 1 × 128
// (eight independent sums, enough to hide the FMA latency on two pipes). The
// last tile of a row block is masked with K1–K4 (AVX-512 masked loads
// suppress faults, so nothing past n is read or written).
//
// Each sum is accumulated over k in the same order, one FMA per k, and beta·C
// is added last with one more FMA, exactly as the AVX2 kernels do: the two
// paths give bit-identical results.

// ACCROW adds beta·C to one row's four sums (C's row at r).
#define ACCROW(r, s0, s1, s2, s3) \
	VFMADD231PS (r), Z31, s0 \
	VFMADD231PS 64(r), Z31, s1 \
	VFMADD231PS 128(r), Z31, s2 \
	VFMADD231PS 192(r), Z31, s3

// Masked forms: C is read with masked-out lanes zeroed and written only
// where the mask allows.
#define ACCROWM(r, s0, s1, s2, s3) \
	VMOVUPS.Z   (r), K1, Z16 \
	VFMADD231PS Z16, Z31, s0 \
	VMOVUPS.Z   64(r), K2, Z17 \
	VFMADD231PS Z17, Z31, s1 \
	VMOVUPS.Z   128(r), K3, Z18 \
	VFMADD231PS Z18, Z31, s2 \
	VMOVUPS.Z   192(r), K4, Z19 \
	VFMADD231PS Z19, Z31, s3

// func sgemm4AVX512(c, a, b *float32, n, k, lda, ldb, ldc, accum int, beta float32)
TEXT ·sgemm4AVX512(SB), NOSPLIT, $0-76
	MOVQ c+0(FP), DI
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), R8
	MOVQ lda+40(FP), R9
	MOVQ ldb+48(FP), R10
	MOVQ ldc+56(FP), R12
	VBROADCASTSS beta+72(FP), Z31
	SHLQ $2, R9
	SHLQ $2, R10
	SHLQ $2, R12
	LEAQ (R9)(R9*2), R13 // 3 rows of A

g4z_tile:
	CMPQ CX, $64
	JL   g4z_tail
	ZERO16
	MOVQ AX, SI
	MOVQ DX, BX
	MOVQ R8, R11

g4z_k:
	VMOVUPS (BX), Z16
	VMOVUPS 64(BX), Z17
	VMOVUPS 128(BX), Z18
	VMOVUPS 192(BX), Z19
	MUL4x64
	ADDQ    R10, BX
	DECQ    R11
	JNZ     g4z_k

	LEAQ (DI)(R12*1), BX
	LEAQ (DI)(R12*2), SI
	LEAQ (BX)(R12*2), R11
	CMPQ accum+64(FP), $0
	JEQ  g4z_store
	ACCROW(DI, Z0, Z1, Z2, Z3)
	ACCROW(BX, Z4, Z5, Z6, Z7)
	ACCROW(SI, Z8, Z9, Z10, Z11)
	ACCROW(R11, Z12, Z13, Z14, Z15)

g4z_store:
	STOREROW(DI, Z0, Z1, Z2, Z3)
	STOREROW(BX, Z4, Z5, Z6, Z7)
	STOREROW(SI, Z8, Z9, Z10, Z11)
	STOREROW(R11, Z12, Z13, Z14, Z15)
	ADDQ $256, DI
	ADDQ $256, DX
	SUBQ $64, CX
	JMP  g4z_tile

g4z_tail:
	TESTQ CX, CX
	JZ    g4z_done
	TAILMASKS512(CX)
	CMPQ  CX, $32
	JLE   g4z_narrow
	ZERO16
	MOVQ AX, SI
	MOVQ DX, BX
	MOVQ R8, R11

g4z_tk:
	VMOVUPS.Z (BX), K1, Z16
	VMOVUPS.Z 64(BX), K2, Z17
	VMOVUPS.Z 128(BX), K3, Z18
	VMOVUPS.Z 192(BX), K4, Z19
	MUL4x64
	ADDQ    R10, BX
	DECQ      R11
	JNZ       g4z_tk

	LEAQ (DI)(R12*1), BX
	LEAQ (DI)(R12*2), SI
	LEAQ (BX)(R12*2), R11
	CMPQ accum+64(FP), $0
	JEQ  g4z_tstore
	ACCROWM(DI, Z0, Z1, Z2, Z3)
	ACCROWM(BX, Z4, Z5, Z6, Z7)
	ACCROWM(SI, Z8, Z9, Z10, Z11)
	ACCROWM(R11, Z12, Z13, Z14, Z15)

g4z_tstore:
	STOREROWM(DI, Z0, Z1, Z2, Z3)
	STOREROWM(BX, Z4, Z5, Z6, Z7)
	STOREROWM(SI, Z8, Z9, Z10, Z11)
	STOREROWM(R11, Z12, Z13, Z14, Z15)
	JMP g4z_done

	// At most 32 columns left (a product only 32 wide, as the filter
	// gradients are): two registers a row, not four, half the FMAs.
g4z_narrow:
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	MOVQ AX, SI
	MOVQ DX, BX
	MOVQ R8, R11

g4z_nk:
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
	ADDQ         R10, BX
	DECQ         R11
	JNZ          g4z_nk

	LEAQ (DI)(R12*1), BX
	LEAQ (DI)(R12*2), SI
	LEAQ (BX)(R12*2), R11
	CMPQ accum+64(FP), $0
	JEQ  g4z_nstore
	VMOVUPS.Z   (DI), K1, Z16
	VFMADD231PS Z16, Z31, Z0
	VMOVUPS.Z   64(DI), K2, Z17
	VFMADD231PS Z17, Z31, Z1
	VMOVUPS.Z   (BX), K1, Z16
	VFMADD231PS Z16, Z31, Z4
	VMOVUPS.Z   64(BX), K2, Z17
	VFMADD231PS Z17, Z31, Z5
	VMOVUPS.Z   (SI), K1, Z16
	VFMADD231PS Z16, Z31, Z8
	VMOVUPS.Z   64(SI), K2, Z17
	VFMADD231PS Z17, Z31, Z9
	VMOVUPS.Z   (R11), K1, Z16
	VFMADD231PS Z16, Z31, Z12
	VMOVUPS.Z   64(R11), K2, Z17
	VFMADD231PS Z17, Z31, Z13

g4z_nstore:
	VMOVUPS Z0, K1, (DI)
	VMOVUPS Z1, K2, 64(DI)
	VMOVUPS Z4, K1, (BX)
	VMOVUPS Z5, K2, 64(BX)
	VMOVUPS Z8, K1, (SI)
	VMOVUPS Z9, K2, 64(SI)
	VMOVUPS Z12, K1, (R11)
	VMOVUPS Z13, K2, 64(R11)

g4z_done:
	VZEROUPPER
	RET

// func sgemm1AVX512(c, a, b *float32, n, k, ldb, accum int, beta float32)
// One row, 128 columns a tile (eight independent sums), then masked tiles of
// up to 64.
TEXT ·sgemm1AVX512(SB), NOSPLIT, $0-60
	MOVQ c+0(FP), DI
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), R8
	MOVQ ldb+40(FP), R10
	VBROADCASTSS beta+56(FP), Z31
	SHLQ $2, R10

g1z_tile:
	CMPQ CX, $128
	JL   g1z_tail
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	MOVQ AX, SI
	MOVQ DX, BX
	MOVQ R8, R11

g1z_k:
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
	ADDQ         R10, BX
	DECQ         R11
	JNZ          g1z_k

	LEAQ 256(DI), BX
	CMPQ accum+48(FP), $0
	JEQ  g1z_store
	ACCROW(DI, Z0, Z1, Z2, Z3)
	ACCROW(BX, Z4, Z5, Z6, Z7)

g1z_store:
	STOREROW(DI, Z0, Z1, Z2, Z3)
	STOREROW(BX, Z4, Z5, Z6, Z7)
	ADDQ $512, DI
	ADDQ $512, DX
	SUBQ $128, CX
	JMP  g1z_tile

	// Fewer than 128 columns left: tiles of up to 64, masked.
g1z_tail:
	TESTQ CX, CX
	JZ    g1z_done
	TAILMASKS512(CX)
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	MOVQ AX, SI
	MOVQ DX, BX
	MOVQ R8, R11

g1z_tk:
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
	ADDQ         R10, BX
	DECQ         R11
	JNZ          g1z_tk

	CMPQ accum+48(FP), $0
	JEQ  g1z_tstore
	ACCROWM(DI, Z0, Z1, Z2, Z3)

g1z_tstore:
	STOREROWM(DI, Z0, Z1, Z2, Z3)
	ADDQ $256, DI
	ADDQ $256, DX
	SUBQ $64, CX
	JG   g1z_tail

g1z_done:
	VZEROUPPER
	RET
