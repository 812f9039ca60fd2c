package config

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aeserve/aeserve/internal/server"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestPrecedence(t *testing.T) {
	o, err := Parse([]string{"--max-batch", "8", "--role", "decoder"}, env(map[string]string{
		"AESERVE_MAX_BATCH":     "16", // the flag wins
		"AESERVE_ROLE":          "encoder",
		"AESERVE_ADDR":          "127.0.0.1:9999",
		"AESERVE_METRICS_ADDR":  ":9090",
		"AESERVE_MODELS":        "denoise,conv",
		"AESERVE_MAX_WAIT":      "5ms",
		"AESERVE_DOWNLOAD":      "true",
		"AESERVE_WRITE_TIMEOUT": "", // empty is unset
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Server.Batch.MaxBatch != 8 || o.Addr != "127.0.0.1:9999" || o.Server.Batch.MaxWait != 5*time.Millisecond ||
		!o.Download || o.Server.Batch.QueueSize != 1024 || o.MetricsAddr != ":9090" {
		t.Errorf("options %+v", o)
	}
	if o.Role != server.RoleDecoder || o.Server.Role != server.RoleDecoder {
		t.Errorf("role %q (server config %q), want the flag's decoder", o.Role, o.Server.Role)
	}
	if !slices.Equal(o.Models, []string{"denoise", "conv"}) {
		t.Errorf("models %q, want the environment's, in order", o.Models)
	}
	o, err = Parse([]string{"--int8", "conv, denoise"}, env(map[string]string{"AESERVE_INT8": "classifier"}), io.Discard)
	if err != nil || !slices.Equal(o.Int8, []string{"conv", "denoise"}) {
		t.Errorf("--int8 over AESERVE_INT8: %q, %v", o.Int8, err)
	}
	if o.Server.MaxRequestPixels != server.DefaultMaxRequestPixels {
		t.Errorf("max request pixels %d, want the default %d", o.Server.MaxRequestPixels, server.DefaultMaxRequestPixels)
	}
}

func TestDefaults(t *testing.T) {
	o, err := Parse(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Role != server.RoleAll || o.Models != nil || o.Int8 != nil || o.MetricsAddr != "" || o.Addr != ":8080" || o.Weights != "" || o.Version {
		t.Errorf("defaults %+v", o)
	}
	if o.Server.Batch.MaxWait != server.DefaultMaxWait {
		t.Errorf("max wait %v", o.Server.Batch.MaxWait)
	}
	o, err = Parse([]string{"--max-wait", "0"}, env(nil), io.Discard)
	if err != nil || o.Server.Batch.MaxWait >= 0 {
		t.Errorf("--max-wait 0 must mean none (negative for the server): %v, %v", err, o.Server.Batch.MaxWait)
	}
}

// Bad arguments are usage errors (exit 2) that name what is wrong.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown flag", []string{"--nope"}, nil, "nope"},
		{"bad env value", nil, map[string]string{"AESERVE_MAX_IMAGES": "many"}, "AESERVE_MAX_IMAGES"},
		{"unknown role", []string{"--role", "sender"}, nil, `unknown role "sender"`},
		{"unknown role in env", nil, map[string]string{"AESERVE_ROLE": "both"}, "AESERVE_ROLE"},
		{"empty models", []string{"--models", ""}, nil, "empty model name"},
		{"empty name in models", []string{"--models", "conv,,denoise"}, nil, "empty model name"},
		{"trailing comma", []string{"--models", "conv,"}, nil, "empty model name"},
		{"repeated model", []string{"--models", "conv,denoise,conv"}, nil, `"conv" is named twice`},
		{"repeated model in env", nil, map[string]string{"AESERVE_MODELS": "conv, conv"}, "AESERVE_MODELS"},
		{"stray argument", []string{"serve"}, nil, "unexpected arguments"},
		{"empty int8", []string{"--int8", ""}, nil, "empty model name"},
		{"repeated int8", []string{"--int8", "conv,conv"}, nil, `"conv" is named twice`},
		{"int8 model not served", []string{"--models", "conv", "--int8", "conv,denoise"}, nil, `--int8 names model "denoise", which --models (conv) does not serve`},
		{"int8 env model not served", nil, map[string]string{"AESERVE_MODELS": "conv", "AESERVE_INT8": "classifier"}, `--int8 names model "classifier"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.args, env(tc.env), io.Discard)
			if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want a usage error containing %q", err, tc.want)
			}
		})
	}
	if _, err := Parse([]string{"-h"}, env(nil), io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}

// Every flag has its variable, and the usage text says how they are named.
func TestEveryFlagHasAnEnvironmentVariable(t *testing.T) {
	var usage strings.Builder
	fs := FlagSet(&Options{}, &usage)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		v := EnvName(f.Name)
		bogus := "bogus-for-" + f.Name
		_, parsed, err := parse(nil, env(map[string]string{v: bogus}), io.Discard)
		// Bogus values of typed flags fail naming the variable; string
		// flags take it, which must then be the flag's value.
		if err != nil {
			if !strings.Contains(err.Error(), v) {
				t.Errorf("%s: error %v does not name the variable", v, err)
			}
			return
		}
		if got := parsed.Lookup(f.Name).Value.String(); got != bogus {
			t.Errorf("%s=%s left --%s at %q", v, bogus, f.Name, got)
		}
	})
	if n < 25 {
		t.Errorf("only %d flags", n)
	}
	fs.Usage()
	if !strings.Contains(usage.String(), "AESERVE_MAX_BATCH") || !strings.Contains(usage.String(), "-role") {
		t.Errorf("usage text:\n%s", usage.String())
	}
}
