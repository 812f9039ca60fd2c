package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Weights damaged in other ways than TestCorruptWeights' flipped byte stop
// the server too, with an error naming the file and the problem (main exits
// 1 with it: TestExitStatus).
func TestDamagedWeights(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		damage     func([]byte) []byte
		want       string
	}{
		{"truncated weights", "decoder.aew", func(b []byte) []byte { return b[:len(b)/3] }, "checksum"},
		{"empty weights", "encoder.aew", func([]byte) []byte { return nil }, "checksum"},
		{"truncated manifest", "manifest.json", func(b []byte) []byte { return b[:len(b)/2] }, "malformed manifest"},
		{"manifest of another format", "manifest.json", func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"format": "aeserve-weights/2"`, `"format": "aeserve-weights/9"`, 1))
		}, `format "aeserve-weights/9"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyModel(t, "conv", dir)
			f := filepath.Join(dir, "conv", tc.file)
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, tc.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			// Bounded: a server that starts despite the damage would
			// otherwise serve until the test's end.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			err = run(ctx, []string{"--addr", "127.0.0.1:0", "--weights", dir}, env(nil), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.file) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s and %q", err, tc.file, tc.want)
			}
		})
	}
}
