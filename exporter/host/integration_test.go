package host

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/internal/testenv"
	"github.com/mamori-ops/mamori/inventory"
	"github.com/mamori-ops/mamori/runbook"
)

// realTarget is the embedded default on this machine: the standard plan's
// services (Plesk's panel is not installed here) under Debian's names.
func realTarget(t *testing.T) *Target {
	inv := inventory.Default("itest", runbook.Debian, func(string) bool { return false })
	h, _ := inv.Host("itest")
	return TargetFor(h)
}

func realCollector(t *testing.T) *Collector {
	return New(Options{ProcRoot: "/proc", SysRoot: "/sys", SpoolDir: "/var/spool/postfix"}, realTarget(t))
}

func requireRoot(t *testing.T) {
	t.Helper()
	testenv.RequireIntegration(t)
	if os.Geteuid() != 0 {
		testenv.Need(t, "integration tests start and stop daemons: run as root")
	}
}

// TestRealDaemonsAreUp needs the daemons `make test` starts
// (scripts/setup-test.sh): every standard-plan service reads 1.
func TestRealDaemonsAreUp(t *testing.T) {
	requireRoot(t)
	c := realCollector(t)
	for _, s := range realTarget(t).Services {
		if value(t, c, "mamori_process_up", s.Service) != 1 {
			testenv.Need(t, "service %s is not running: run scripts/setup-test.sh", s.Service)
		}
		if value(t, c, "mamori_processes", s.Service) < 1 {
			t.Errorf("%s: up but no processes counted", s.Service)
		}
	}
}

// TestStoppedApacheReadsZero stops the real apache2: the httpd series
// reads 0 on the next scrape, and is 0, not missing, for an exporter that
// starts while apache2 is down.
func TestStoppedApacheReadsZero(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("apache2ctl"); err != nil {
		testenv.Need(t, "apache2 not installed")
	}
	c := realCollector(t)
	if value(t, c, "mamori_process_up", "httpd") != 1 {
		testenv.Need(t, "apache2 is not running: run scripts/setup-test.sh")
	}
	service(t, "apache2", "stop")
	t.Cleanup(func() { service(t, "apache2", "start") })

	if got := value(t, c, "mamori_process_up", "httpd"); got != 0 {
		t.Errorf("after service apache2 stop, the next scrape reads httpd %v", got)
	}
	fresh := realCollector(t)
	if got := value(t, fresh, "mamori_process_up", "httpd"); got != 0 {
		t.Errorf("an exporter started while apache2 is down reads httpd %v", got)
	}
	if got := value(t, fresh, "mamori_processes", "httpd"); got != 0 {
		t.Errorf("processes = %v", got)
	}

	service(t, "apache2", "start")
	deadline := time.Now().Add(10 * time.Second)
	for value(t, fresh, "mamori_process_up", "httpd") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("httpd did not read 1 within 10 s of service apache2 start")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func service(t *testing.T, name, action string) {
	t.Helper()
	cmd := exec.Command("service", name, action)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("service %s %s: %v\n%s", name, action, err, out)
	}
}
