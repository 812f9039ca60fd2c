package model

import (
	"io/fs"
	"testing"

	"github.com/aeserve/aeserve/weights"
)

// embeddedModels lists the models shipped in weights/.
func embeddedModels(t testing.TB) []string {
	t.Helper()
	entries, err := fs.ReadDir(weights.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) < 2 {
		t.Fatalf("embedded models: %v", names)
	}
	return names
}
