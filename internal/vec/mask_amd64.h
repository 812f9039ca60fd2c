// MASK loads into reg the VMASKMOVPS mask enabling the first cnt lanes (cnt
// in 0..8), from ·lanemask (vec_amd64.s); tmp and R11 are clobbered.
#define MASK(cnt, tmp, reg) \
	MOVQ $8, tmp \
	SUBQ cnt, tmp \
	LEAQ ·lanemask(SB), R11 \
	VMOVDQU (R11)(tmp*4), reg
