package vec

import (
	"fmt"
	"strings"
)

// Path names one set of kernels: the portable Go code, the AVX2 assembly, or
// the AVX-512 assembly. Every path computes the same functions; the tests
// force each path this CPU supports and hold it to the Go references.
type Path string

const (
	PathGo     Path = "go"     // portable Go; Sgemm declines, callers use gonum or OpenBLAS
	PathAVX2   Path = "avx2"   // AVX2 + FMA
	PathAVX512 Path = "avx512" // AVX-512 F and BW (with BMI2), and VNNI for int8 where the CPU has it
)

// The paths from the most portable up; level indexes it.
var paths = []Path{PathGo, PathAVX2, PathAVX512}

const (
	lvlGo = iota
	lvlAVX2
	lvlAVX512
)

// best is the highest level this CPU runs; level the one in use. level is
// read on every kernel call and written only by Use, which callers make at
// start-up (or a test between passes), never during a pass.
var level = best

// Supported lists the paths this CPU can run, the fastest first.
func Supported() []Path {
	s := make([]Path, 0, best+1)
	for l := best; l >= lvlGo; l-- {
		s = append(s, paths[l])
	}
	return s
}

// Active reports the path in use: the fastest this CPU supports unless Use
// chose another.
func Active() Path { return paths[level] }

// Use switches every kernel to path p ("auto" or "" for the fastest this CPU
// supports). It fails, changing nothing, for an unknown path or one this CPU
// lacks. It is meant for start-up (the server's --kernels) and for tests and
// benchmarks comparing paths; it must not race with running kernels.
func Use(p Path) error {
	l, err := levelOf(p)
	if err != nil {
		return err
	}
	level = l
	useVNNI = hasVNNI && l >= lvlAVX512 // the int8 products' assembly is AVX-512 too
	return nil
}

// Check reports whether Use(p) would succeed, changing nothing.
func Check(p Path) error {
	_, err := levelOf(p)
	return err
}

func levelOf(p Path) (int, error) {
	if p == "" || p == "auto" {
		return best, nil
	}
	for l, q := range paths {
		if q != p {
			continue
		}
		if l > best {
			return 0, fmt.Errorf("kernels %q: this CPU supports only %s", p, joinPaths(Supported()))
		}
		return l, nil
	}
	return 0, fmt.Errorf("kernels %q: unknown; want auto or one of %s", p, joinPaths(paths))
}

func joinPaths(ps []Path) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}
