package remediator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/remediator/internal/sshtest"
	"github.com/mamori-ops/mamori/remediator/journal"
)

func labelsFor(check string, extra ...string) map[string]string {
	l := map[string]string{"alertname": "Mamori" + check, "check": check, "host": webHost, "customer": "acme", "remediate": "true"}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

// TestSSHLadderConsole: sshd is down; the console restarts it; the
// customer is told.
func TestSSHLadderConsole(t *testing.T) {
	e := newEnv(t, envOptions{sshUp: func(f *sshtest.FakeHost) bool { return f.Active("ssh") }})
	e.fake.Stop("ssh")
	_, ans := e.post(mustJSON(t, alert("firing", "ssh1", time.Now(), labelsFor("ssh", "service", "sshd"))))
	inc, steps, _ := e.wait(ans.Incidents[0])
	if inc.Result != ResultRecovered {
		t.Fatalf("result %s, steps %s", inc.Result, summary(steps))
	}
	if got, want := summary(steps), "ssh_connect:unhealthy console_restart:done verify:healthy notify:queued"; got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	c := steps[1].Commands[0]
	if c.Target != "local" || !strings.HasSuffix(c.Line, "/console systemctl restart ssh") {
		t.Fatalf("console command %+v", c)
	}
	msgs := e.smtp.Wait(1, 10*time.Second)
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text(), "コンソールから ssh (sshd) を再起動しました (systemctl restart ssh)") {
		t.Fatalf("email:\n%s", msgs[0].Text())
	}
}

// TestPingLadderPowerCycle: the host answers neither ping nor SSH; the
// power command reboots it; verify waits for it.
func TestPingLadderPowerCycle(t *testing.T) {
	e := newEnv(t, envOptions{sshUp: func(f *sshtest.FakeHost) bool {
		_, err := os.Stat(filepath.Join(f.State, "rebooted"))
		return err == nil
	}})
	e.prober.setDown("ping", true)
	_, ans := e.post(mustJSON(t, alert("firing", "ping1", time.Now(), labelsFor("ping"))))
	inc, steps, _ := e.wait(ans.Incidents[0])
	if inc.Result != ResultRecovered {
		t.Fatalf("result %s, steps %s", inc.Result, summary(steps))
	}
	if got, want := summary(steps), "check:unhealthy power_cycle:done verify:healthy notify:queued"; got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	// A second host-down the same day: the reboot budget (1 per 6h) is spent.
	os.Remove(filepath.Join(e.fake.State, "rebooted"))
	_, ans = e.post(mustJSON(t, alert("firing", "ping1", time.Now().Add(time.Minute), labelsFor("ping"))))
	inc, steps, _ = e.wait(ans.Incidents[0])
	if inc.Result != ResultSkippedOverBudget || !strings.Contains(summary(steps), "power_cycle:over_budget escalate:queued") {
		t.Fatalf("second: result %s, steps %s", inc.Result, summary(steps))
	}
}

// TestReportLadders: disk, swap and load mail the runbook's command output
// to the customer; nothing is deleted; a very high load restarts the
// offender named in the inventory.
func TestReportLadders(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		check, steps, want string
	}{
		{"disk", "collect:done notify:queued", "/dev/vda1        20G   19G  1.0G  95% /"},
		{"swap", "collect:done notify:queued", "Swap:           1024         900         124"},
		{"load", "collect:done restart_over_load:skipped notify:queued", "load average: 0.50, 0.40, 0.30"},
	} {
		_, ans := e.post(mustJSON(t, alert("firing", tc.check, time.Now(), labelsFor(tc.check))))
		inc, steps, emails := e.wait(ans.Incidents[0])
		if inc.Result != ResultEscalated || summary(steps) != tc.steps {
			t.Fatalf("%s: result %s, steps %s", tc.check, inc.Result, summary(steps))
		}
		if len(emails) != 1 || !strings.Contains(emails[0].Body, tc.want) || !strings.Contains(emails[0].Subject, "状況のご報告") {
			t.Fatalf("%s: email %q\n%s", tc.check, emails[0].Subject, emails[0].Body)
		}
	}
	// Load 9.5 on 2 CPUs is 4.75 per CPU, above the host's restart
	// threshold of 1: httpd is restarted.
	e.fake.Set(t, "top", "top - 06:00:00 up 10 days,  1:00,  1 user,  load average: 12.00, 9.50, 8.00\n")
	_, ans := e.post(mustJSON(t, alert("firing", "load", time.Now().Add(time.Minute), labelsFor("load"))))
	_, steps, emails := e.wait(ans.Incidents[0])
	if summary(steps) != "collect:done restart_over_load:done notify:queued" || len(e.fake.Restarts()) != 1 {
		t.Fatalf("steps %s, restarts %v", summary(steps), e.fake.Restarts())
	}
	if !strings.Contains(steps[1].Detail, "4.75 per CPU, above the restart threshold 1.00") || steps[1].Budget != "restart" {
		t.Fatalf("detail %q budget %q", steps[1].Detail, steps[1].Budget)
	}
	if !strings.Contains(emails[0].Body, "負荷が非常に高いため、apache2 (httpd) を再起動しました") {
		t.Fatalf("email:\n%s", emails[0].Body)
	}
}

