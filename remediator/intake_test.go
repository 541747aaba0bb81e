package remediator

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/mamori-ops/mamori/remediator/journal"
)

func TestWebhookRefusesWhatItMust(t *testing.T) {
	e := newEnv(t, envOptions{})
	good := mustJSON(t, apacheDown(t, "firing"))
	for _, tc := range []struct {
		name string
		body []byte
		auth string
		code int
	}{
		{"no credentials", good, "", 401},
		{"wrong token", good, "Bearer nope", 401},
		{"basic instead of bearer", good, "Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+testToken)), 401},
		{"malformed JSON", []byte(`{"version":"4","alerts":[`), "Bearer " + testToken, 400},
		{"not JSON", []byte(`hello`), "Bearer " + testToken, 400},
		{"empty body", nil, "Bearer " + testToken, 400},
		{"trailing data", append(append([]byte(nil), good...), []byte(` {}`)...), "Bearer " + testToken, 400},
		{"unknown version", bytes.Replace(good, []byte(`"version":"4"`), []byte(`"version":"5"`), 1), "Bearer " + testToken, 400},
		{"no version", bytes.Replace(good, []byte(`"version":"4"`), []byte(`"versionx":"4"`), 1), "Bearer " + testToken, 400},
		{"bad status", bytes.Replace(good, []byte(`"status":"firing","labels"`), []byte(`"status":"burning","labels"`), 1), "Bearer " + testToken, 400},
		{"no fingerprint", bytes.Replace(good, []byte(`"fingerprint":"96ce95e3a262c13c"`), []byte(`"fingerprint":""`), 1), "Bearer " + testToken, 400},
		{"too large", append([]byte(`{"version":"4","x":"`), bytes.Repeat([]byte("a"), DefaultMaxBodyBytes)...), "Bearer " + testToken, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, ans := e.postAuth(tc.body, tc.auth)
			if code != tc.code {
				t.Fatalf("got %d %+v, want %d", code, ans, tc.code)
			}
			if ans.Accepted != 0 {
				t.Fatalf("accepted %d", ans.Accepted)
			}
		})
	}
	// 401 says how to authenticate.
	req, _ := http.NewRequest(http.MethodPost, e.url+WebhookPath, bytes.NewReader(good))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	// GET is not the webhook.
	if code, _ := e.get(WebhookPath); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET %s: %d", WebhookPath, code)
	}
	// Nothing of all that reached the journal or the host.
	list, err := e.app.Journal().List(context.Background(), journal.Filter{})
	if err != nil || len(list) != 0 {
		t.Fatalf("journal holds %d incidents (%v)", len(list), err)
	}
	if n := len(e.ssh.Commands()); n != 0 {
		t.Fatalf("%d commands ran", n)
	}
}

// TestRealPayloads: Alertmanager 0.25's own payloads, as they are. They
// carry no check label (they come from a test rule, not mamori's), so the
// firing one is journaled as rejected, and the resolved one closes it.
func TestRealPayloads(t *testing.T) {
	e := newEnv(t, envOptions{})
	firing, err := os.ReadFile("testdata/alertmanager-0.25-firing.json")
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := os.ReadFile("testdata/alertmanager-0.25-resolved.json")
	if err != nil {
		t.Fatal(err)
	}
	code, ans := e.post(firing)
	if code != 200 || ans.Rejected != 1 {
		t.Fatalf("firing: %d %+v", code, ans)
	}
	inc, steps, emails := e.wait(ans.Incidents[0])
	if inc.Result != journal.ResultRejected || inc.Decision != string(ReasonUnknownCheck) || len(steps) != 0 || len(emails) != 0 {
		t.Fatalf("incident %+v, steps %d, emails %d", inc, len(steps), len(emails))
	}
	if inc.Key.Fingerprint != "96ce95e3a262c13c" || !inc.Key.StartsAt.Equal(time.Date(2026, 11, 26, 5, 41, 37, 812000000, time.UTC)) {
		t.Fatalf("key %+v", inc.Key)
	}
	if inc.Labels["unit"] != "apache2" || inc.Annotations["summary"] == "" {
		t.Fatalf("labels %v annotations %v", inc.Labels, inc.Annotations)
	}
	code, ans = e.post(resolved)
	if code != 200 || ans.Resolved != 1 {
		t.Fatalf("resolved: %d %+v", code, ans)
	}
	inc, _, _ = e.wait(ans.Incidents[0])
	if !inc.Resolved() {
		t.Fatal("the resolved notification was not recorded")
	}
	// With mamori's labels the same payload is an incident.
	code, ans = e.post(mustJSON(t, apacheDown(t, "firing")))
	if code != 200 || ans.Duplicates != 1 {
		// Same fingerprint and startsAt: Alertmanager's key says it is the
		// same occurrence, whatever its labels now say.
		t.Fatalf("relabelled sample: %d %+v", code, ans)
	}
}

