package remediator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/mamori-ops/mamori/internal/logging"
	"github.com/mamori-ops/mamori/internal/testenv"
	"github.com/mamori-ops/mamori/inventory"
	"github.com/mamori-ops/mamori/remediator/internal/smtptest"
	"github.com/mamori-ops/mamori/remediator/internal/sshtest"
	"github.com/mamori-ops/mamori/remediator/journal"
)

const (
	testToken = "webhook-token-7f3a"
	webHost   = "web1.acme.example"
	// psApache is what ps shows of a running apache2.
	psApache = "Ss apache2 /usr/sbin/apache2 -k start"
	psSSHD   = "Ss sshd sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"
	psMaster = "Ss master /usr/lib/postfix/sbin/master -w"
)

// env is a remediator running in-process against an in-process SSH server
// that runs a fake host's tools, an in-process SMTP receiver and a fake
// prober that sees the fake host's units.
type env struct {
	t      *testing.T
	dir    string
	fake   *sshtest.FakeHost
	ssh    *sshtest.Server
	smtp   *smtptest.Server
	prober *fakeProber
	app    *App
	url    string
	logs   *testenv.Output

	cfgPath string
	invPath string
	stop    func()
}

type envOptions struct {
	// config replaces parts of the base configuration: key → YAML text
	// inserted at the top level (budgets, ladder, dry_run, ...).
	config map[string]string
	// inventoryHost adds YAML to web1's host entry.
	inventoryHost string
	// pinnedKey makes the SSH server present a key other than the pinned one.
	changedKey bool
	// sshUp, when set, decides whether the SSH server accepts connections.
	sshUp func(*sshtest.FakeHost) bool
	// noStart builds the files but does not start the app.
	noStart bool
	smtp    smtptest.Options
}

// fakeProber re-probes by looking at the fake host's units.
type fakeProber struct {
	fake *sshtest.FakeHost
	mu   sync.Mutex
	down map[string]bool
	n    int
}

func (p *fakeProber) Reprobe(_ context.Context, h *inventory.Host, hc inventory.HostCheck) ProbeResult {
	p.mu.Lock()
	p.n++
	down := p.down[hc.ID]
	p.mu.Unlock()
	if down {
		return ProbeResult{Reason: "timeout", Err: errors.New("forced down")}
	}
	if hc.Service != "" && !p.fake.Active(h.Unit(hc.Service)) {
		return ProbeResult{Reason: "refused", Err: errors.New("connection refused")}
	}
	return ProbeResult{Success: true}
}

func (p *fakeProber) setDown(check string, down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down[check] = down
}

func baseConfig() map[string]string {
	return map[string]string{
		"workers": "workers: 4",
		"budgets": "budgets:\n  restarts: {max: 3, window: 1h}\n  reboots: {max: 1, window: 6h}\n  concurrent_actions: 5",
		"ladder": `ladder:
  command_timeout: 10s
  kill_after: 1s
  connect_timeout: 2s
  handshake_timeout: 2s
  out_of_band_timeout: 10s
  probe_timeout: 2s
  verify_delay: 10ms
  verify_interval: 50ms
  verify_attempts: 3
  reboot_wait: 1s
  shutdown_grace: 2s`,
		"dry_run":  "dry_run: false",
		"external": "external_url: http://remediator.test:9797/",
	}
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), fake: sshtest.NewFakeHost(t), logs: &testenv.Output{}}
	e.prober = &fakeProber{fake: e.fake, down: map[string]bool{}}
	e.fake.Unit(t, "apache2", psApache, true)
	e.fake.Unit(t, "ssh", psSSHD, true)
	e.fake.Unit(t, "postfix", psMaster, true)
	sopts := sshtest.Options{Env: e.fake.Env()}
	if o.sshUp != nil {
		fake := e.fake
		sopts.Up = func() bool { return o.sshUp(fake) }
	}
	if o.changedKey {
		sopts.PinnedKey = sshtest.NewHostKey(t).PublicKey()
	}
	e.ssh = sshtest.Start(t, sopts)
	e.smtp = smtptest.Start(t, o.smtp)

	// What the real prober of the built binary sees of web1's http check:
	// 200 while the fake apache2 runs, 503 otherwise.
	fake := e.fake
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !fake.Active("apache2") {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(web.Close)
	webPort := web.Listener.Addr().(*net.TCPAddr).Port

	console := e.fake.Console(t)
	inv := fmt.Sprintf(`defaults:
  os_family: debian
  ssh:
    port: %d
    user: root
    key_file: %s
    known_hosts_file: %s
customers:
  - name: acme
    plan: plus
    language: ja
    contacts: [ops@acme.example]
    agreed:
      mail_password_reset:
        password: agreed-new-password
        command: [mailpasswd, "{account}"]
    hosts:
      - name: %s
        address: 127.0.0.1
        out_of_band:
          console: [%s]
          power_cycle: [%s, systemctl, reboot]
        checks:
          load: {thresholds: {restart: 1}, offender: httpd}
          url: {url: "http://127.0.0.1:1/shop/"}
          http: {port: %d}
%s
      - name: web2.acme.example
        address: 127.0.0.1
        disable: [url]
  - name: kobayashi
    language: en
    contacts: [it@kobayashi.example]
    hosts:
      - name: mail.kobayashi.example
        address: 127.0.0.1
        service_manager: sysv
`, e.ssh.Port, e.ssh.KeyFile, e.ssh.KnownHosts, webHost, console, console, webPort, indent(o.inventoryHost, "        "))
	e.invPath = filepath.Join(e.dir, "inventory.yml")
	if err := os.WriteFile(e.invPath, []byte(inv), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig()
	for k, v := range o.config {
		cfg[k] = v
	}
	smtpTLS := "none"
	if o.smtp.TLS {
		smtpTLS = "starttls\n  ca_file: " + e.smtp.CAFile
	}
	var b strings.Builder
	fmt.Fprintf(&b, "inventory_file: inventory.yml\njournal:\n  path: %s\n", filepath.Join(e.dir, "journal.db"))
	fmt.Fprintf(&b, "webhook:\n  bearer_token: %s\n", testToken)
	fmt.Fprintf(&b, "mail:\n  smarthost: %s\n  from: \"mamori <mamori@example.com>\"\n  tls: %s\n  timeout: 5s\n  retry: {initial: 100ms, max: 200ms, give_up_after: 1h}\n", e.smtp.Addr, smtpTLS)
	if o.smtp.Username != "" {
		fmt.Fprintf(&b, "  username: %s\n  password: %s\n", o.smtp.Username, o.smtp.Password)
	}
	b.WriteString("operators:\n  emails: [noc@mamori.example]\n  language: en\n")
	for _, k := range sortedKeys(cfg) {
		b.WriteString(cfg[k] + "\n")
	}
	e.cfgPath = filepath.Join(e.dir, "remediator.yml")
	if err := os.WriteFile(e.cfgPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if !o.noStart {
		e.start()
	}
	return e
}

func indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

// start runs the app on a loopback port until the test ends.
func (e *env) start() {
	t := e.t
	t.Helper()
	logger, slogger, err := logging.New(logging.Config{Level: "debug"}, e.logs)
	if err != nil {
		t.Fatal(err)
	}
	addrs := []string{"127.0.0.1:0"}
	a, err := New(Options{ConfigFile: e.cfgPath, Web: &web.FlagConfig{WebListenAddresses: &addrs, WebConfigFile: new(string)},
		Reprober: e.prober, Tick: 50 * time.Millisecond, Owner: "test"}, logger, slogger)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, []net.Listener{l}, nil) }()
	e.app, e.url = a, "http://"+l.Addr().String()
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			t.Logf("remediator log:\n%s", e.logs.String())
		}
	})
}

