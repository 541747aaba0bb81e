package generate

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/internal/testenv"
)

// repoRoot is the repository, seen from this package's directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// needTool finds a command from Debian's prometheus or
// prometheus-alertmanager package: a skip without it, a failure under CI.
func needTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		testenv.Need(t, "%s not found (apt-get install prometheus prometheus-alertmanager): %v", name, err)
	}
	return path
}

// runTool runs a command in dir (the repository root when empty), bounded
// in time, and returns its combined output.
func runTool(t testing.TB, dir, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if dir == "" {
		dir = repoRoot(t)
	}
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}
