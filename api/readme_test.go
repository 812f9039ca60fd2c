package api_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every Go block of README is quoted from an Example that go test builds and
// runs against a real server, so none can stop compiling unnoticed: each
// block's lines must appear, in order and together, in an example file.
func TestREADMEGoBlocksAreExamples(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var examples []string
	for _, f := range []string{"example_test.go", filepath.Join("oip", "example_test.go")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		examples = append(examples, normalize(string(b)))
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("README has no Go block")
	}
	for _, b := range blocks {
		block := normalize(b[1])
		found := false
		for _, e := range examples {
			found = found || strings.Contains(e, block)
		}
		if !found {
			t.Errorf("README's Go block is not quoted from an Example:\n%s", b[1])
		}
	}
}

// normalize trims each line, so that indentation does not matter.
func normalize(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}
