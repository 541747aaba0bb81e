package generate

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedFilesAreCurrent fails when a committed generated file differs
// from what the registry renders: run `make generate`.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	for _, f := range Files() {
		cur, err := os.ReadFile(filepath.Join("..", "..", f.Path))
		if err != nil {
			t.Errorf("%s: %v (run make generate)", f.Path, err)
			continue
		}
		want, err := f.Render(cur)
		if err != nil {
			t.Errorf("%s: %v", f.Path, err)
			continue
		}
		if !bytes.Equal(cur, want) {
			t.Errorf("%s is stale: run make generate", f.Path)
		}
	}
}

func TestSpliceKeepsTheProseAround(t *testing.T) {
	in := []byte("intro\n<!-- BEGIN generated:x -->\nold\n<!-- END generated:x -->\noutro\n")
	out, err := spliceSection("x", func() string { return "new\n" })(in)
	if err != nil {
		t.Fatal(err)
	}
	want := "intro\n<!-- BEGIN generated:x -->\nnew\n<!-- END generated:x -->\noutro\n"
	if string(out) != want {
		t.Fatalf("got %q", out)
	}
	if _, err := spliceSection("y", func() string { return "" })(in); err == nil {
		t.Fatal("missing markers accepted")
	}
}
