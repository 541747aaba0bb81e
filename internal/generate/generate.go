// Package generate renders every file derived from the runbook registry:
// the README's tables, the alert rules and the dashboards. `make generate`
// writes them; a test fails when a committed copy is stale.
package generate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// File is one generated file, rendered from the registry and, for files
// that are only partly generated, from the file's current content.
type File struct {
	Path   string
	Render func(current []byte) ([]byte, error)
}

// Files lists every generated file, relative to the repository root.
func Files() []File {
	return []File{
		{Path: "README.md", Render: spliceSection("checks", checkTable)},
		{Path: "README.md", Render: readmeAlerts},
		{Path: checksRulesFile, Render: renderRules(groupChecks)},
		{Path: selfRulesFile, Render: renderRules(groupSelf)},
		{Path: checksTestFile, Render: renderRuleTests(groupChecks, checksRulesFile)},
		{Path: selfTestFile, Render: renderRuleTests(groupSelf, selfRulesFile)},
		{Path: prometheusFile, Render: renderPrometheus},
		{Path: alertmanagerFile, Render: renderAlertmanager},
		{Path: fleetDashboard, Render: renderFleet},
		{Path: hostDashboard, Render: renderHost},
		{Path: remediationDashboard, Render: renderRemediation},
	}
}

// Write renders every file under root and writes those that changed; it
// returns the paths it wrote.
func Write(root string) ([]string, error) {
	var wrote []string
	for _, f := range Files() {
		path := filepath.Join(root, f.Path)
		cur, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			return wrote, err
		}
		out, err := f.Render(cur)
		if err != nil {
			return wrote, fmt.Errorf("%s: %w", f.Path, err)
		}
		if bytes.Equal(cur, out) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return wrote, err
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			return wrote, err
		}
		wrote = append(wrote, f.Path)
	}
	return wrote, nil
}

// spliceSection replaces what stands between the markers
// <!-- BEGIN generated:NAME --> and <!-- END generated:NAME --> with the
// rendered text, so hand-written prose around it stays as it is.
func spliceSection(name string, render func() string) func([]byte) ([]byte, error) {
	return func(cur []byte) ([]byte, error) {
		begin := []byte("<!-- BEGIN generated:" + name + " -->\n")
		end := []byte("<!-- END generated:" + name + " -->")
		i := bytes.Index(cur, begin)
		j := bytes.Index(cur, end)
		if i < 0 || j < i {
			return nil, fmt.Errorf("markers for section %q not found", name)
		}
		var b bytes.Buffer
		b.Write(cur[:i+len(begin)])
		b.WriteString(render())
		b.Write(cur[j:])
		return b.Bytes(), nil
	}
}
