package exporter

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/internal/testenv"
)

// TestBinaryReloadsOnSIGHUPAndStopsOnSIGTERM: the built mamori_exporter
// wires the signals as its unit expects (ExecReload sends SIGHUP, systemd
// stops with SIGTERM), and the GOMAXPROCS governor, which the in-process
// tests cannot see.
func TestBinaryReloadsOnSIGHUPAndStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "mamori_exporter")
	build := exec.Command("go", "build", "-o", bin, "./cmd/mamori_exporter")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := testenv.FreeAddr(t)
	inv := filepath.Join(dir, "inventory.yml")
	writeFile(t, inv, plusInventory)
	out := &testenv.Output{}
	cmd := exec.Command(bin, "--config.file="+inv, "--host.name=testhost", "--web.listen-address="+addr,
		"--path.postfix-spool="+dir)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	r := &running{url: "http://" + addr}
	waitUntil(t, "the exporter serves", out, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if got := thresholdOf(r.scrape(t), "mailq"); got != 200 {
		t.Fatalf("mailq threshold %v, want 200", got)
	}
	// --runtime.adaptive-procs (on by default) runs an idle exporter on one
	// P; scraped every 200 ms, it stays idle.
	if runtime.NumCPU() > 1 && os.Getenv("GOMAXPROCS") == "" {
		for i := 0; ; i++ {
			s := r.scrape(t)["go_sched_gomaxprocs_threads"]
			if len(s) == 1 && s[0].Value == 1 {
				break
			}
			if i == 50 {
				t.Fatalf("go_sched_gomaxprocs_threads %v after 10s, want 1\n%s", s, out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	writeFile(t, inv, plusInventory+"          mailq: {thresholds: {alert: 201}}\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "SIGHUP applies the new threshold", out, func() bool { return thresholdOf(r.scrape(t), "mailq") == 201 })

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, out)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after SIGTERM\n%s", out)
	}
	if !strings.Contains(out.String(), "msg=stopped") {
		t.Errorf("no orderly stop logged:\n%s", out)
	}
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, out *testenv.Output, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s\n%s", what, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
