package generate

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestPrometheusConfigPassesPromtool(t *testing.T) {
	promtool := needTool(t, "promtool")
	out, err := runTool(t, "", promtool, "check", "config", prometheusFile)
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	// promtool follows rule_files: the shipped config must find the rules.
	for _, f := range ruleFiles() {
		if !strings.Contains(out, filepath.Base(f)) {
			t.Errorf("promtool did not load %s through rule_files:\n%s", f, out)
		}
	}
}

// TestEndToEndPrometheusConfigPassesPromtool checks the short-interval copy
// the end-to-end test runs, even where that test does not run.
func TestEndToEndPrometheusConfigPassesPromtool(t *testing.T) {
	promtool := needTool(t, "promtool")
	dir := t.TempDir()
	cfg := endToEndPrometheus(repoRoot(t), "127.0.0.1:19796", 19796)
	raw, err := cfg.render()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runTool(t, dir, promtool, "check", "config", file); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}

func TestPrometheusConfigRejectsAProbeTimeoutOverTheInterval(t *testing.T) {
	c := deployedPrometheus()
	c.ProbeTimeout = c.ScrapeInterval + time.Second
	if _, err := c.render(); err == nil {
		t.Fatal("accepted")
	}
}

func TestAlertmanagerConfigPassesAmtool(t *testing.T) {
	amtool := needTool(t, "amtool")
	if out, err := runTool(t, "", amtool, "check-config", alertmanagerFile); err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
}

// TestAlertmanagerRoutesEveryAlert asks amtool where each alert of the rules,
// with its labels, goes: remediate="true" to the remediator, the rest to the
// operators.
func TestAlertmanagerRoutesEveryAlert(t *testing.T) {
	amtool := needTool(t, "amtool")
	rs, err := buildRules()
	if err != nil {
		t.Fatal(err)
	}
	toRemediator := 0
	for _, a := range rs.Alerts {
		want := receiverOperators
		if a.Labels["remediate"] == "true" {
			want = receiverRemediator
			toRemediator++
		}
		args := []string{"config", "routes", "test", "--config.file=" + alertmanagerFile, "--verify.receivers=" + want,
			"alertname=" + a.Name, "customer=acme", "host=web1.acme.example"}
		for _, k := range sortedKeys(a.Labels) {
			args = append(args, k+"="+a.Labels[k])
		}
		if out, err := runTool(t, "", amtool, args...); err != nil {
			t.Errorf("%s with labels %v: want receiver %s: %v\n%s", a.Name, a.Labels, want, err, out)
		}
	}
	if toRemediator == 0 {
		t.Error("no alert routes to the remediator")
	}
}

var alertnameMatcher = regexp.MustCompile(`alertname[!=~]+"([^"]+)"`)

// TestInhibitRulesNameRealAlerts: every alert name in deploy/alertmanager.yml
// is one the rules define.
func TestInhibitRulesNameRealAlerts(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), alertmanagerFile))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := buildRules()
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, a := range rs.Alerts {
		defined[a.Name] = true
	}
	var named []string
	for _, m := range alertnameMatcher.FindAllStringSubmatch(string(raw), -1) {
		for _, name := range strings.Split(m[1], "|") {
			named = append(named, name)
			if !defined[name] {
				t.Errorf("alertmanager.yml names alert %q, which no rule defines", name)
			}
		}
	}
	sort.Strings(named)
	if len(named) < 4 {
		t.Errorf("inhibit rules name only %v", named)
	}
}