// TestMailQueuePasswordReset: one SASL user dominates the queue; the
// customer agreed: the password is reset with the agreed value on stdin,
// and the value appears nowhere.
func TestMailQueuePasswordReset(t *testing.T) {
	e := newEnv(t, envOptions{})
	var q strings.Builder
	for i := range 30 {
		sender := "taro@acme.example"
		if i%6 == 0 {
			sender = "shop@acme.example"
		}
		id := fmt.Sprintf("A%04dBC", i)
		fmt.Fprintf(&q, `{"queue_name": "deferred", "queue_id": "%s", "arrival_time": 1764139337, "message_size": 800, "forced_expire": false, "sender": "%s", "recipients": [{"address": "x%d@example.net", "delay_reason": "connect timed out"}]}`+"\n", id, sender, i)
		if sender == "taro@acme.example" {
			e.fake.Set(t, "postcat/"+id, "*** ENVELOPE RECORDS deferred/"+id+" ***\nnamed_attribute: sasl_method=PLAIN\nnamed_attribute: sasl_username=taro@acme.example\nsender: taro@acme.example\n")
		}
	}
	e.fake.Set(t, "mailq", q.String())
	_, ans := e.post(mustJSON(t, alert("firing", "mq", time.Now(), labelsFor("mailq", "service", "postfix"))))
	inc, steps, emails := e.wait(ans.Incidents[0])
	if got, want := summary(steps), "collect:done analyse_queue:done reset_password:done escalate:queued notify:queued"; got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	if inc.Result != ResultEscalated {
		t.Fatalf("result %s", inc.Result)
	}
	if p := e.fake.Passwords(); len(p) != 1 || p[0] != "taro@acme.example agreed-new-password" {
		t.Fatalf("passwords %v", p)
	}
	if !strings.Contains(steps[1].Detail, "taro@acme.example dominates the queue") {
		t.Fatalf("analysis %q", steps[1].Detail)
	}
	// The sample's postcat commands come from the registry's template,
	// bounded on the host like every other command.
	if c := steps[1].Commands; len(c) != sampleSize || c[0].Name != "postcat" ||
		!strings.Contains(c[0].Line, "timeout --kill-after=") || !strings.Contains(c[0].Line, "postcat -e -q A0001BC") {
		t.Errorf("postcat commands: %+v", c)
	}
	cust := emails[1].Body
	if !strings.Contains(cust, "パスワードを、事前にお取り決めいただいた値に変更しました") || !strings.Contains(cust, "送信者 taro@acme.example: 25 通") {
		t.Fatalf("customer email:\n%s", cust)
	}
	// The agreed password is nowhere: journal, API, status page, emails, logs.
	_, api := e.get(fmt.Sprintf("/api/v1/incidents/%d", inc.ID))
	_, page := e.get(fmt.Sprintf("/incidents/%d", inc.ID))
	_, metrics := e.get("/metrics")
	for where, text := range map[string]string{"api": api, "page": page, "metrics": metrics, "logs": e.logs.String(),
		"operator email": emails[0].Body, "customer email": cust} {
		if strings.Contains(text, "agreed-new-password") || strings.Contains(text, testToken) {
			t.Errorf("a secret leaks into the %s", where)
		}
	}
	if c := steps[2].Commands[0]; !strings.HasSuffix(c.Line, "mailpasswd taro@acme.example 2>&1   # standard input: <secret>") || *c.ExitCode != 0 {
		t.Errorf("the reset command is not journaled as run: %+v", c)
	}
}

