package exporter

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// TestProbeAndSDAreServed checks the probe role's endpoints on the app: /sd
// lists the inventory, /probe runs a real HTTP dialogue against a local
// server, and an unknown target is refused.
func TestProbeAndSDAreServed(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
	defer web.Close()
	u, _ := url.Parse(web.URL)
	path := filepath.Join(t.TempDir(), "inventory.yml")
	writeFile(t, path, plusInventory+"          http: {port: "+u.Port()+"}\n")
	r := start(t, Options{ConfigFile: path, HostName: "testhost"})

	code, body := r.get(t, "/sd")
	if code != 200 || !strings.Contains(body, `"host":"testhost"`) || !strings.Contains(body, `"customer":"acme"`) {
		t.Errorf("/sd: %d %s", code, body)
	}
	code, body = r.get(t, "/probe?target=testhost&check=http")
	want := `mamori_probe_success{check="http",port="` + u.Port() + `"} 1`
	if code != 200 || !strings.Contains(body, want) {
		t.Errorf("/probe: %d, want %s in\n%s", code, want, body)
	}
	if code, _ := r.get(t, "/probe?target=198.18.0.99"); code < 400 || code >= 500 {
		t.Errorf("unknown target answered %d, want a refusal", code)
	}
}
