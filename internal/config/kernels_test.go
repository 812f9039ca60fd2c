package config

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aeserve/aeserve/internal/vec"
)

// --kernels takes auto or a path this CPU runs, from the flag or
// AESERVE_KERNELS; anything else is a usage error naming what is possible.
// Parsing only records the choice: the server applies it.
func TestKernelsFlag(t *testing.T) {
	before := vec.Active()
	cases := []struct {
		args []string
		env  string
		want vec.Path
		err  string
	}{
		{want: ""},
		{args: []string{"--kernels", "auto"}, want: "auto"},
		{args: []string{"--kernels", "go"}, want: vec.PathGo},
		{env: "go", want: vec.PathGo},
		{args: []string{"--kernels", "go"}, env: "sse", want: vec.PathGo}, // the flag wins
		{args: []string{"--kernels", "sse"}, err: "unknown"},
		{args: []string{"--kernels", "AVX2"}, err: "unknown"},
		{env: "avx1024", err: "AESERVE_KERNELS"},
	}
	for _, p := range vec.Supported() {
		cases = append(cases, struct {
			args []string
			env  string
			want vec.Path
			err  string
		}{args: []string{"--kernels", string(p)}, want: p})
	}
	for _, c := range cases {
		o, err := Parse(c.args, env(map[string]string{"AESERVE_KERNELS": c.env}), io.Discard)
		if c.err != "" {
			if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q env %q: error %v, want a usage error mentioning %q", c.args, c.env, err, c.err)
			}
			continue
		}
		if err != nil || o.Kernels != c.want {
			t.Errorf("%q env %q: %v, kernels %q, want %q", c.args, c.env, err, o.Kernels, c.want)
		}
	}
	if vec.Active() != before {
		t.Errorf("parsing changed the kernels in use to %s", vec.Active())
	}
}