func TestJournalFailureIs500(t *testing.T) {
	e := newEnv(t, envOptions{})
	if err := e.app.Journal().Close(); err != nil {
		t.Fatal(err)
	}
	code, ans := e.post(mustJSON(t, apacheDown(t, "firing")))
	if code != http.StatusInternalServerError || ans.Error != "the journal cannot be written" {
		t.Fatalf("got %d %+v", code, ans)
	}
}

// TestInjectionRunsNothing: label values never reach a command. Each of
// these is journaled as rejected and nothing runs on the host.
func TestInjectionRunsNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Stop("apache2")
	pwned := t.TempDir() + "/pwned"
	base := map[string]string{"alertname": "MamoriHttpDown", "check": "http", "host": webHost, "customer": "acme", "remediate": "true"}
	for i, bad := range []map[string]string{
		{"service": "httpd; touch " + pwned},
		{"unit": "apache2; touch " + pwned},
		{"host": webHost + "; touch " + pwned},
		{"check": "http$(touch " + pwned + ")"},
		{"customer": "acme`touch " + pwned + "`"},
		{"service": "mariadb"},
		{"customer": "kobayashi"},
	} {
		labels := map[string]string{}
		for k, v := range base {
			labels[k] = v
		}
		for k, v := range bad {
			labels[k] = v
		}
		code, ans := e.post(mustJSON(t, alert("firing", "f"+string(rune('a'+i)), time.Now(), labels)))
		if code != 200 || ans.Rejected != 1 {
			t.Fatalf("%v: %d %+v", bad, code, ans)
		}
		inc, steps, _ := e.wait(ans.Incidents[0])
		if inc.Result != journal.ResultRejected || inc.Decision != string(ReasonRejectedLabel) || len(steps) != 0 {
			t.Fatalf("%v: %+v", bad, inc)
		}
	}
	// An alert of mamori's rules that no ladder answers: the certificate
	// alert carries check=https but not remediate="true".
	code, ans := e.post(mustJSON(t, alert("firing", "cert", time.Now(), map[string]string{"alertname": "MamoriTLSCertificateExpiring",
		"check": "https", "host": webHost, "customer": "acme", "port": "443"})))
	if code != 200 || ans.Rejected != 1 {
		t.Fatalf("certificate alert: %d %+v", code, ans)
	}
	if inc, _, _ := e.wait(ans.Incidents[0]); inc.Decision != string(ReasonNotRemediable) {
		t.Fatalf("certificate alert: %+v", inc)
	}
	time.Sleep(200 * time.Millisecond)
	if cmds := e.ssh.Commands(); len(cmds) != 0 {
		t.Fatalf("commands ran: %q", cmds)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("the injected command ran")
	}
	if e.ssh.Logins() != 0 {
		t.Fatal("the remediator logged in to the host")
	}
	// The status page shows the hostile value, escaped.
	_, page := e.get("/")
	if !strings.Contains(page, "rejected_label") || strings.Contains(page, "`touch") && !strings.Contains(page, "&#34;") {
		t.Fatalf("status page:\n%s", page)
	}
}

