package generate

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mamori-ops/mamori/internal/generate/contract"
	"github.com/mamori-ops/mamori/runbook"
)

func ruleFiles() []string     { return []string{checksRulesFile, selfRulesFile} }
func ruleTestFiles() []string { return []string{checksTestFile, selfTestFile} }

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), path))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadRuleFiles(t *testing.T) map[string]yamlRuleFile {
	out := map[string]yamlRuleFile{}
	for _, p := range ruleFiles() {
		var f yamlRuleFile
		readYAML(t, p, &f)
		out[p] = f
	}
	return out
}

func loadTestFiles(t *testing.T) map[string]yamlTestFile {
	out := map[string]yamlTestFile{}
	for _, p := range ruleTestFiles() {
		var f yamlTestFile
		readYAML(t, p, &f)
		out[p] = f
	}
	return out
}

func TestRulesPassPromtoolCheck(t *testing.T) {
	promtool := needTool(t, "promtool")
	out, err := runTool(t, "", promtool, append([]string{"check", "rules"}, ruleFiles()...)...)
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func TestRulesPassPromtoolUnitTests(t *testing.T) {
	promtool := needTool(t, "promtool")
	var names []string
	for _, p := range ruleTestFiles() {
		names = append(names, filepath.Base(p))
	}
	out, err := runTool(t, filepath.Join(repoRoot(t), "rules"), promtool, append([]string{"test", "rules"}, names...)...)
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// untested lists the rules the tests do not cover: an alert needs a case
// where it fires and one where it stays quiet, a recording rule a
// promql_expr_test of its series, a rule file a test file that loads it.
func untested(rules map[string]yamlRuleFile, tests map[string]yamlTestFile) []string {
	fires, quiet, exprs, loaded := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for path, f := range tests {
		for _, rf := range f.RuleFiles {
			loaded[filepath.Join(filepath.Dir(path), rf)] = true
		}
		for _, g := range f.Tests {
			for _, at := range g.AlertRuleTests {
				if len(at.ExpAlerts) > 0 {
					fires[at.Alertname] = true
				} else {
					quiet[at.Alertname] = true
				}
			}
			for _, et := range g.PromQLExprTests {
				if len(et.ExpSamples) > 0 {
					exprs[et.Expr] = true
				}
			}
		}
	}
	var missing []string
	for path, f := range rules {
		if !loaded[path] {
			missing = append(missing, path+": no test file loads it")
		}
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				switch {
				case r.Alert != "" && !fires[r.Alert]:
					missing = append(missing, "alert "+r.Alert+": no test where it fires")
				case r.Alert != "" && !quiet[r.Alert]:
					missing = append(missing, "alert "+r.Alert+": no test where it stays quiet")
				case r.Record != "" && !exprs[sel(r.Record, sortedPairs(r.Labels)...)]:
					missing = append(missing, "recording rule "+sel(r.Record, sortedPairs(r.Labels)...)+": no test")
				}
			}
		}
	}
	return missing
}

func TestEveryRuleIsTested(t *testing.T) {
	rules := loadRuleFiles(t)
	n := 0
	for _, f := range rules {
		for _, g := range f.Groups {
			n += len(g.Rules)
		}
	}
	if n < len(runbook.Checks()) {
		t.Fatalf("only %d rules found", n)
	}
	for _, m := range untested(rules, loadTestFiles(t)) {
		t.Error(m)
	}
}

// TestUntestedFindsGaps proves the coverage check would catch an alert or
// a recording rule added without tests.
func TestUntestedFindsGaps(t *testing.T) {
	rules := map[string]yamlRuleFile{"rules/x.rules.yml": {Groups: []yamlRuleGroup{{Name: "g", Rules: []yamlRule{
		{Alert: "Tested", Expr: "up == 0"}, {Alert: "OnlyFires", Expr: "up == 0"}, {Alert: "Untested", Expr: "up == 0"},
		{Record: "r:x", Expr: "up", Labels: map[string]string{"check": "a"}},
	}}}}}
	tests := map[string]yamlTestFile{"rules/x.test.yml": {RuleFiles: []string{"x.rules.yml"}, Tests: []yamlTestGroup{{
		AlertRuleTests: []yamlAlertTest{
			{Alertname: "Tested", ExpAlerts: []yamlExpAlert{{}}}, {Alertname: "Tested"},
			{Alertname: "OnlyFires", ExpAlerts: []yamlExpAlert{{}}},
		},
	}}}}
	got := strings.Join(untested(rules, tests), "\n")
	for _, want := range []string{"OnlyFires: no test where it stays quiet", "Untested: no test where it fires", `r:x{check="a"}: no test`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "alert Tested") {
		t.Errorf("a tested alert reported:\n%s", got)
	}
	delete(tests, "rules/x.test.yml")
	if !strings.Contains(strings.Join(untested(rules, tests), "\n"), "no test file loads it") {
		t.Error("a rule file without tests passes")
	}
}

func TestRuleExpressionsNameContractMetrics(t *testing.T) {
	for path, f := range loadRuleFiles(t) {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if err := checkPromQL(r.Expr); err != nil {
					t.Errorf("%s %s%s: %v", path, r.Alert, r.Record, err)
				}
				if m, ok := contract.Lookup(r.Record); r.Record != "" && (!ok || m.Source != contract.Recording) {
					t.Errorf("%s: recording rule %s is not a recorded series of the contract", path, r.Record)
				}
			}
		}
	}
}

var readmeHeading = regexp.MustCompile(`(?m)^#+ (\S+)$`)

// TestAlertsFollowTheRegistry: one alert per check, with the check's for,
// severity, service and remediate label, every alert documented in the
// README section its runbook_url points to.
func TestAlertsFollowTheRegistry(t *testing.T) {
	alerts := map[string]yamlRule{}
	for _, f := range loadRuleFiles(t) {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					alerts[r.Alert] = r
				}
			}
		}
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range readmeHeading.FindAllStringSubmatch(string(readme), -1) {
		anchors[strings.ToLower(m[1])] = true
	}
	for _, c := range runbook.Checks() {
		a, ok := alerts[alertName(c)]
		if !ok {
			t.Errorf("check %s: no alert %s", c.ID, alertName(c))
			continue
		}
		want := map[string]string{"check": c.ID, "severity": c.Severity}
		if c.Service != "" {
			want["service"] = c.Service
		}
		if c.Remediates() {
			want["remediate"] = "true"
		}
		if fmt.Sprint(a.Labels) != fmt.Sprint(want) {
			t.Errorf("%s labels %v, want %v", a.Alert, a.Labels, want)
		}
		if a.For != promDuration(c.For) {
			t.Errorf("%s for %q, want the registry's %s", a.Alert, a.For, promDuration(c.For))
		}
	}
	for name, a := range alerts {
		for _, k := range []string{"summary", "description", "runbook_url"} {
			if a.Annotations[k] == "" {
				t.Errorf("%s: no %s annotation", name, k)
			}
		}
		if s := a.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: severity %q", name, s)
		}
		url := a.Annotations["runbook_url"]
		anchor := strings.TrimPrefix(url, docsURL+"#")
		if anchor == url || !anchors[anchor] {
			t.Errorf("%s: runbook_url %s has no section in README.md", name, url)
		}
	}
}
