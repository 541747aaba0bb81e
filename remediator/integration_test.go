package remediator

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/mamori-ops/mamori/exporter/probe"
	"github.com/mamori-ops/mamori/internal/logging"
	"github.com/mamori-ops/mamori/internal/testbox"
	"github.com/mamori-ops/mamori/internal/testenv"
	"github.com/mamori-ops/mamori/remediator/internal/smtptest"
	"github.com/mamori-ops/mamori/remediator/journal"
)

// boxEnv is a remediator in-process, with the exporter's real probers,
// against a real systemd server (internal/testbox) over its real sshd, and
// a real SMTP receiver.
type boxEnv struct {
	box  *testbox.Box
	smtp *smtptest.Server
	app  *App
	url  string
	logs *testenv.Output
}

func startBoxEnv(t *testing.T) *boxEnv {
	t.Helper()
	testenv.RequireIntegration(t)
	b := testbox.StartT(t, testbox.Options{})
	e := &boxEnv{box: b, smtp: smtptest.Start(t, smtptest.Options{}), logs: &testenv.Output{}}
	dir := t.TempDir()

	// The out-of-band console: the box's Exec, as a script that runs the
	// remote argv inside the box.
	console := filepath.Join(dir, "console")
	script := fmt.Sprintf("#!/bin/sh\nexec nsenter -t %d -m -u -i -n -p -- \"$@\"\n", b.Leader)
	if err := os.WriteFile(console, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	inv := fmt.Sprintf(`customers:
  - name: acme
    language: ja
    contacts: [ops@acme.example]
    hosts:
      - name: %s
        address: %s
        os_family: debian
        ssh:
          user: root
          key_file: %s
          known_hosts_file: %s
        out_of_band:
          console: [%s]
        checks:
          https: {insecure_skip_verify: true}
          plesk: {insecure_skip_verify: true}
`, b.Name, b.Addr, b.KeyFile, b.KnownHosts, console)
	if err := os.WriteFile(filepath.Join(dir, "inventory.yml"), []byte(inv), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`inventory_file: inventory.yml
journal: {path: journal.db}
webhook: {bearer_token: %s}
mail: {smarthost: "%s", from: "mamori <mamori@example.com>", tls: none, retry: {initial: 200ms, max: 1s}}
operators: {emails: [noc@mamori.example], language: en}
ladder:
  command_timeout: 20s
  verify_delay: 300ms
  verify_interval: 500ms
  verify_attempts: 10
  probe_timeout: 3s
`, testToken, e.smtp.Addr)
	cfgPath := filepath.Join(dir, "remediator.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logger, slogger, err := logging.New(logging.Config{Level: "debug"}, e.logs)
	if err != nil {
		t.Fatal(err)
	}
	kp := kingpin.New("test", "")
	pcfg := probe.AddFlags(kp)
	if _, err := kp.Parse(nil); err != nil {
		t.Fatal(err)
	}
	addrs := []string{"127.0.0.1:0"}
	a, err := New(Options{ConfigFile: cfgPath, Probe: pcfg, Tick: 100 * time.Millisecond,
		Web: &web.FlagConfig{WebListenAddresses: &addrs, WebConfigFile: new(string)}}, logger, slogger)
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
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("remediator log:\n%s", e.logs.String())
		}
	})
	return e
}

func (e *boxEnv) active(t *testing.T, unit string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, _ := e.box.Exec(ctx, "systemctl", "is-active", unit)
	return strings.TrimSpace(string(out)) == "active"
}

