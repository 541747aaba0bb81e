package contract

import (
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestDiff: each kind of disagreement is reported once, and an agreeing
// exposition gives none.
func TestDiff(t *testing.T) {
	const agreeing = `# TYPE mamori_exporter_probe_requests_total counter
mamori_exporter_probe_requests_total{result="probed"} 1
mamori_exporter_probe_requests_total{result="bad_request"} 0
mamori_exporter_probe_requests_total{result="unknown_target"} 0
mamori_exporter_probe_requests_total{result="unknown_check"} 0
mamori_exporter_probe_requests_total{result="config_error"} 0
# TYPE go_goroutines gauge
go_goroutines 7
`
	for _, c := range []struct {
		name, text, want string
	}{
		{"agreeing", agreeing, ""},
		{"unknown", agreeing + "# TYPE mamori_made_up gauge\nmamori_made_up 1\n", "mamori_made_up is exported but not in the contract"},
		{"type", strings.Replace(agreeing, "requests_total counter", "requests_total gauge", 1), "type gauge, contract says counter"},
		{"labels", agreeing + "# TYPE mamori_exporter_build_info gauge\nmamori_exporter_build_info{version=\"1\"} 1\n", "mamori_exporter_build_info: labels [version]"},
		{"value", agreeing + "mamori_exporter_probe_requests_total{result=\"teapot\"} 0\n", `result="teapot" is none of the contract's values`},
		{"not from the start", strings.Replace(agreeing, "mamori_exporter_probe_requests_total{result=\"unknown_check\"} 0\n", "", 1), `result="unknown_check" not exported from the start`},
	} {
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(c.text))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		// Only the one metric is checked for presence: the test exports no other.
		var diffs []string
		for _, d := range Diff(families, true, Exporter) {
			if strings.HasPrefix(d, "mamori_exporter_probe_requests_total") || !strings.Contains(d, "in the contract but not exported") {
				diffs = append(diffs, d)
			}
		}
		switch {
		case c.want == "" && len(diffs) != 0:
			t.Errorf("%s: %v", c.name, diffs)
		case c.want != "" && (len(diffs) != 1 || !strings.Contains(diffs[0], c.want)):
			t.Errorf("%s: %v, want one containing %q", c.name, diffs, c.want)
		}
	}
	// A Lazy metric may be missing; another may not.
	for _, d := range Diff(nil, true, ProbeRole) {
		if strings.Contains(d, "mamori_probe_icmp_rtt_seconds") || strings.Contains(d, "mamori_tls_cert_expiry") {
			t.Errorf("lazy metric reported: %s", d)
		}
	}
	if d := Diff(nil, true, ProbeRole); len(d) == 0 || !strings.Contains(strings.Join(d, "\n"), "mamori_probe_success is in the contract but not exported") {
		t.Errorf("missing mamori_probe_success not reported: %v", d)
	}
}