// TestURLOnlyFailsNoRestart: the customer's URL fails but the site
// answers: a person finds the cause, nothing is restarted.
func TestURLOnlyFailsNoRestart(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.prober.setDown("url", true)
	_, ans := e.post(mustJSON(t, alert("firing", "url", time.Now(), labelsFor("url", "service", "httpd"))))
	inc, steps, _ := e.wait(ans.Incidents[0])
	if got, want := summary(steps), "scope_url:url_only escalate:queued notify:queued"; got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	if inc.Result != ResultEscalated || len(e.fake.Restarts()) != 0 {
		t.Fatalf("result %s, restarts %v", inc.Result, e.fake.Restarts())
	}
	// The whole site down: restart httpd.
	e.fake.Stop("apache2")
	_, ans = e.post(mustJSON(t, alert("firing", "url", time.Now().Add(time.Minute), labelsFor("url", "service", "httpd"))))
	e.prober.setDown("url", false)
	inc, steps, _ = e.wait(ans.Incidents[0])
	if !strings.HasPrefix(summary(steps), "scope_url:site_down restart:done verify:healthy") || inc.Result != ResultRecovered {
		t.Fatalf("site down: result %s, steps %s", inc.Result, summary(steps))
	}
}

// TestMailServerDownLosesNothing: emails wait in the journal's outbox and
// go out once the server takes them.
func TestMailServerDownLosesNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.smtp.Refuse(true)
	e.fake.Stop("apache2")
	_, ans := e.post(mustJSON(t, apacheDown(t, "firing")))
	e.wait(ans.Incidents[0])
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, emails := e.wait(ans.Incidents[0])
		if emails[0].Attempts >= 2 && emails[0].Status == journal.EmailPending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("email %+v", emails[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, metrics := e.get("/metrics")
	if strings.Contains(metrics, `mamori_remediator_emails_total{kind="customer",result="failed"} 0`) ||
		!strings.Contains(metrics, "mamori_remediator_emails_pending 1") {
		t.Fatalf("metrics:\n%s", grep(metrics, "emails"))
	}
	e.smtp.Refuse(false)
	if msgs := e.smtp.Wait(1, 10*time.Second); len(msgs) != 1 {
		t.Fatalf("%d emails after the server came back", len(msgs))
	}
}

// TestResumeAfterStop: the remediator stops while a restart runs; started
// again on the same journal, it does not restart again: it verifies and
// finishes, with one restart in total.
func TestResumeAfterStop(t *testing.T) {
	e := newEnv(t, envOptions{config: map[string]string{"ladder": strings.Replace(baseConfig()["ladder"], "shutdown_grace: 2s", "shutdown_grace: 100ms", 1)}})
	e.fake.Stop("apache2")
	e.fake.Set(t, "restart-delay", "3")
	_, ans := e.post(mustJSON(t, apacheDown(t, "firing")))
	id := ans.Incidents[0]
	deadline := time.Now().Add(10 * time.Second)
	for len(e.fake.Restarts()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no restart")
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.stop()
	os.Remove(filepath.Join(e.fake.State, "restart-delay"))
	e.start()
	inc, steps, emails := e.wait(id)
	if inc.Result != ResultRecovered {
		t.Fatalf("result %s, steps %s", inc.Result, summary(steps))
	}
	if got, want := summary(steps), "check:unhealthy restart:interrupted verify:healthy notify:queued"; got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	if r := e.fake.Restarts(); len(r) != 1 || len(emails) != 1 {
		t.Fatalf("restarts %v, emails %d", r, len(emails))
	}
	ds, _ := e.app.Journal().(*journal.SQLite).Decisions(context.Background(), id)
	if !hasDecision(ds, ReasonResumed) || !hasDecision(ds, ReasonInterrupted) {
		t.Fatalf("decisions %+v", ds)
	}
}

// TestHostDownFirst: a host's ping ladder runs before its service ladders,
// which wait; one ladder at a time per host.
func TestHostDownFirst(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Stop("apache2")
	e.fake.Set(t, "restart-delay", "0.3")
	now := time.Now()
	http := alert("firing", "h1", now, labelsFor("http", "service", "httpd"))
	ping := alert("firing", "p1", now, labelsFor("ping"))
	// Both in one webhook, the service alert first.
	http.Alerts = append(http.Alerts, ping.Alerts...)
	_, ans := e.post(mustJSON(t, http))
	_, hsteps, _ := e.wait(ans.Incidents[0])
	pinc, psteps, _ := e.wait(ans.Incidents[1])
	if pinc.Result != ResultHealthy {
		t.Fatalf("ping: %s %s", pinc.Result, summary(psteps))
	}
	if !hsteps[0].StartedAt.After(pinc.FinishedAt) && !hsteps[0].StartedAt.Equal(pinc.FinishedAt) {
		t.Fatalf("the service ladder started at %s, before the ping ladder ended at %s", hsteps[0].StartedAt, pinc.FinishedAt)
	}
}
