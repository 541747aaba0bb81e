package remediator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/remediator/journal"
)

// TestApacheRestartedAndCustomerTold: the firing sample for a stopped
// apache2: check → restart → verify → notify, one restart, one Japanese
// email saying apache2 (httpd) was restarted and answers.
func TestApacheRestartedAndCustomerTold(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Stop("apache2")
	code, ans := e.post(mustJSON(t, apacheDown(t, "firing")))
	if code != 200 || ans.Accepted != 1 {
		t.Fatalf("webhook answered %d %+v", code, ans)
	}
	inc, steps, emails := e.wait(ans.Incidents[0])
	if inc.Result != ResultRecovered {
		t.Fatalf("result %q, steps %s", inc.Result, summary(steps))
	}
	if got, want := summary(steps), "check:unhealthy restart:done verify:healthy notify:queued"; got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	if !e.fake.Active("apache2") || len(e.fake.Restarts()) != 1 {
		t.Fatalf("apache2 active %v, restarts %v", e.fake.Active("apache2"), e.fake.Restarts())
	}
	restart := steps[1].Commands[0]
	if restart.ExitCode == nil || *restart.ExitCode != 0 || !strings.Contains(restart.Line, "timeout --kill-after=1s 10s systemctl restart apache2 </dev/null") {
		t.Fatalf("restart command %+v", restart)
	}
	if len(emails) != 1 || emails[0].Kind != kindCustomer {
		t.Fatalf("emails %+v", emails)
	}
	msgs := e.smtp.Wait(1, 10*time.Second)
	if len(msgs) != 1 || msgs[0].To[0] != "ops@acme.example" {
		t.Fatalf("received %+v", msgs)
	}
	body, subject := msgs[0].Text(), msgs[0].Header("Subject")
	for _, want := range []string{"apache2 (httpd) を再起動しました (systemctl restart apache2)", "apache2 (httpd) は復旧し、応答していることを確認しました",
		"acme ご担当者様"} {
		if !strings.Contains(body, want) {
			t.Errorf("email lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "remediator.test") {
		t.Errorf("the customer's email links to the operators' status page:\n%s", body)
	}
	if subject != "[mamori] web1.acme.example HTTP: 復旧しました" {
		t.Errorf("subject %q", subject)
	}
	// The journal's email is marked sent.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, emails := e.wait(ans.Incidents[0])
		if emails[0].Status == journal.EmailSent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("email status %q", emails[0].Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRepeatsYieldOneRun: the same payload posted 20 times from two
// goroutines (retries, both peers of an HA pair): one restart, one email.
func TestRepeatsYieldOneRun(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Stop("apache2")
	body := mustJSON(t, apacheDown(t, "firing"))
	var wg sync.WaitGroup
	ids := make(chan int64, 20)
	for range 2 {
		wg.Go(func() {
			for range 10 {
				code, ans := e.post(body)
				if code != 200 || len(ans.Incidents) != 1 {
					t.Errorf("webhook answered %d %+v", code, ans)
					return
				}
				ids <- ans.Incidents[0]
			}
		})
	}
	wg.Wait()
	close(ids)
	var id int64
	for got := range ids {
		if id != 0 && got != id {
			t.Fatalf("two incidents for one alert: %d and %d", id, got)
		}
		id = got
	}
	inc, steps, emails := e.wait(id)
	if inc.Result != ResultRecovered || len(emails) != 1 {
		t.Fatalf("result %s, steps %s, %d emails", inc.Result, summary(steps), len(emails))
	}
	e.smtp.Wait(1, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if r := e.fake.Restarts(); len(r) != 1 {
		t.Fatalf("restarts %v", r)
	}
	if msgs := e.smtp.Messages(); len(msgs) != 1 {
		t.Fatalf("%d emails received", len(msgs))
	}
	ds, err := e.app.Journal().(*journal.SQLite).Decisions(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	dups := 0
	for _, d := range ds {
		if d.Reason == string(ReasonDuplicate) {
			dups++
		}
	}
	if dups != 19 {
		t.Fatalf("%d duplicate decisions, want 19", dups)
	}
}

// TestChangedHostKey: no command runs, the operators get the escalation.
func TestChangedHostKey(t *testing.T) {
	e := newEnv(t, envOptions{changedKey: true})
	e.fake.Stop("apache2")
	_, ans := e.post(mustJSON(t, apacheDown(t, "firing")))
	inc, steps, emails := e.wait(ans.Incidents[0])
	if inc.Result != ResultFailed {
		t.Fatalf("result %s", inc.Result)
	}
	if got, want := summary(steps), "check:host_key escalate:queued notify:queued"; got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	if len(steps[0].Commands) != 0 || len(e.ssh.Commands()) != 0 || e.ssh.Logins() != 0 {
		t.Fatalf("commands ran: journal %v, server %v, logins %d", steps[0].Commands, e.ssh.Commands(), e.ssh.Logins())
	}
	msgs := e.smtp.Wait(2, 10*time.Second)
	ops := emailsTo(msgs, "noc@mamori.example")
	if len(ops) != 1 {
		t.Fatalf("operators got %d emails", len(ops))
	}
	body := ops[0].Text()
	for _, want := range []string{"host key changed", "check → host_key", "[mamori investigate]"} {
		if !strings.Contains(body+ops[0].Header("Subject"), want) {
			t.Errorf("operator email lacks %q:\n%s", want, body)
		}
	}
	if len(emails) != 2 || len(emailsTo(msgs, "ops@acme.example")) != 1 {
		t.Fatalf("emails %+v", emails)
	}
	ds, _ := e.app.Journal().(*journal.SQLite).Decisions(context.Background(), inc.ID)
	if !hasDecision(ds, ReasonHostKeyChanged) {
		t.Fatalf("decisions %+v", ds)
	}
}

func hasDecision(ds []journal.Decision, r Reason) bool {
	for _, d := range ds {
		if d.Reason == string(r) {
			return true
		}
	}
	return false
}

// TestRestartBudget: three restarts an hour (the default); the fourth
// failure escalates to the operators instead of restarting.
func TestRestartBudget(t *testing.T) {
	e := newEnv(t, envOptions{})
	start := time.Now().Add(-time.Hour)
	for n := range 4 {
		e.fake.Stop("apache2")
		labels := map[string]string{"alertname": "MamoriHttpDown", "check": "http", "host": webHost, "customer": "acme", "service": "httpd", "remediate": "true"}
		_, ans := e.post(mustJSON(t, alert("firing", "96ce95e3a262c13c", start.Add(time.Duration(n)*time.Minute), labels)))
		inc, steps, _ := e.wait(ans.Incidents[0])
		want := ResultRecovered
		if n == 3 {
			want = ResultSkippedOverBudget
			if got := summary(steps); got != "check:unhealthy restart:over_budget escalate:queued notify:queued" {
				t.Fatalf("over budget: steps %s", got)
			}
			if !strings.Contains(steps[1].Detail, "restart budget spent: 3 of 3 in the last 1h0m0s") {
				t.Fatalf("detail %q", steps[1].Detail)
			}
		}
		if inc.Result != want {
			t.Fatalf("incident %d: result %s, want %s (steps %s)", n, inc.Result, want, summary(steps))
		}
	}
	if r := e.fake.Restarts(); len(r) != 3 {
		t.Fatalf("restarts %v", r)
	}
	msgs := e.smtp.Wait(5, 10*time.Second)
	if ops := emailsTo(msgs, "noc@mamori.example"); len(ops) != 1 || !strings.Contains(ops[0].Text(), "restart budget spent") {
		t.Fatalf("operators got %d emails", len(ops))
	}
	_, metrics := e.get("/metrics")
	if !strings.Contains(metrics, `mamori_remediator_budget_exhausted_total{host="web1.acme.example",kind="restart",service="httpd"} 1`) {
		t.Fatalf("budget metric missing:\n%s", grep(metrics, "budget_exhausted"))
	}
}

// TestConcurrencyBudget: with budgets.concurrent_actions 1, a second
// restart while the first is still running, on another host, is refused
// and escalated; the fleet-wide budget counts it without host or service.
func TestConcurrencyBudget(t *testing.T) {
	e := newEnv(t, envOptions{config: map[string]string{
		"budgets": "budgets:\n  restarts: {max: 3, window: 1h}\n  reboots: {max: 1, window: 6h}\n  concurrent_actions: 1"}})
	e.fake.Stop("apache2")
	e.fake.Set(t, "restart-delay", "2")
	start := time.Now().Add(-time.Minute)
	var ids []int64
	for i, host := range []string{webHost, "web2.acme.example"} {
		labels := map[string]string{"alertname": "MamoriHttpDown", "check": "http", "host": host, "customer": "acme", "service": "httpd", "remediate": "true"}
		_, ans := e.post(mustJSON(t, alert("firing", fmt.Sprintf("c0ffee%010d", i), start, labels)))
		ids = append(ids, ans.Incidents[0])
	}
	results := map[string]int{}
	for _, id := range ids {
		inc, steps, _ := e.wait(id)
		results[string(inc.Result)]++
		if inc.Result == ResultSkippedOverBudget {
			if got := summary(steps); got != "check:unhealthy restart:over_budget escalate:queued notify:queued" {
				t.Errorf("refused incident: steps %s", got)
			}
			if !strings.Contains(steps[1].Detail, "1 restarts or reboots already in progress across the fleet (budgets.concurrent_actions 1)") {
				t.Errorf("detail %q", steps[1].Detail)
			}
		}
	}
	if results[string(ResultRecovered)] != 1 || results[string(ResultSkippedOverBudget)] != 1 {
		t.Fatalf("results %v, want one recovered and one over budget", results)
	}
	if r := e.fake.Restarts(); len(r) != 1 {
		t.Fatalf("restarts %v, want 1", r)
	}
	_, metrics := e.get("/metrics")
	if !strings.Contains(metrics, `mamori_remediator_budget_exhausted_total{host="",kind="concurrency",service=""} 1`) {
		t.Fatalf("concurrency budget metric:\n%s", grep(metrics, "budget_exhausted"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestResolvedStopsLadder: a resolved notification stops the ladder at the
// next step; the customer hears what was done.
func TestResolvedStopsLadder(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Stop("apache2")
	e.fake.Set(t, "restart-delay", "1")
	_, ans := e.post(mustJSON(t, apacheDown(t, "firing")))
	id := ans.Incidents[0]
	deadline := time.Now().Add(10 * time.Second)
	for len(e.fake.Restarts()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no restart")
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, ans := e.post(mustJSON(t, apacheDown(t, "resolved")))
	if code != 200 || ans.Resolved != 1 || ans.Incidents[0] != id {
		t.Fatalf("resolved: %d %+v", code, ans)
	}
	inc, steps, emails := e.wait(id)
	if inc.Result != ResultResolved || summary(steps) != "check:unhealthy restart:done notify:queued" {
		t.Fatalf("result %s, steps %s", inc.Result, summary(steps))
	}
	if len(emails) != 1 {
		t.Fatalf("emails %+v", emails)
	}
	ds, _ := e.app.Journal().(*journal.SQLite).Decisions(context.Background(), id)
	if !hasDecision(ds, ReasonResolved) {
		t.Fatalf("decisions %+v", ds)
	}
	msgs := e.smtp.Wait(1, 5*time.Second)
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text(), "作業中に監視のアラートが解消") {
		t.Fatalf("email %+v", msgs)
	}
}

// TestDryRun: every command and email rendered and journaled, nothing run
// on the host, nothing sent.
func TestDryRun(t *testing.T) {
	e := newEnv(t, envOptions{config: map[string]string{"dry_run": "dry_run: true"}})
	e.fake.Stop("apache2")
	_, ans := e.post(mustJSON(t, apacheDown(t, "firing")))
	inc, steps, emails := e.wait(ans.Incidents[0])
	if inc.Result != ResultDryRun || !inc.DryRun {
		t.Fatalf("result %s", inc.Result)
	}
	if got, want := summary(steps), "check:rendered restart:rendered verify:rendered collect:rendered escalate:queued notify:queued"; got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	var lines []string
	for _, s := range steps {
		for _, c := range s.Commands {
			if !c.DryRun || c.ExitCode != nil {
				t.Errorf("command %+v ran", c)
			}
			lines = append(lines, c.Line)
		}
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{"systemctl is-active apache2", "systemctl restart apache2", "systemctl status --no-pager --lines=0 apache2",
		"journalctl --no-pager --lines=50 --unit apache2", "ps -e -o stat=,comm=,args="} {
		if !strings.Contains(all, want) {
			t.Errorf("rendered commands lack %q:\n%s", want, all)
		}
	}
	if len(emails) != 2 || emails[0].Status != journal.EmailDryRun || emails[1].Status != journal.EmailDryRun {
		t.Fatalf("emails %+v", emails)
	}
	if !strings.Contains(emails[1].Body, "試験実行") {
		t.Errorf("customer email does not say dry-run:\n%s", emails[1].Body)
	}
	time.Sleep(300 * time.Millisecond)
	if len(e.ssh.Commands()) != 0 || e.ssh.Logins() != 0 || len(e.smtp.Messages()) != 0 || e.fake.Active("apache2") {
		t.Fatalf("dry-run acted: commands %v, emails %d", e.ssh.Commands(), len(e.smtp.Messages()))
	}
}

// TestBrokenRestartEscalatesWithEvidence: the restart fails; verify finds
// it down; status and journal lines go to the operators.
func TestBrokenRestartEscalatesWithEvidence(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Stop("apache2")
	e.fake.Break(t, "apache2")
	_, ans := e.post(mustJSON(t, apacheDown(t, "firing")))
	inc, steps, _ := e.wait(ans.Incidents[0])
	if inc.Result != ResultEscalated {
		t.Fatalf("result %s", inc.Result)
	}
	if got, want := summary(steps), "check:unhealthy restart:failed verify:unhealthy collect:done escalate:queued notify:queued"; got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	msgs := e.smtp.Wait(2, 10*time.Second)
	ops := emailsTo(msgs, "noc@mamori.example")
	if len(ops) != 1 {
		t.Fatalf("operators got %d emails", len(ops))
	}
	body := ops[0].Text()
	for _, want := range []string{"Active: inactive (dead)", "Failed with result 'signal'", "control process exited with error code", "(exit 1)"} {
		if !strings.Contains(body, want) {
			t.Errorf("operator email lacks %q:\n%s", want, body)
		}
	}
	cust := emailsTo(msgs, "ops@acme.example")
	if len(cust) != 1 || !strings.Contains(cust[0].Text(), "担当者が調査のうえ") || strings.Contains(cust[0].Text(), "inactive (dead)") {
		t.Fatalf("customer email:\n%s", cust[0].Text())
	}
}

// TestOneFaultOneEmail: a stopped apache2 fails http and https, two
// incidents; the first restarts it and tells the customer, the second finds
// it healthy and sends nothing more.
func TestOneFaultOneEmail(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Stop("apache2")
	startsAt := time.Now().Add(-time.Minute)
	msg := alert("firing", "f-http", startsAt, labelsFor("http", "service", "httpd"))
	msg.Alerts = append(msg.Alerts, alert("firing", "f-https", startsAt, labelsFor("https", "service", "httpd")).Alerts...)
	code, ans := e.post(mustJSON(t, msg))
	if code != 200 || ans.Accepted != 2 {
		t.Fatalf("webhook answered %d %+v", code, ans)
	}
	var got []string
	emails := 0
	for _, id := range ans.Incidents {
		inc, steps, em := e.wait(id)
		got = append(got, inc.Check+": "+summary(steps))
		emails += len(em)
	}
	slices.Sort(got)
	acted, quiet := "check:unhealthy restart:done verify:healthy notify:queued", "check:healthy notify:skipped"
	if !(got[0] == "http: "+acted && got[1] == "https: "+quiet) && !(got[0] == "http: "+quiet && got[1] == "https: "+acted) {
		t.Fatalf("incidents %q, want one %q and one %q", got, acted, quiet)
	}
	if emails != 1 || len(e.fake.Restarts()) != 1 {
		t.Fatalf("%d emails queued, restarts %v; want 1 and 1", emails, e.fake.Restarts())
	}
	if msgs := e.smtp.Wait(1, 10*time.Second); len(msgs) != 1 {
		t.Fatalf("received %d emails", len(msgs))
	}
	// A later alert of the same service, begun after that restart, is
	// reported again.
	later := alert("firing", "f-https-2", time.Now(), labelsFor("https", "service", "httpd"))
	_, ans = e.post(mustJSON(t, later))
	if _, steps, em := e.wait(ans.Incidents[0]); summary(steps) != "check:healthy notify:queued" || len(em) != 1 {
		t.Fatalf("later incident %s, %d emails", summary(steps), len(em))
	}
}