func (e *boxEnv) wait(t *testing.T, id int64, limit time.Duration) (*journal.Incident, []journal.Step) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		inc, steps, _, err := e.app.Journal().Incident(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if inc.State == journal.Done {
			return inc, steps
		}
		if time.Now().After(deadline) {
			t.Fatalf("incident %d not done after %s: %s", id, limit, summary(steps))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIntegrationApacheRestarted is the Done-when of the issue: the firing
// sample for a stopped apache2 on a real systemd server: within 10 s the
// unit is active again, the journal shows check → restart → verify →
// notify, and one Japanese email reached the customer saying apache2
// (httpd) was restarted and answers.
func TestIntegrationApacheRestarted(t *testing.T) {
	e := startBoxEnv(t)
	ctx := context.Background()
	if _, err := e.box.Exec(ctx, "systemctl", "stop", "apache2"); err != nil {
		t.Fatal(err)
	}
	if e.active(t, "apache2") {
		t.Fatal("apache2 still active after stop")
	}
	body := mustJSON(t, sample(t, "firing", map[string]string{"alertname": "MamoriHttpDown", "check": "http",
		"host": e.box.Name, "customer": "acme", "remediate": "true", "instance": e.box.Name}))
	start := time.Now()
	ans := postTo(t, e.url, body)
	if ans.Accepted != 1 {
		t.Fatalf("webhook: %+v", ans)
	}
	var activeAfter time.Duration
	for time.Since(start) < 10*time.Second {
		if e.active(t, "apache2") {
			activeAfter = time.Since(start)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if activeAfter == 0 {
		t.Fatal("apache2 not active within 10s")
	}
	inc, steps := e.wait(t, ans.Incidents[0], 20*time.Second)
	if inc.Result != ResultRecovered || summary(steps) != "check:unhealthy restart:done verify:healthy notify:queued" {
		t.Fatalf("result %s, steps %s", inc.Result, summary(steps))
	}
	msgs := e.smtp.Wait(1, 20*time.Second)
	if len(msgs) != 1 || msgs[0].To[0] != "ops@acme.example" {
		t.Fatalf("emails %+v", msgs)
	}
	text := msgs[0].Text()
	for _, want := range []string{"apache2 (httpd) を再起動しました (systemctl restart apache2)", "apache2 (httpd) は復旧し、応答していることを確認しました"} {
		if !strings.Contains(text, want) {
			t.Errorf("email lacks %q:\n%s", want, text)
		}
	}
	t.Logf("apache2 active %s after the webhook; incident done %s after; steps: %s; verify: %s",
		activeAfter.Round(time.Millisecond), inc.FinishedAt.Sub(start).Round(time.Millisecond), summary(steps), steps[2].Detail)
	time.Sleep(500 * time.Millisecond)
	if n := len(e.smtp.Messages()); n != 1 {
		t.Fatalf("%d emails", n)
	}
}

// TestIntegrationSSHLadderConsole: sshd stopped on the real server; the
// console command (the box's Exec) restarts it; the customer is told.
func TestIntegrationSSHLadderConsole(t *testing.T) {
	e := startBoxEnv(t)
	ctx := context.Background()
	if _, err := e.box.Exec(ctx, "systemctl", "stop", "ssh"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ans := postTo(t, e.url, mustJSON(t, alert("firing", "ssh-"+e.box.Name, time.Now(), map[string]string{
		"alertname": "MamoriSshDown", "check": "ssh", "service": "sshd", "host": e.box.Name, "customer": "acme", "remediate": "true"})))
	inc, steps := e.wait(t, ans.Incidents[0], 40*time.Second)
	if inc.Result != ResultRecovered || summary(steps) != "ssh_connect:unhealthy console_restart:done verify:healthy notify:queued" {
		t.Fatalf("result %s, steps %s", inc.Result, summary(steps))
	}
	if !e.active(t, "ssh") {
		t.Fatal("ssh not active")
	}
	msgs := e.smtp.Wait(1, 20*time.Second)
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text(), "コンソールから ssh (sshd) を再起動しました") {
		t.Fatalf("emails %d:\n%s", len(msgs), msgs[0].Text())
	}
	t.Logf("sshd back and the customer told %s after the webhook; steps: %s", inc.FinishedAt.Sub(start).Round(time.Millisecond), summary(steps))
}
