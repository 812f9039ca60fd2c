package vec

import "testing"

// The exported kernels' portable branches (what other architectures run)
// against the assembly, through the same entry points.
func TestPortableBranchesMatchAssembly(t *testing.T) {
	if best < lvlAVX2 {
		t.Skip("no AVX2: the portable branches are all this machine runs, and TestKernelsMatchReference covers them")
	}
	const rows, n, ds, ss = 4, 13, 30, 15
	src := randSlice(newRand(), rows*ss)
	src2 := randSlice(newRand(), rows*ss)
	run := func(path Path) [][]float32 {
		usePath(t, path)
		a, p, il, cp := make([]float32, len(src)), make([]float32, 6), make([]float32, rows*ds), make([]float32, rows*ds)
		AddReLU(a, src, 0.2)
		PoolAddReLURows(p, src, 2, 3, 3, 6, -0.1)
		InterleaveAddReLU(il, src, src2, rows, n, ds, ss, 0.3)
		CopyRows(cp, src, rows, n, ds, ss)
		return [][]float32{a, p, il, cp}
	}
	portable := run(PathGo)
	for _, p := range Supported() {
		asm := run(p)
		for k := range asm {
			sameBits(t, "kernel/"+string(p), k, portable[k], asm[k])
		}
	}
}
