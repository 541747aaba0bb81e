package generate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/internal/generate/contract"
	"github.com/mamori-ops/mamori/internal/testenv"
	"github.com/mamori-ops/mamori/runbook"
)

// endToEndPrometheus is deploy/prometheus.yml's source with 1s intervals,
// pointed at one exporter on a loopback port and at the repository's rules.
func endToEndPrometheus(root, exporter string, hostPort int) promConfig {
	return promConfig{
		ScrapeInterval:     time.Second,
		EvaluationInterval: time.Second,
		ProbeTimeout:       time.Second,
		SDRefresh:          time.Second,
		Prober:             exporter,
		HostPort:           hostPort,
		RuleFiles:          []string{filepath.Join(root, "rules", "*.rules.yml")},
	}
}

const (
	e2eCustomer = "e2e"
	e2eHost     = "e2e-web"
)

// TestEndToEndHTTPAlertFires runs the built mamori_exporter and Debian's
// Prometheus with the generated configuration and rules, stops apache2, and
// waits for MamoriHttpDown in Prometheus's /api/v1/alerts within the time
// the README documents: for + scrape interval + evaluation interval (+ the
// probe timeout).
func TestEndToEndHTTPAlertFires(t *testing.T) {
	testenv.RequireIntegration(t)
	root := repoRoot(t)
	promBin := needTool(t, "prometheus")
	if _, err := exec.LookPath("service"); err != nil {
		testenv.Need(t, "no service command to stop apache2: %v", err)
	}
	if _, err := os.Stat("/usr/sbin/apache2"); err != nil {
		testenv.Need(t, "apache2 is not installed (make setup-test): %v", err)
	}
	dir := t.TempDir()

	// The exporter, built from this checkout.
	goBin, err := exec.LookPath("go")
	if err != nil {
		testenv.Need(t, "no go command to build mamori_exporter: %v", err)
	}
	exporterBin := filepath.Join(dir, "mamori_exporter")
	if out, err := runTool(t, root, goBin, "build", "-o", exporterBin, "./exporter/cmd/mamori_exporter"); err != nil {
		t.Fatalf("mamori_exporter does not build: %v\n%s", err, out)
	}
	inv := filepath.Join(dir, "inventory.yml")
	if err := os.WriteFile(inv, []byte(e2eInventory()), 0o644); err != nil {
		t.Fatal(err)
	}
	exporterAddr := testenv.FreeAddr(t)
	_, portText, _ := net.SplitHostPort(exporterAddr)
	hostPort, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatal(err)
	}
	start(t, dir, "exporter", exporterBin, "--config.file="+inv, "--host.name="+e2eHost,
		"--web.listen-address="+exporterAddr, "--log.level=debug")
	waitHTTP(t, "http://"+exporterAddr+"/-/ready", 20*time.Second)
	for _, path := range []string{contract.SDPath, contract.ProbePath + "?target=" + e2eHost} {
		if code := httpStatus(t, "http://"+exporterAddr+path); code == http.StatusNotFound {
			testenv.Need(t, "mamori_exporter serves no %s yet (the probe role): this test cannot run", path)
		}
	}

	// apache2 as the test found it, restored at the end.
	wasRunning := exec.Command("service", "apache2", "status").Run() == nil
	t.Cleanup(func() {
		if wasRunning {
			_ = serviceCmd("apache2", "start")
		}
	})
	if err := serviceCmd("apache2", "start"); err != nil {
		t.Fatalf("service apache2 start: %v", err)
	}
	waitTCP(t, "127.0.0.1:80", 20*time.Second)

	// Prometheus with the short-interval copy of deploy/prometheus.yml.
	cfg := endToEndPrometheus(root, exporterAddr, hostPort)
	raw, err := cfg.render()
	if err != nil {
		t.Fatal(err)
	}
	promCfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promCfg, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := testenv.FreeAddr(t)
	start(t, dir, "prometheus", promBin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=info")
	api := "http://" + promAddr
	waitHTTP(t, api+"/-/ready", 30*time.Second)

	// The relabelling gives both roles' series instance, customer and host.
	want := map[string]string{"customer": e2eCustomer, "host": e2eHost, "instance": e2eHost}
	waitSeries(t, api, `mamori_probe_success{check="http"} == 1`, contract.JobProbe, want, 30*time.Second)
	waitSeries(t, api, `mamori_process_up{service="httpd"} == 1`, contract.JobHost, want, 30*time.Second)

	httpCheck, _ := runbook.CheckByID("http")
	limit := httpCheck.For + cfg.ScrapeInterval + cfg.EvaluationInterval + cfg.ProbeTimeout
	stopped := time.Now()
	if err := serviceCmd("apache2", "stop"); err != nil {
		t.Fatalf("service apache2 stop: %v", err)
	}
	alert := alertName(httpCheck)
	firing := waitAlert(t, api, alert, true, limit+30*time.Second)
	elapsed := time.Since(stopped)
	t.Logf("%s firing %s after apache2 stopped (documented bound %s): labels %v", alert, elapsed.Round(100*time.Millisecond), limit, firing)
	if elapsed > limit+3*time.Second {
		t.Errorf("%s fired after %s, beyond the documented %s", alert, elapsed, limit)
	}
	for k, v := range map[string]string{"check": "http", "service": "httpd", "remediate": "true", "severity": httpCheck.Severity,
		"customer": e2eCustomer, "host": e2eHost} {
		if firing[k] != v {
			t.Errorf("alert label %s = %q, want %q", k, firing[k], v)
		}
	}

	// And it resolves once the web server is back.
	if err := serviceCmd("apache2", "start"); err != nil {
		t.Fatalf("service apache2 start: %v", err)
	}
	waitAlert(t, api, alert, false, 30*time.Second)
}

