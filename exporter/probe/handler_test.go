package probe

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/mamori-ops/mamori/inventory"
	"github.com/mamori-ops/mamori/runbook"
)

func TestEveryRegistryProtocolHasAProber(t *testing.T) {
	probers := newProbers(testSettings(t))
	seen := map[runbook.Protocol]bool{}
	for _, c := range runbook.Checks() {
		if c.Kind != runbook.Probe {
			continue
		}
		seen[c.Protocol] = true
		if probers[c.Protocol] == nil {
			t.Errorf("check %s: no prober for protocol %q", c.ID, c.Protocol)
		}
	}
	for p := range probers {
		if !seen[p] {
			t.Errorf("prober for %q, a protocol no check of the registry speaks", p)
		}
	}
}

func TestReasonsAreFixedAndDocumented(t *testing.T) {
	want := "refused timeout unreachable dns tls banner protocol http_status body_mismatch blocked internal"
	var got []string
	for _, r := range Reasons() {
		got = append(got, string(r))
	}
	if strings.Join(got, " ") != want {
		t.Errorf("reasons %v, want %s: the set is part of the metric contract", got, want)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if !strings.Contains(string(doc), "`"+r+"`") {
			t.Errorf("doc.go does not document reason %q", r)
		}
	}
}

func TestTargetFor(t *testing.T) {
	inv := parseInventory(t, `
customers:
  - name: acme
    plan: plus
    contacts: [ops@acme.example]
    hosts:
      - name: web1.acme.example
        address: 198.18.0.2
        checks:
          plesk: {insecure_skip_verify: true}
          https: {server_name: www.acme.example}
          smtp: {starttls: true, port: 587}
          url: {url: "https://shop.acme.example:8443/cart?x=1", body_match: "<title>ACME"}
`)
	h, _ := inv.Host("web1.acme.example")
	got := map[string]Target{}
	for _, hc := range h.CheckList() {
		if hc.Kind != runbook.Probe {
			continue
		}
		tg, err := TargetFor(h.Name, h.Address, hc, 5)
		if err != nil {
			t.Fatalf("%s: %v", hc.ID, err)
		}
		got[hc.ID] = tg
	}
	for id, want := range map[string]string{
		"ping":  "198.18.0.2:0 sni=web1.acme.example url=<nil> redirects=0 insecure=false starttls=false",
		"http":  "198.18.0.2:80 sni=web1.acme.example url=http://web1.acme.example/ redirects=0 insecure=false starttls=false",
		"https": "198.18.0.2:443 sni=www.acme.example url=https://www.acme.example/ redirects=0 insecure=false starttls=false",
		"plesk": "198.18.0.2:8443 sni=web1.acme.example url=https://web1.acme.example:8443/ redirects=0 insecure=true starttls=false",
		"smtp":  "198.18.0.2:587 sni=web1.acme.example url=<nil> redirects=0 insecure=false starttls=true",
		"smtps": "198.18.0.2:465 sni=web1.acme.example url=<nil> redirects=0 insecure=false starttls=false",
		"url":   "shop.acme.example:8443 sni=shop.acme.example url=https://shop.acme.example:8443/cart?x=1 redirects=5 insecure=false starttls=false",
	} {
		tg := got[id]
		s := fmt.Sprintf("%s:%d sni=%s url=%v redirects=%d insecure=%t starttls=%t", tg.Host, tg.Port, tg.ServerName,
			tg.URL, tg.MaxRedirects, tg.InsecureSkipVerify, tg.StartTLS)
		if s != want {
			t.Errorf("%s:\n got %s\nwant %s", id, s, want)
		}
	}
	if got["url"].BodyMatch == nil || !got["url"].TLS || !got["smtps"].TLS || got["smtp"].TLS {
		t.Error("body match or TLS flags lost")
	}
}

func TestProbeTimeout(t *testing.T) {
	s := testSettings(t, "--probe.timeout-offset=500ms", "--probe.default-timeout=7s")
	for header, want := range map[string]time.Duration{
		"":      6500 * time.Millisecond,
		"10":    9500 * time.Millisecond,
		"2.5":   2 * time.Second,
		"0.55":  minTimeout,
		"-1":    6500 * time.Millisecond,
		"NaN":   6500 * time.Millisecond,
		"+Inf":  6500 * time.Millisecond,
		"bogus": 6500 * time.Millisecond,
	} {
		if got := probeTimeout(header, s); got != want {
			t.Errorf("header %q: %s, want %s", header, got, want)
		}
	}
}

