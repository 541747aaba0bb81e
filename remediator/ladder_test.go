package remediator

import (
	"strings"
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
		"acme ご担当者様", "作業の記録: http://remediator.test:9797/incidents/"} {
		if !strings.Contains(body, want) {
			t.Errorf("email lacks %q:\n%s", want, body)
		}
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