// e2eInventory is this machine as the only host, with only the http check
// on: the probe scrape stays within the 1s timeout.
func e2eInventory() string {
	var off []string
	for _, c := range runbook.Checks() {
		if c.ID != "http" {
			off = append(off, c.ID)
		}
	}
	return fmt.Sprintf(`customers:
  - name: %s
    plan: standard
    language: en
    contacts: [root@localhost]
    hosts:
      - name: %s
        address: 127.0.0.1
        os_family: debian
        service_manager: sysv
        disable: [%s]
`, e2eCustomer, e2eHost, strings.Join(off, ", "))
}

// serviceCmd runs `service NAME ACTION` with its stdio detached (daemons
// keep the caller's stderr open otherwise).
func serviceCmd(name, action string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "service", name, action)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	return cmd.Run()
}

// start runs a daemon for the test's duration, its output kept in dir and
// shown when the test fails; it is stopped with SIGTERM, then killed.
func start(t *testing.T, dir, name, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
		if t.Failed() {
			if out, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s log:\n%s", name, tail(string(out), 60))
			}
		}
	})
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func httpStatus(t *testing.T, u string) int {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// poll calls f every 250ms until it reports done or d has passed.
func poll(d time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func waitHTTP(t *testing.T, u string, d time.Duration) {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	if !poll(d, func() bool {
		resp, err := c.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("%s not ready within %s", u, d)
	}
}

func waitTCP(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	if !poll(d, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}) {
		t.Fatalf("nothing listens on %s within %s", addr, d)
	}
}

func getJSON(u string, v any) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitSeries waits until query returns a series of job with the labels want.
func waitSeries(t *testing.T, api, query, job string, want map[string]string, d time.Duration) {
	t.Helper()
	var last any
	if !poll(d, func() bool {
		var r struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := getJSON(api+"/api/v1/query?query="+url.QueryEscape(query), &r); err != nil {
			last = err
			return false
		}
		last = r.Data.Result
		for _, s := range r.Data.Result {
			ok := s.Metric["job"] == job
			for k, v := range want {
				ok = ok && s.Metric[k] == v
			}
			if ok {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no %s series of job %s with %v within %s; last answer: %v", query, job, want, d, last)
	}
}

// waitAlert waits until Prometheus reports the alert of the e2e host
// firing (or, with firing false, no longer reports it) and returns its labels.
func waitAlert(t *testing.T, api, name string, firing bool, d time.Duration) map[string]string {
	t.Helper()
	var found map[string]string
	var last any
	if !poll(d, func() bool {
		var r struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
					State  string            `json:"state"`
				} `json:"alerts"`
			} `json:"data"`
		}
		if err := getJSON(api+"/api/v1/alerts", &r); err != nil {
			last = err
			return false
		}
		last = r.Data.Alerts
		found = nil
		for _, a := range r.Data.Alerts {
			if a.Labels["alertname"] == name && a.Labels["host"] == e2eHost && a.State == "firing" {
				found = a.Labels
			}
		}
		return (found != nil) == firing
	}) {
		t.Fatalf("alert %s firing=%v not reached within %s; last answer: %v", name, firing, d, last)
	}
	return found
}
