package generate

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/internal/generate/contract"
	"github.com/mamori-ops/mamori/internal/testenv"
)

// webhookSink is the remediator's side of the webhook, recording what
// Alertmanager delivers.
type webhookSink struct {
	mu     sync.Mutex
	auth   []string
	alerts []sinkAlert
}

type sinkAlert struct {
	Status string            `json:"status"`
	Labels map[string]string `json:"labels"`
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Version string      `json:"version"`
		Alerts  []sinkAlert `json:"alerts"`
	}
	if r.URL.Path != contract.WebhookPath || json.NewDecoder(r.Body).Decode(&msg) != nil || msg.Version != "4" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.alerts = append(s.alerts, msg.Alerts...)
}

func (s *webhookSink) seen(name, host, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.alerts {
		if a.Labels["alertname"] == name && a.Labels["host"] == host && a.Status == status {
			return true
		}
	}
	return false
}

func (s *webhookSink) snapshot() ([]string, []sinkAlert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auth...), append([]sinkAlert(nil), s.alerts...)
}

// TestEndToEndAlertmanagerRoutesAndInhibits runs Debian's Alertmanager with
// deploy/alertmanager.yml's source (short waits, the webhook pointed at a
// local receiver) and checks what reaches the remediator: remediate="true"
// alerts with the bearer token, a down host's service alert held back,
// nothing of the operators' alerts, and the resolved notification.
func TestEndToEndAlertmanagerRoutesAndInhibits(t *testing.T) {
	testenv.RequireIntegration(t)
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		bin = needTool(t, "alertmanager")
	}
	dir := t.TempDir()
	sink := &webhookSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()

	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := deployedAlertmanager()
	cfg.WebhookURL = srv.URL + contract.WebhookPath
	cfg.TokenFile = token
	cfg.Smarthost = testenv.FreeAddr(t) // nothing listens: operators' mail fails, as it may
	cfg.GroupWait, cfg.GroupInterval, cfg.RemediatorGroupInterval = time.Second, time.Second, time.Second
	raw, err := cfg.render()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	start(t, dir, "alertmanager", bin, "--config.file="+file, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	api := "http://" + addr
	waitHTTP(t, api+"/-/ready", 30*time.Second)

	rs, err := buildRules()
	if err != nil {
		t.Fatal(err)
	}
	labelsOf := func(name, customer, host string) map[string]string {
		for _, a := range rs.Alerts {
			if a.Name == name {
				l := map[string]string{"alertname": name, "customer": customer, "host": host}
				for k, v := range a.Labels {
					l[k] = v
				}
				return l
			}
		}
		t.Fatalf("no alert %s", name)
		return nil
	}
	hostDown, _ := hostDownAlert()
	const down, other = "web1.acme.example", "mail.kobayashi.example"
	// The host-down alert goes first and is in Alertmanager before the
	// alerts it inhibits: in one batch, the inhibitor may not have seen it
	// when a loaded machine runs the first group's notification.
	post(t, api, time.Time{}, labelsOf(hostDown, "acme", down))
	if !poll(10*time.Second, func() bool {
		var active []json.RawMessage
		return getJSON(api+"/api/v2/alerts", &active) == nil && len(active) == 1
	}) {
		t.Fatal("Alertmanager did not take the host-down alert")
	}
	post(t, api, time.Time{},
		labelsOf("MamoriHttpDown", "acme", down),       // inhibited by the host being down
		labelsOf("MamoriExporterDown", "acme", down),   // inhibited, and for the operators
		labelsOf("MamoriHttpDown", "kobayashi", other), // to the remediator
		labelsOf("MamoriRemediatorDown", "", ""),       // to the operators
		labelsOf("MamoriSmtpDown", "kobayashi", other), // to the remediator
	)
	if !poll(20*time.Second, func() bool {
		return sink.seen(hostDown, down, "firing") && sink.seen("MamoriHttpDown", other, "firing") && sink.seen("MamoriSmtpDown", other, "firing")
	}) {
		_, got := sink.snapshot()
		t.Fatalf("the remediator did not get the host-down and the other host's alerts; got %v", got)
	}
	time.Sleep(3 * time.Second) // several group intervals: whatever else was coming has come
	auth, got := sink.snapshot()
	for _, a := range got {
		if a.Labels["remediate"] != "true" {
			t.Errorf("an operators' alert reached the remediator: %v", a.Labels)
		}
		if a.Labels["host"] == down && a.Labels["alertname"] != hostDown {
			t.Errorf("an alert of the down host was not inhibited: %v", a.Labels)
		}
	}
	for _, h := range auth {
		if h != "Bearer s3cret" {
			t.Errorf("Authorization %q, want the token from credentials_file", h)
		}
	}
	var inhibited []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			InhibitedBy []string `json:"inhibitedBy"`
		} `json:"status"`
	}
	if err := getJSON(api+"/api/v2/alerts?inhibited=true&active=false&silenced=false", &inhibited); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, a := range inhibited {
		if len(a.Status.InhibitedBy) > 0 && a.Labels["host"] == down {
			names[a.Labels["alertname"]] = true
		}
	}
	if !names["MamoriHttpDown"] || !names["MamoriExporterDown"] || len(names) != 2 {
		t.Errorf("inhibited alerts of the down host: %v, want MamoriHttpDown and MamoriExporterDown", names)
	}

	// A resolved alert reaches the remediator too (send_resolved).
	post(t, api, time.Now().Add(-time.Second), labelsOf("MamoriHttpDown", "kobayashi", other))
	if !poll(20*time.Second, func() bool { return sink.seen("MamoriHttpDown", other, "resolved") }) {
		t.Fatal("the resolved notification did not reach the remediator")
	}
}

// post sends alerts to Alertmanager's API v2, ended at endsAt when set.
func post(t *testing.T, api string, endsAt time.Time, alerts ...map[string]string) {
	t.Helper()
	type alert struct {
		Labels   map[string]string `json:"labels"`
		StartsAt time.Time         `json:"startsAt"`
		EndsAt   *time.Time        `json:"endsAt,omitempty"`
	}
	var body []alert
	for _, l := range alerts {
		for k, v := range l {
			if v == "" {
				delete(l, k)
			}
		}
		a := alert{Labels: l, StartsAt: time.Now().Add(-time.Minute)}
		if !endsAt.IsZero() {
			a.EndsAt = &endsAt
		}
		body = append(body, a)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(api+"/api/v2/alerts", "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/alerts: %s", resp.Status)
	}
}