// FuzzIntake: whatever arrives, the webhook answers 200, 400 or 413 (never
// 500 while the journal works, never a panic), and an accepted payload is
// in the journal, alert by alert.
func FuzzIntake(f *testing.F) {
	for _, name := range []string{"testdata/alertmanager-0.25-firing.json", "testdata/alertmanager-0.25-resolved.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(mustJSON(f, apacheDown(f, "firing")))
	f.Add(mustJSON(f, alert("firing", "x", time.Now(), map[string]string{"check": "ssh; reboot", "host": "web1.acme.example"})))
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","fingerprint":"a","startsAt":"2026-01-01T00:00:00Z","labels":{"check":"ping","host":"` + webHost + `"}}]}`))
	f.Add([]byte(`{"version":"4"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))

	app := fuzzApp(f, f.TempDir())
	h := app.Handler()
	f.Cleanup(func() { app.Close() })
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, WebhookPath, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200:
			msg, err := decodeWebhook(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("200 for a payload the decoder refuses: %v", err)
			}
			mem := app.Journal().(*memJournal)
			for _, al := range msg.Alerts {
				if !mem.has(journal.Key{Fingerprint: al.Fingerprint, StartsAt: al.StartsAt}) {
					t.Fatalf("alert %s accepted but not journaled", al.Fingerprint)
				}
			}
		case 400, 413:
		default:
			t.Fatalf("code %d for %q", rec.Code, body)
		}
	})
}

// memJournal is an in-memory journal that takes webhooks only.
type memJournal struct {
	journal.Journal
	mu   sync.Mutex
	keys map[journal.Key]int64
}

func newMemJournal() *memJournal { return &memJournal{keys: map[journal.Key]int64{}} }

func (m *memJournal) Accept(_ context.Context, arrivals []journal.Arrival) ([]journal.Accepted, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]journal.Accepted, len(arrivals))
	for i, a := range arrivals {
		k := journal.Key{Fingerprint: a.Incident.Key.Fingerprint, StartsAt: a.Incident.Key.StartsAt.UTC()}
		if id, ok := m.keys[k]; ok {
			out[i] = journal.Accepted{IncidentID: id, Outcome: journal.Duplicate}
			continue
		}
		id := int64(len(m.keys) + 1)
		m.keys[k] = id
		out[i] = journal.Accepted{IncidentID: id, Outcome: journal.Rejected}
		if a.Accepted {
			out[i].Outcome = journal.New
		}
	}
	return out, nil
}

func (m *memJournal) has(k journal.Key) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.keys[journal.Key{Fingerprint: k.Fingerprint, StartsAt: k.StartsAt.UTC()}]
	return ok
}

func (m *memJournal) Recover(context.Context) ([]int64, error) { return nil, nil }
func (m *memJournal) Close() error                             { return nil }

// fuzzApp builds an App that takes webhooks but runs no ladder (Serve is
// not called): the fuzzer exercises intake, match, guard, dedup and the
// journal.
func fuzzApp(f *testing.F, dir string) *App {
	inv := dir + "/inventory.yml"
	if err := os.WriteFile(inv, []byte(`customers:
  - name: acme
    contacts: [ops@acme.example]
    hosts:
      - {name: `+webHost+`, address: 127.0.0.1}
`), 0o600); err != nil {
		f.Fatal(err)
	}
	cfg := dir + "/remediator.yml"
	if err := os.WriteFile(cfg, []byte(`inventory_file: inventory.yml
journal: {path: journal.db}
webhook: {bearer_token: `+testToken+`}
mail: {smarthost: "127.0.0.1:1", from: m@example.com, tls: none}
operators: {emails: [noc@example.com]}
`), 0o600); err != nil {
		f.Fatal(err)
	}
	// An in-memory journal: the fuzzer instruments what it runs, and
	// SQLite's transpiled C is too big to run under it.
	app, err := New(Options{ConfigFile: cfg, Journal: newMemJournal()}, log.NewNopLogger(), nil)
	if err != nil {
		f.Fatal(err)
	}
	return app
}