// post sends a webhook body with the token.
func (e *env) post(body []byte) (int, intakeAnswer) {
	return e.postAuth(body, "Bearer "+testToken)
}

func (e *env) postAuth(body []byte, auth string) (int, intakeAnswer) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+WebhookPath, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans intakeAnswer
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &ans)
	return resp.StatusCode, ans
}

func (e *env) get(path string) (int, string) {
	e.t.Helper()
	resp, err := http.Get(e.url + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// wait polls the journal until the incident is done.
func (e *env) wait(id int64) (*journal.Incident, []journal.Step, []journal.Email) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		inc, steps, emails, err := e.app.Journal().Incident(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if inc.State == journal.Done {
			return inc, steps, emails
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("incident %d still %s after 20s; steps %s", id, inc.State, summary(steps))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// summary renders steps as "check:unhealthy restart:done ...".
func summary(steps []journal.Step) string {
	parts := make([]string, 0, len(steps))
	for _, s := range steps {
		parts = append(parts, s.Action+":"+s.Outcome)
	}
	return strings.Join(parts, " ")
}

// sample is the real Alertmanager 0.25 payload from testdata, with the
// labels mamori's rules and relabelling add, and the given status.
func sample(t testing.TB, status string, labels map[string]string) *webhookMessage {
	t.Helper()
	name := "testdata/alertmanager-0.25-firing.json"
	if status == "resolved" {
		name = "testdata/alertmanager-0.25-resolved.json"
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var msg webhookMessage
	if err := json.Unmarshal(b, &msg); err != nil {
		t.Fatal(err)
	}
	for i := range msg.Alerts {
		for k, v := range labels {
			if v == "" {
				delete(msg.Alerts[i].Labels, k)
			} else {
				msg.Alerts[i].Labels[k] = v
			}
		}
	}
	return &msg
}

// apacheDown is the sample as mamori's MamoriHttpDown alert on web1.
func apacheDown(t testing.TB, status string) *webhookMessage {
	return sample(t, status, map[string]string{"alertname": "MamoriHttpDown", "check": "http", "host": webHost,
		"customer": "acme", "remediate": "true", "service": "apache2", "unit": "apache2"})
}

// alert builds a payload of one alert.
func alert(status, fingerprint string, startsAt time.Time, labels map[string]string) *webhookMessage {
	kv := template.KV{}
	for k, v := range labels {
		kv[k] = v
	}
	return &webhookMessage{Data: &template.Data{Receiver: "mamori-remediator", Status: status,
		Alerts: template.Alerts{{Status: status, Labels: kv, Annotations: template.KV{"summary": "test"},
			StartsAt: startsAt, Fingerprint: fingerprint}},
		GroupLabels: template.KV{}, CommonLabels: kv, CommonAnnotations: template.KV{}}, Version: "4"}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// emailsTo returns the received messages addressed to addr.
func emailsTo(msgs []smtptest.Message, addr string) []smtptest.Message {
	var out []smtptest.Message
	for _, m := range msgs {
		for _, to := range m.To {
			if to == addr {
				out = append(out, m)
			}
		}
	}
	return out
}
