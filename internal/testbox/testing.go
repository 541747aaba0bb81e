package testbox

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/internal/testenv"
)

// Require ends the test (a skip, or a failure under CI=true) unless a box
// can run here: root, systemd-nspawn, ip, nft, nsenter, unshare, tar, and
// the Debian services a box runs.
func Require(t testing.TB) {
	t.Helper()
	if err := checkTools(); err != nil {
		testenv.Need(t, "%v", err)
	}
	if _, err := os.Stat("/lib/systemd/systemd"); err != nil {
		testenv.Need(t, "testbox needs systemd installed (/lib/systemd/systemd): %v", err)
	}
	lower := os.DirFS("/")
	for _, u := range DefaultUnits() {
		if u == "sw-cp-server.service" {
			continue // the box brings its own
		}
		if err := enable(&plan{}, u, lower, nil); err != nil {
			testenv.Need(t, "testbox: %v (scripts/setup-test.sh installs the services)", err)
		}
	}
}

// StartT is Start for a test: it calls Require, fails the test when the box
// does not boot, and stops the box at the end of the test, after logging
// the box's failed units and console when the test failed.
func StartT(t testing.TB, o Options) *Box {
	t.Helper()
	Require(t)
	b, err := Start(t.Context(), o)
	if err != nil {
		t.Fatalf("testbox: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			failed, err := b.Exec(ctx, "systemctl", "--failed", "--no-legend", "--plain")
			cancel()
			t.Logf("box %s: failed units (%v):\n%s\nconsole:\n%s", b.Name, err, failed, b.consoleTail(40))
		}
		if err := b.Stop(); err != nil {
			t.Errorf("testbox: %v", err)
		}
	})
	t.Logf("box %s at %s: ssh after %s, booted after %s", b.Name, b.Addr, b.Timings.SSH.Round(time.Millisecond), b.Timings.Booted.Round(time.Millisecond))
	return b
}