func TestConfigRejections(t *testing.T) {
	for args, want := range map[string]string{
		"--probe.icmp-count=0":                   "--probe.icmp-count must be 1-100, got 0",
		"--probe.default-timeout=0s":             "--probe.default-timeout must be positive, got 0s",
		"--probe.http-max-redirects=50":          "--probe.http-max-redirects must be 0-20, got 50",
		"--probe.source-address=nowhere":         `--probe.source-address: "nowhere" is not an IP address`,
		"--probe.smtp-helo-name=a b":             `--probe.smtp-helo-name: "a b" contains spaces or control characters`,
		"--probe.tls-ca-file=/nonexistent.pem":   "--probe.tls-ca-file: open /nonexistent.pem: no such file or directory",
		"--probe.tls-ca-file=testdata/empty.pem": "--probe.tls-ca-file: no PEM certificate in testdata/empty.pem",
	} {
		err := testConfig(t, args).Validate()
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
	if err := testConfig(t).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	// A misconfigured handler answers 500 rather than probing with half a config.
	h := NewHandler(testConfig(t, "--probe.tls-ca-file=/nonexistent.pem"), nil, nil, testLogger(t))
	if code, _ := get(t, h, "/probe?target=x", ""); code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", code)
	}
}

const handlerInventory = `
customers:
  - name: acme
    plan: standard
    contacts: [ops@acme.example]
    hosts:
      - name: web1.acme.example
        address: 127.0.0.1
        disable: [ping, http, https, plesk, imap, imaps, pop3, pop3s, smtps, mysql]
        checks:
          smtp: {port: SMTP_PORT}
          ssh: {port: SSH_PORT}
          ftp: {port: FTP_PORT}
      - name: twin-a
        address: 127.0.0.9
      - name: twin-b
        address: 127.0.0.9
`

// handlerFixture serves an inventory whose host has an SMTP check that
// works, an SSH check whose server is silent and an FTP check whose port is
// closed.
func handlerFixture(t *testing.T, reg prometheus.Registerer, args ...string) http.Handler {
	t.Helper()
	smtp := serve(t, scripted(send("220 ready\r\n"), expect("EHLO"), send(smtpEHLO), expect("QUIT"), send("221 bye\r\n")))
	ssh := serve(t, silent)
	ftp := closedPort(t)
	yml := strings.NewReplacer("SMTP_PORT", itoa(smtp), "SSH_PORT", itoa(ssh), "FTP_PORT", itoa(ftp)).Replace(handlerInventory)
	inv := parseInventory(t, yml)
	return NewHandler(testConfig(t, args...), func() *inventory.Inventory { return inv }, NewMetrics(reg), testLogger(t))
}

var durationRE = regexp.MustCompile(`(?m)^(mamori_probe_duration_seconds\{[^}]*\}) .*$`)

