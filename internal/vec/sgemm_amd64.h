// Macros shared by the SGEMM kernels (sgemm_amd64.s, sgemm512_amd64.s) and
// the gathered products (gather_amd64.s): the register tiles and their tail
// masks. The kernels differ only in how they find B's next row.

// ---- AVX2: a 4 × 16 tile, sums in Y0–Y7 ----

// TAILMASKS sets Y12 to the lanes of the first lo = min(cnt, 8) columns and
// Y13 to those of the next cnt−lo (cnt ≤ 16); clobbers R11, BX and SI.
#define TAILMASKS(cnt) \
	LEAQ    ·lanemask(SB), R11 \
	MOVQ    cnt, BX \
	MOVQ    $8, SI \
	CMPQ    BX, SI \
	CMOVQGT SI, BX \
	MOVQ    cnt, SI \
	SUBQ    BX, SI \
	NEGQ    BX \
	VMOVDQU 32(R11)(BX*4), Y12 \
	NEGQ    SI \
	VMOVDQU 32(R11)(SI*4), Y13

// ZERO8 clears the 4-row kernel's eight sums.
#define ZERO8 \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	VXORPS Y2, Y2, Y2 \
	VXORPS Y3, Y3, Y3 \
	VXORPS Y4, Y4, Y4 \
	VXORPS Y5, Y5, Y5 \
	VXORPS Y6, Y6, Y6 \
	VXORPS Y7, Y7, Y7

// MUL4x16 adds A[r, k]·B[k, 0:16] (B's row in Y8, Y9) to the sums of rows
// r = 0…3 (A[0, k] at (SI), row strides R9 and R13 = 3·R9), and steps SI to
// k+1; the caller steps B's row.
#define MUL4x16 \
	VBROADCASTSS (SI), Y10 \
	VFMADD231PS  Y8, Y10, Y0 \
	VFMADD231PS  Y9, Y10, Y1 \
	VBROADCASTSS (SI)(R9*1), Y11 \
	VFMADD231PS  Y8, Y11, Y2 \
	VFMADD231PS  Y9, Y11, Y3 \
	VBROADCASTSS (SI)(R9*2), Y10 \
	VFMADD231PS  Y8, Y10, Y4 \
	VFMADD231PS  Y9, Y10, Y5 \
	VBROADCASTSS (SI)(R13*1), Y11 \
	VFMADD231PS  Y8, Y11, Y6 \
	VFMADD231PS  Y9, Y11, Y7 \
	ADDQ         $4, SI

// ---- AVX-512: a 4 × 64 tile, sums in Z0–Z15 ----

// TAILMASKS512 sets K1–K4 to the lanes of the columns [16j, 16j+16) ∩ [0, cnt)
// for j = 0…3 (cnt ≥ 1; BZHI keeps all 64 bits when cnt ≥ 64);
// clobbers R11.
#define TAILMASKS512(cnt) \
	MOVQ     $-1, R11 \
	BZHIQ    cnt, R11, R11 \
	KMOVQ    R11, K1 \
	KSHIFTRQ $16, K1, K2 \
	KSHIFTRQ $32, K1, K3 \
	KSHIFTRQ $48, K1, K4

#define ZERO16 \
	VXORPS Z0, Z0, Z0 \
	VXORPS Z1, Z1, Z1 \
	VXORPS Z2, Z2, Z2 \
	VXORPS Z3, Z3, Z3 \
	VXORPS Z4, Z4, Z4 \
	VXORPS Z5, Z5, Z5 \
	VXORPS Z6, Z6, Z6 \
	VXORPS Z7, Z7, Z7 \
	VXORPS Z8, Z8, Z8 \
	VXORPS Z9, Z9, Z9 \
	VXORPS Z10, Z10, Z10 \
	VXORPS Z11, Z11, Z11 \
	VXORPS Z12, Z12, Z12 \
	VXORPS Z13, Z13, Z13 \
	VXORPS Z14, Z14, Z14 \
	VXORPS Z15, Z15, Z15

// MUL4x64 adds A[r, k]·B[k, 0:64] (B's row in Z16–Z19) to the sums of rows
// r = 0…3 (A[0, k] at (SI), row strides R9 and R13 = 3·R9), and steps SI to
// k+1; the caller steps B's row.
#define MUL4x64 \
	VBROADCASTSS (SI), Z20 \
	VFMADD231PS  Z16, Z20, Z0 \
	VFMADD231PS  Z17, Z20, Z1 \
	VFMADD231PS  Z18, Z20, Z2 \
	VFMADD231PS  Z19, Z20, Z3 \
	VBROADCASTSS (SI)(R9*1), Z21 \
	VFMADD231PS  Z16, Z21, Z4 \
	VFMADD231PS  Z17, Z21, Z5 \
	VFMADD231PS  Z18, Z21, Z6 \
	VFMADD231PS  Z19, Z21, Z7 \
	VBROADCASTSS (SI)(R9*2), Z22 \
	VFMADD231PS  Z16, Z22, Z8 \
	VFMADD231PS  Z17, Z22, Z9 \
	VFMADD231PS  Z18, Z22, Z10 \
	VFMADD231PS  Z19, Z22, Z11 \
	VBROADCASTSS (SI)(R13*1), Z23 \
	VFMADD231PS  Z16, Z23, Z12 \
	VFMADD231PS  Z17, Z23, Z13 \
	VFMADD231PS  Z18, Z23, Z14 \
	VFMADD231PS  Z19, Z23, Z15 \
	ADDQ         $4, SI

#define STOREROW(r, s0, s1, s2, s3) \
	VMOVUPS s0, (r) \
	VMOVUPS s1, 64(r) \
	VMOVUPS s2, 128(r) \
	VMOVUPS s3, 192(r)

#define STOREROWM(r, s0, s1, s2, s3) \
	VMOVUPS s0, K1, (r) \
	VMOVUPS s1, K2, 64(r) \
	VMOVUPS s2, K3, 128(r) \
	VMOVUPS s3, K4, 192(r)
