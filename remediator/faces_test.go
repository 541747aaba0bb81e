package remediator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mamori-ops/mamori/internal/generate/contract"
)

// TestMetricsContract: /metrics and the contract (internal/generate/contract)
// agree: every remediator metric of the contract is there, with its type,
// its labels and every fixed label value at start, before any alert, and
// nothing else named mamori_.
func TestMetricsContract(t *testing.T) {
	e := newEnv(t, envOptions{})
	code, body := e.get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range contract.Diff(families, true, contract.Remediator) {
		t.Error(d)
	}
	for _, r := range Reasons() {
		if !strings.Contains(body, fmt.Sprintf(`mamori_remediator_decisions_total{reason=%q} 0`, string(r))) {
			t.Errorf("decision %s not pre-initialised", r)
		}
	}
}

func TestHealthReadyReload(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, p := range []string{"/-/healthy", "/-/ready"} {
		if code, _ := e.get(p); code != 200 {
			t.Errorf("%s: %d", p, code)
		}
	}
	// Reload picks up a changed inventory; a broken one keeps the old.
	inv, err := os.ReadFile(e.invPath)
	if err != nil {
		t.Fatal(err)
	}
	added := strings.Replace(string(inv), "      - name: web2.acme.example", "      - name: web3.acme.example\n        address: 127.0.0.1\n        disable: [url]\n      - name: web2.acme.example", 1)
	if err := os.WriteFile(e.invPath, []byte(added), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(e.url+"/-/reload", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("reload: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if _, ok := e.app.current().inv.Host("web3.acme.example"); !ok {
		t.Fatal("the new host is not in force")
	}
	if err := os.WriteFile(e.invPath, []byte("customers: ["), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, _ = http.Post(e.url+"/-/reload", "", nil)
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Fatalf("broken reload: %d", resp.StatusCode)
	}
	if _, ok := e.app.current().inv.Host("web3.acme.example"); !ok {
		t.Fatal("a failed reload dropped the inventory in force")
	}
	_, metrics := e.get("/metrics")
	if !strings.Contains(metrics, "mamori_remediator_config_last_reload_successful 0") {
		t.Fatal("reload failure not on /metrics")
	}
	if code, _ := e.get("/-/reload"); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /-/reload: %d", code)
	}
}

// TestStatusPageAndAPI: the HTML status page and the JSON API show an
// incident with its steps, commands, outputs and emails.
func TestStatusPageAndAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fake.Stop("apache2")
	_, ans := e.post(mustJSON(t, apacheDown(t, "firing")))
	id := ans.Incidents[0]
	e.wait(id)
	e.smtp.Wait(1, 5*time.Second)

	code, body := e.get("/api/v1/incidents?state=done&limit=10")
	if code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	var list struct{ Incidents []incidentJSON }
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list.Incidents) != 1 || list.Incidents[0].Result != ResultRecovered {
		t.Fatalf("list %s (%v)", body, err)
	}
	code, body = e.get(fmt.Sprintf("/api/v1/incidents/%d", id))
	var j incidentJSON
	if err := json.Unmarshal([]byte(body), &j); err != nil || code != 200 {
		t.Fatalf("incident: %d %v", code, err)
	}
	if stepsOf(j) != "check:unhealthy restart:done verify:healthy notify:queued" || len(j.Emails) != 1 ||
		j.Steps[0].Commands[0].Output != "inactive\n" || j.Fingerprint != "96ce95e3a262c13c" {
		t.Fatalf("incident %+v", j)
	}
	code, page := e.get(fmt.Sprintf("/incidents/%d", id))
	for _, want := range []string{"restart → done", "systemctl restart apache2", "inactive", "[mamori] web1.acme.example HTTP: 復旧しました"} {
		if code != 200 || !strings.Contains(page, want) {
			t.Errorf("incident page lacks %q", want)
		}
	}
	code, page = e.get("/")
	if code != 200 || !strings.Contains(page, fmt.Sprintf(`href="/incidents/%d"`, id)) || !strings.Contains(page, "recovered") {
		t.Fatalf("status page %d:\n%s", code, page)
	}
	for path, want := range map[string]int{"/api/v1/incidents/999": 404, "/api/v1/incidents/x": 400, "/api/v1/incidents?state=bogus": 400,
		"/incidents/999": 404, "/nothing": 404} {
		if code, _ := e.get(path); code != want {
			t.Errorf("%s: %d, want %d", path, code, want)
		}
	}
}
