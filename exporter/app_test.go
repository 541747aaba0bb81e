package exporter

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/mamori-ops/mamori/internal/generate/contract"
	"github.com/mamori-ops/mamori/internal/logging"
)

type running struct {
	app    *App
	url    string
	reload chan os.Signal
}

// start runs the app in-process on a loopback port until the test ends.
func start(t *testing.T, o Options) *running {
	t.Helper()
	logger, slogger, err := logging.New(logging.Config{Level: "error"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.MetricsPath == "" {
		o.MetricsPath = "/metrics"
	}
	if o.ProcRoot == "" {
		o.ProcRoot, o.SysRoot, o.OSRelease = "/proc", "/sys", "/etc/os-release"
	}
	if o.SpoolDir == "" {
		o.SpoolDir = t.TempDir()
	}
	addrs := []string{"127.0.0.1:0"}
	o.Web = &web.FlagConfig{WebListenAddresses: &addrs, WebConfigFile: new(string)}
	a, err := New(o, logger, slogger)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{app: a, url: "http://" + l.Addr().String(), reload: make(chan os.Signal, 1)}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, []net.Listener{l}, r.reload) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return r
}

func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(r.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (r *running) scrape(t *testing.T) map[string][]*model.Sample {
	t.Helper()
	code, body := r.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	dec := expfmt.SampleDecoder{
		Dec:  expfmt.NewDecoder(strings.NewReader(body), expfmt.NewFormat(expfmt.TypeTextPlain)),
		Opts: &expfmt.DecodeOptions{Timestamp: model.Now()},
	}
	out := map[string][]*model.Sample{}
	for {
		var v model.Vector
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		for _, s := range v {
			name := string(s.Metric[model.MetricNameLabel])
			out[name] = append(out[name], s)
		}
	}
	return out
}

// TestEmbeddedDefaultServesTheContract is the first Quick start command: no
// configuration, every host and exporter metric of the contract
// (internal/generate/contract) on /metrics, and nothing else named mamori_.
func TestEmbeddedDefaultServesTheContract(t *testing.T) {
	r := start(t, Options{})
	_, body := r.get(t, "/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range contract.Diff(families, true, contract.HostRole, contract.Exporter) {
		t.Error(d)
	}
	got := r.scrape(t)
	for _, s := range got["mamori_collector_success"] {
		if s.Value != 1 && s.Metric["collector"] != "mailq" {
			t.Errorf("collector %s failed on this machine", s.Metric["collector"])
		}
	}
	services := map[string]bool{}
	for _, s := range got["mamori_process_up"] {
		services[string(s.Metric["service"])] = true
	}
	for _, want := range []string{"httpd", "dovecot", "postfix", "sshd", "xinetd", "mariadb", "rsyslog", "fail2ban", "spamd"} {
		if !services[want] {
			t.Errorf("standard-plan service %s has no mamori_process_up series", want)
		}
	}
	if services["sw-cp-server"] {
		t.Error("Plesk's panel is watched on a machine without Plesk")
	}
}

func TestEndpoints(t *testing.T) {
	r := start(t, Options{})
	for path, want := range map[string]string{"/-/healthy": "Healthy", "/-/ready": "Ready", "/": "mamori_exporter"} {
		if code, body := r.get(t, path); code != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d %q", path, code, body)
		}
	}
	if code, _ := r.get(t, "/-/reload"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %d", code)
	}
}

const plusInventory = `customers:
  - name: acme
    plan: plus
    contacts: [ops@acme.example]
    hosts:
      - name: testhost
        address: 127.0.0.1
        os_family: debian
        checks:
          url: {url: "http://127.0.0.1/"}
`

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func thresholdOf(got map[string][]*model.Sample, check string) float64 {
	for _, s := range got["mamori_threshold"] {
		if string(s.Metric["check"]) == check && s.Metric["level"] == "alert" {
			return float64(s.Value)
		}
	}
	return -1
}

// TestReloadKeepsTheInventoryInForceOnError: SIGHUP and POST /-/reload
// apply a changed threshold; a broken file is refused and changes nothing.
func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.yml")
	writeFile(t, path, plusInventory)
	r := start(t, Options{ConfigFile: path, HostName: "testhost"})
	if got := thresholdOf(r.scrape(t), "mailq"); got != 200 {
		t.Fatalf("mailq threshold %v, want the runbook's 200", got)
	}

	writeFile(t, path, plusInventory+"          mailq: {thresholds: {alert: 201}}\n")
	r.reload <- syscall.SIGHUP
	deadline := time.Now().Add(5 * time.Second)
	for thresholdOf(r.scrape(t), "mailq") != 201 {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not apply the new threshold")
		}
		time.Sleep(20 * time.Millisecond)
	}

	writeFile(t, path, plusInventory+"          mailq: {thresholds: {alert: -5}}\n")
	resp, err := http.Post(r.url+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "inventory.yml:11: customers[0].hosts[0].checks.mailq.thresholds.alert") {
		t.Errorf("broken reload answered %d %q", resp.StatusCode, body)
	}
	got := r.scrape(t)
	if thresholdOf(got, "mailq") != 201 {
		t.Error("a broken inventory replaced the one in force")
	}
	if v := got["mamori_exporter_config_last_reload_successful"]; len(v) != 1 || v[0].Value != 0 {
		t.Errorf("last_reload_successful = %v", v)
	}
}

func TestMalformedInventoryNamesFileLineAndField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.yml")
	writeFile(t, path, strings.Replace(plusInventory, "os_family: debian", "os_family: windows", 1))
	logger := log.NewNopLogger()
	_, err := New(Options{ConfigFile: path, HostName: "testhost", ProcRoot: "/proc"}, logger, nil)
	want := path + `:8: customers[0].hosts[0].os_family: unknown OS family "windows" (want rhel or debian)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestUnknownHostNameIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.yml")
	writeFile(t, path, plusInventory)
	_, err := New(Options{ConfigFile: path, HostName: "nosuchhost", ProcRoot: "/proc"}, log.NewNopLogger(), nil)
	if err == nil || !strings.Contains(err.Error(), `host "nosuchhost" (--host.name) is not in `+path) {
		t.Fatalf("got %v", err)
	}
}

// TestInventorySecretsAreNotRead: the customer's agreed password is the
// remediator's; the exporter starts on a copy of the inventory without its
// file (as on a customer server).
func TestInventorySecretsAreNotRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.yml")
	writeFile(t, path, strings.Replace(plusInventory, "    hosts:",
		"    agreed:\n      mail_password_reset: {password_file: acme-password, command: [reset, '{account}']}\n    hosts:", 1))
	if _, err := New(Options{ConfigFile: path, HostName: "testhost", ProcRoot: "/proc"}, log.NewNopLogger(), nil); err != nil {
		t.Fatalf("the exporter needs the remediator's secret file: %v", err)
	}
}