func TestHandler(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	h := handlerFixture(t, reg)
	start := time.Now()
	code, body := get(t, h, "/probe?target=web1.acme.example", "1.5")
	if el := time.Since(start); el > 1500*time.Millisecond {
		t.Errorf("answered after %s, beyond the 1.5s scrape timeout", el)
	}
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	body = durationRE.ReplaceAllString(body, "$1 D")
	ports := regexp.MustCompile(`port="\d+"`)
	got := ports.ReplaceAllStringFunc(body, func(s string) string { return `port="N"` })
	golden(t, "testdata/handler.golden", got)

	// The exporter's own metrics counted the three probes.
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP mamori_exporter_probe_requests_total Requests to /probe, by result: probed, bad_request, unknown_target, unknown_check, config_error.
# TYPE mamori_exporter_probe_requests_total counter
mamori_exporter_probe_requests_total{result="bad_request"} 0
mamori_exporter_probe_requests_total{result="config_error"} 0
mamori_exporter_probe_requests_total{result="probed"} 1
mamori_exporter_probe_requests_total{result="unknown_check"} 0
mamori_exporter_probe_requests_total{result="unknown_target"} 0
`), "mamori_exporter_probe_requests_total"); err != nil {
		t.Error(err)
	}
	for check, want := range map[string]float64{"smtp": 1, "ssh": 1, "ftp": 1, "imap": 0} {
		if got := testutil.ToFloat64(mustCounter(t, reg, "mamori_exporter_probes_total", "check", check)); got != want {
			t.Errorf("probes_total{check=%s} = %v, want %v", check, got, want)
		}
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "mamori_exporter_probe_failures_total", "check", "ssh", "reason", "timeout")); got != 1 {
		t.Errorf("failures_total{ssh,timeout} = %v", got)
	}
	if n, _ := testutil.GatherAndCount(reg, "mamori_exporter_probe_failures_total"); n != 14*len(Reasons()) {
		t.Errorf("%d failure series, want every outside check × every reason (%d)", n, 14*len(Reasons()))
	}
}

func TestHandlerDebug(t *testing.T) {
	h := handlerFixture(t, nil)
	code, body := get(t, h, "/probe?target=127.0.0.1&check=smtp&check=ftp&debug=true", "")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, want := range []string{
		"Probing 127.0.0.1 (host web1.acme.example, address 127.0.0.1)",
		"== check smtp, port ", "< 220 ready", "> EHLO ", "> QUIT", "success in",
		"== check ftp, port ", "failure (refused)",
		`mamori_probe_success{check="smtp",port=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("debug output lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "check ssh") {
		t.Error("check=smtp&check=ftp probed ssh too")
	}
}

func TestHandlerRejections(t *testing.T) {
	h := handlerFixture(t, nil)
	for _, tc := range []struct {
		path string
		code int
		msg  string
	}{
		{"/probe", 400, "the target parameter is missing"},
		{"/probe?target=198.18.0.99", 403, `target "198.18.0.99" is not a host of the inventory (see --probe.allow-unknown-targets)`},
		{"/probe?target=web1.acme.example&check=nope", 400, `unknown check "nope"`},
		{"/probe?target=web1.acme.example&check=load", 400, `check "load" runs on the host itself, not from outside`},
		{"/probe?target=web1.acme.example&check=url", 400, `check "url" is not in force on host web1.acme.example`},
		{"/probe?target=web1.acme.example&check=imap", 400, `check "imap" is not in force on host web1.acme.example`},
		{"/probe?target=127.0.0.9", 400, "address 127.0.0.9 belongs to hosts twin-a, twin-b: ask for one by name"},
	} {
		code, body := get(t, h, tc.path, "")
		if code != tc.code || strings.TrimSpace(body) != tc.msg {
			t.Errorf("%s: %d %q, want %d %q", tc.path, code, strings.TrimSpace(body), tc.code, tc.msg)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, "/probe?target=web1.acme.example", nil)
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, req)
	if rec.code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.code)
	}
}

func TestHandlerUnknownTargets(t *testing.T) {
	h := handlerFixture(t, nil, "--probe.allow-unknown-targets")
	for path, want := range map[string]int{
		"/probe?target=127.0.0.2&check=ftp":         200,
		"/probe?target=localhost&check=ftp":         200,
		"/probe?target=127.0.0.2:22":                400,
		"/probe?target=http://127.0.0.2/":           400,
		"/probe?target=127.0.0.2&check=url":         400, // needs a URL from the inventory
		"/probe?target=" + strings.Repeat("a", 300): 400,
	} {
		if code, body := get(t, h, path, "1"); code != want {
			t.Errorf("%s: %d, want %d: %s", path, code, want, body)
		}
	}
}

// TestHandlerAnswersWithinTheScrapeTimeout: a host whose services never
// answer takes the scrape timeout minus the offset, not longer.
func TestHandlerAnswersWithinTheScrapeTimeout(t *testing.T) {
	port := serve(t, silent)
	inv := parseInventory(t, fmt.Sprintf(`
customers:
  - name: c
    contacts: [a@b.example]
    hosts:
      - name: silent
        address: 127.0.0.1
        disable: [ping]
        checks: {http: {port: %[1]d}, https: {port: %[1]d}, plesk: {port: %[1]d}, imap: {port: %[1]d},
          imaps: {port: %[1]d}, pop3: {port: %[1]d}, pop3s: {port: %[1]d}, smtp: {port: %[1]d},
          smtps: {port: %[1]d}, ssh: {port: %[1]d}, ftp: {port: %[1]d}, mysql: {port: %[1]d}}
`, port))
	h := NewHandler(testConfig(t, "--probe.timeout-offset=250ms"), func() *inventory.Inventory { return inv }, nil, testLogger(t))
	start := time.Now()
	code, body := get(t, h, "/probe?target=silent", "1")
	el := time.Since(start)
	if code != 200 || el < 700*time.Millisecond || el > time.Second {
		t.Errorf("status %d after %s, want 200 after ~750ms", code, el)
	}
	mfs := metrics(t, body)
	n := 0
	for _, m := range mfs["mamori_probe_failure"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "reason" && l.GetValue() == "timeout" && m.GetGauge().GetValue() == 1 {
				n++
			}
		}
	}
	if n != 12 {
		t.Errorf("%d checks failed with timeout, want 12\n%s", n, body)
	}
}

