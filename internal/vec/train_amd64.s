#include "textflag.h"
#include "mask_amd64.h"

// Kernels of the training graph's backward pass (train.go), AVX2.

// ·oddLanes: all ones in lanes 1, 3, 5, 7 (the second of each pair).
DATA ·oddLanes+0(SB)/8, $0xffffffff00000000
DATA ·oddLanes+8(SB)/8, $0xffffffff00000000
DATA ·oddLanes+16(SB)/8, $0xffffffff00000000
DATA ·oddLanes+24(SB)/8, $0xffffffff00000000
GLOBL ·oddLanes(SB), RODATA|NOPTR, $32

// ·pairIdx: VPERMPS indices repeating lanes 0–3 in pairs.
DATA ·pairIdx+0(SB)/8, $0x0000000000000000
DATA ·pairIdx+8(SB)/8, $0x0000000100000001
DATA ·pairIdx+16(SB)/8, $0x0000000200000002
DATA ·pairIdx+24(SB)/8, $0x0000000300000003
GLOBL ·pairIdx(SB), RODATA|NOPTR, $32

// ROUTE takes four windows, x rows 2r and 2r+1 in Y0 and Y1 (a window's a b
// and c d in a lane pair) and their four dy in lanes 0–3 of Y2, and leaves
// the two dx rows in Y0 and Y1. The maximum m is max(x0, x1) lane by lane,
// then against the pair swapped (VPERMILPS $0xB1). The gradient goes where
// the Go loop sends it, to the first maximum in a, b, c, d order:
//   a: a==m        b: b==m, a!=m        c: c==m, a!=m, b!=m
//   d: a!=m, b!=m, c!=m (so d takes it when no other does).
// With relu (Y9 zero) it goes nowhere when m is 0; without (Y9 all ones)
// it always goes. Go operand order is Intel's reversed.
#define ROUTE \
	VPERMPS   Y2, Y14, Y2 \
	VMAXPS    Y1, Y0, Y3 \
	VPERMILPS $0xB1, Y3, Y4 \
	VMAXPS    Y4, Y3, Y3 \
	VCMPPS    $0x1E, Y13, Y3, Y4 \
	VORPS     Y9, Y4, Y4 \
	VANDPS    Y4, Y2, Y2 \
	VCMPPS    $0, Y3, Y0, Y5 \
	VCMPPS    $0, Y3, Y1, Y6 \
	VPERMILPS $0xB1, Y5, Y7 \
	VANDPS    Y15, Y7, Y8 \
	VANDNPS   Y5, Y8, Y0 \
	VORPS     Y7, Y5, Y5 \
	VPERMILPS $0xB1, Y6, Y7 \
	VXORPS    Y10, Y7, Y7 \
	VBLENDVPS Y15, Y7, Y6, Y6 \
	VANDNPS   Y6, Y5, Y1 \
	VANDPS    Y2, Y0, Y0 \
	VANDPS    Y2, Y1, Y1

// func maxPool2GradAVX2(x, dy, dx *float32, rows, n int, relu bool)
TEXT ·maxPool2GradAVX2(SB), NOSPLIT, $0-41
	MOVQ     x+0(FP), DI
	MOVQ     dy+8(FP), SI
	MOVQ     dx+16(FP), DX
	MOVQ     rows+24(FP), R8
	MOVQ     n+32(FP), R9
	MOVBQZX  relu+40(FP), R10
	LEAQ     (R9*8), BX           // input row length in bytes: 2n floats
	VMOVDQU  ·oddLanes(SB), Y15
	VMOVDQU  ·pairIdx(SB), Y14
	VXORPS   Y13, Y13, Y13
	VPCMPEQD Y10, Y10, Y10        // all ones
	VMOVAPS  Y10, Y9
	TESTQ    R10, R10
	JZ       mpg_masks
	VXORPS   Y9, Y9, Y9

mpg_masks:
	MOVQ R9, AX
	ANDQ $3, AX                   // windows in a row's last, partial step
	MOVQ AX, CX
	MASK(CX, R12, Y11)            // its dy lanes
	SHLQ $1, AX
	MASK(AX, R12, Y12)            // its x and dx lanes

