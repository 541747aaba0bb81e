// Package testenv is what tests share about their environment: what a test
// does when the real thing it needs is missing (skip on a laptop, fail in
// CI, where CI=true), and the plumbing of tests that start binaries.
package testenv

import (
	"os"
	"testing"
)

// RequireIntegration skips a test that drives real daemons unless
// MAMORI_INTEGRATION=1. Under CI too it is the Makefile that turns them on
// (`make test` sets it and starts the daemons; `make unit` does not), so a
// plain `go test` stays a unit run everywhere.
func RequireIntegration(t testing.TB) {
	t.Helper()
	if os.Getenv("MAMORI_INTEGRATION") != "1" {
		t.Skip("integration test: run `make test` or set MAMORI_INTEGRATION=1")
	}
}

// Need reports a missing prerequisite: a skip normally, a failure under
// CI=true, where nothing may be skipped.
func Need(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and a prerequisite is missing: "+format, args...)
	}
	t.Skipf(format, args...)
}