func TestSD(t *testing.T) {
	inv, err := inventory.LoadFile("../../deploy/inventory.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	h := NewSDHandler(func() *inventory.Inventory { return inv }, testLogger(t))
	code, body := get(t, h, "/sd", "")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	golden(t, "testdata/sd.golden.json", body)
	code, body = get(t, NewSDHandler(func() *inventory.Inventory { return nil }, nil), "/sd", "")
	if code != 200 || body != "[]\n" {
		t.Errorf("no inventory: %d %q, want an empty list", code, body)
	}
}

func mustCounter(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue next
				}
			}
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
			c.Add(m.GetCounter().GetValue())
			return c
		}
	}
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
}

type recorder struct {
	header http.Header
	code   int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(code int)        { r.code = code }

var _ net.Conn = (*net.TCPConn)(nil)

// TestTextAnswerIsWhatExpfmtWrites: the hand-written text answer is the
// text encoder's output for the same families, byte for byte, and the
// other formats are served from those families.
func TestTextAnswerIsWhatExpfmtWrites(t *testing.T) {
	probes := []Probe{
		{Target: Target{Check: "ping"}, Result: Result{Success: true, Duration: 1500 * time.Microsecond,
			Ping: &PingStats{Sent: 3, Received: 2, RTT: 250 * time.Microsecond}}},
		{Target: Target{Check: "imaps", Port: 993}, Result: Result{Success: true, Duration: 12 * time.Millisecond,
			TLSExpiry: time.Unix(1893456000, 0)}},
		{Target: Target{Check: "smtp", Port: 25}, Result: Result{Reason: ReasonBanner, Duration: time.Second}},
		{Target: Target{Check: `we"ird\`, Port: 1}, Result: Result{Reason: ReasonTimeout, Duration: 3 * time.Second}},
		{Target: Target{Check: "ping"}, Result: Result{Reason: ReasonTimeout, Ping: &PingStats{Sent: 3}}},
	}
	var want strings.Builder
	enc := expfmt.NewEncoder(&want, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range gather(probes) {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(appendText(nil, probes)); got != want.String() {
		t.Errorf("text answer differs from expfmt's:\n--- got\n%s\n--- want\n%s", got, want.String())
	}
	if got := string(appendText(nil, nil)); got != "" {
		t.Errorf("no probes: %q", got)
	}
}

func TestProtobufAnswer(t *testing.T) {
	h := handlerFixture(t, nil)
	req := httptest.NewRequest(http.MethodGet, "/probe?target=web1.acme.example&check=smtp", nil)
	req.Header.Set("Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/vnd.google.protobuf") {
		t.Fatalf("content type %q", ct)
	}
	dec := expfmt.NewDecoder(rec.Body, expfmt.NewFormat(expfmt.TypeProtoDelim))
	names := map[string]bool{}
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			break
		}
		names[mf.GetName()] = true
	}
	if !names["mamori_probe_success"] || !names["mamori_probe_failure"] {
		t.Errorf("families %v", names)
	}
}

// TestPrometheusGetsText: Prometheus 2.42's Accept header is answered in
// the text format, as promhttp would.
func TestPrometheusGetsText(t *testing.T) {
	h := handlerFixture(t, nil)
	req := httptest.NewRequest(http.MethodGet, "/probe?target=web1.acme.example&check=smtp", nil)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("content type %q", ct)
	}
	if v, ok := valueOf(metrics(t, rec.Body.String()), "mamori_probe_success", "check", "smtp", "port", regexp.MustCompile(`port="(\d+)"`).FindStringSubmatch(rec.Body.String())[1]); !ok || v != 1 {
		t.Errorf("success %v %t\n%s", v, ok, rec.Body.String())
	}
}