mpg_row:
	TESTQ R8, R8
	JZ    mpg_done
	MOVQ  DI, AX                  // x row 2r
	MOVQ  SI, R12                 // dy row r
	MOVQ  DX, R13                 // dx row 2r
	MOVQ  R9, CX

mpg_step:
	CMPQ    CX, $4
	JL      mpg_tail
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(BX*1), Y1
	VMOVUPS (R12), X2
	ROUTE
	VMOVUPS Y0, (R13)
	VMOVUPS Y1, (R13)(BX*1)
	ADDQ    $32, AX
	ADDQ    $16, R12
	ADDQ    $32, R13
	SUBQ    $4, CX
	JMP     mpg_step

mpg_tail:
	TESTQ      CX, CX
	JZ         mpg_next
	VMASKMOVPS (AX), Y12, Y0
	VMASKMOVPS (AX)(BX*1), Y12, Y1
	VMASKMOVPS (R12), Y11, Y2
	ROUTE
	VMASKMOVPS Y0, Y12, (R13)
	VMASKMOVPS Y1, Y12, (R13)(BX*1)

mpg_next:
	LEAQ (DI)(BX*2), DI
	LEAQ (DX)(BX*2), DX
	LEAQ (SI)(R9*4), SI
	DECQ R8
	JMP  mpg_row

mpg_done:
	VZEROUPPER
	RET

// func sumAVX2(v *float32, n int) float32
//
// Four vectors of partial sums, then folded: the order differs from the
// Go loop's eight scalar sums, so the result may differ in the last bits.
TEXT ·sumAVX2(SB), NOSPLIT, $0-20
	MOVQ   v+0(FP), SI
	MOVQ   n+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

sum_32:
	CMPQ   CX, $32
	JL     sum_8
	VADDPS (SI), Y0, Y0
	VADDPS 32(SI), Y1, Y1
	VADDPS 64(SI), Y2, Y2
	VADDPS 96(SI), Y3, Y3
	ADDQ   $128, SI
	SUBQ   $32, CX
	JMP    sum_32

sum_8:
	CMPQ   CX, $8
	JL     sum_tail
	VADDPS (SI), Y0, Y0
	ADDQ   $32, SI
	SUBQ   $8, CX
	JMP    sum_8

sum_tail:
	MASK(CX, DX, Y4)
	VMASKMOVPS (SI), Y4, Y5
	VADDPS     Y5, Y1, Y1
	VADDPS     Y1, Y0, Y0
	VADDPS     Y3, Y2, Y2
	VADDPS     Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS     X1, X0, X0
	VMOVHLPS   X0, X0, X1
	VADDPS     X1, X0, X0
	VMOVSHDUP  X0, X1
	VADDSS     X1, X0, X0
	VMOVSS     X0, ret+16(FP)
	VZEROUPPER
	RET

// func reluGradAVX2(dst, y, dy *float32, n int)
//
// dst = dy where y (a ReLU's output, ≥ +0) is not +0, else +0: y's bits
// compared with zero as integers, so the mask is exactly the Go loop's.
TEXT ·reluGradAVX2(SB), NOSPLIT, $0-32
	MOVQ   dst+0(FP), DI
	MOVQ   y+8(FP), SI
	MOVQ   dy+16(FP), DX
	MOVQ   n+24(FP), CX
	VPXOR  Y15, Y15, Y15

rg_loop:
	CMPQ     CX, $8
	JL       rg_tail
	VPCMPEQD (SI), Y15, Y0        // all ones where y is +0
	VANDNPS  (DX), Y0, Y0         // dy where it is not
	VMOVUPS  Y0, (DI)
	ADDQ     $32, SI
	ADDQ     $32, DX
	ADDQ     $32, DI
	SUBQ     $8, CX
	JMP      rg_loop

rg_tail:
	TESTQ      CX, CX
	JZ         rg_done
	MASK(CX, AX, Y3)
	VMASKMOVPS (SI), Y3, Y1
	VMASKMOVPS (DX), Y3, Y2
	VPCMPEQD   Y1, Y15, Y0
	VANDNPS    Y2, Y0, Y0
	VMASKMOVPS Y0, Y3, (DI)

rg_done:
	VZEROUPPER
	RET
