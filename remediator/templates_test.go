package remediator

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEnglishCustomerOnSysV: the kobayashi host is sysv and its customer
// reads English.
func TestEnglishCustomerOnSysV(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Stop("apache2")
	labels := map[string]string{"alertname": "MamoriHttpDown", "check": "http", "host": "mail.kobayashi.example",
		"customer": "kobayashi", "remediate": "true", "service": "httpd"}
	_, ans := e.post(mustJSON(t, alert("firing", "kb", time.Now(), labels)))
	inc, steps, _ := e.wait(ans.Incidents[0])
	if inc.Result != ResultRecovered {
		t.Fatalf("result %s, steps %s", inc.Result, summary(steps))
	}
	if line := steps[1].Commands[0].Line; !strings.Contains(line, "timeout --kill-after=1s 10s service apache2 restart </dev/null") {
		t.Fatalf("sysv restart: %s", line)
	}
	if line := steps[0].Commands[0].Line; !strings.Contains(line, "service apache2 status") {
		t.Fatalf("sysv check: %s", line)
	}
	msgs := e.smtp.Wait(1, 10*time.Second)
	if len(msgs) != 1 || msgs[0].To[0] != "it@kobayashi.example" {
		t.Fatalf("emails %+v", msgs)
	}
	body := msgs[0].Text()
	for _, want := range []string{"Dear kobayashi team", "We restarted apache2 (httpd) (service apache2 restart).", "apache2 (httpd) has recovered and answers."} {
		if !strings.Contains(body, want) {
			t.Errorf("email lacks %q:\n%s", want, body)
		}
	}
	if got := msgs[0].Header("Subject"); got != "[mamori] mail.kobayashi.example HTTP: recovered" {
		t.Errorf("subject %q", got)
	}
}

// TestTemplateOverride: a file of mail.templates redefines a template; one
// that fails at execution falls back to the embedded one.
func TestTemplateOverride(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "subject.tmpl"), []byte(`{{ define "mamori.customer.ja.subject" }}【{{ .Customer }}様】{{ .Host }} の対応報告{{ end }}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.tmpl"), []byte(`{{ define "mamori.customer.en.body" }}{{ .Nope.Field }}{{ end }}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tmpl, err := LoadTemplates([]string{filepath.Join(dir, "*.tmpl")})
	if err != nil {
		t.Fatal(err)
	}
	d := &EmailData{Customer: "acme", Host: "web1", CheckTitle: "HTTP", Result: ResultRecovered, Unit: "apache2", Service: "httpd"}
	subject, body, err := tmpl.Render("customer", "ja", d)
	if err != nil || subject != "【acme様】web1 の対応報告" || !strings.Contains(body, "acme ご担当者様") {
		t.Fatalf("override: %q %v\n%s", subject, err, body)
	}
	_, body, err = tmpl.Render("customer", "en", d)
	if err == nil || !strings.Contains(body, "Dear acme team") {
		t.Fatalf("fallback: %v\n%s", err, body)
	}
	if _, err := LoadTemplates([]string{filepath.Join(dir, "[")}); err == nil {
		t.Fatal("a bad glob loads")
	}
}
