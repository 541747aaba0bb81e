package generate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

func dashboardFiles() []string { return []string{fleetDashboard, hostDashboard, remediationDashboard} }

// loadDashboard parses a committed dashboard strictly: unknown fields,
// wrong types and missing required fields are errors.
func loadDashboard(t *testing.T, path string) *dashboard.Dashboard {
	t.Helper()
	// The SDK needs its panel and query types registered to parse strictly;
	// the registration is the SDK's own and idempotent.
	plugins.RegisterDefaultPlugins()
	raw, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard.Dashboard
	if err := sdkError(d.UnmarshalJSONStrict(raw)); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := sdkError(d.Validate()); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// The SDK (v0.0.22) reports a panel's strict errors, but when there are
	// none it drops the panel, and a query likewise (an empty BuildErrors
	// taken for an error): parse panels and queries one by one, as strictly.
	var top struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	d.Panels = nil
	for i, rp := range top.Panels {
		p, err := strictPanel(rp)
		if err != nil {
			t.Fatalf("%s panels[%d]: %v", path, i, err)
		}
		d.Panels = append(d.Panels, p)
	}
	return &d
}

func strictPanel(raw json.RawMessage) (dashboard.PanelOrRowPanel, error) {
	var shape struct {
		Type    string            `json:"type"`
		Targets []json.RawMessage `json:"targets"`
		Panels  []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &shape); err != nil {
		return dashboard.PanelOrRowPanel{}, err
	}
	if shape.Type == "row" {
		row := &dashboard.RowPanel{}
		if err := sdkError(row.UnmarshalJSONStrict(raw)); err != nil {
			return dashboard.PanelOrRowPanel{}, err
		}
		row.Panels = nil
		for i, inner := range shape.Panels {
			p, err := strictPanel(inner)
			if err != nil || p.Panel == nil {
				return dashboard.PanelOrRowPanel{}, fmt.Errorf("panels[%d]: %v", i, err)
			}
			row.Panels = append(row.Panels, *p.Panel)
		}
		return dashboard.PanelOrRowPanel{RowPanel: row}, nil
	}
	p := &dashboard.Panel{}
	if err := sdkError(p.UnmarshalJSONStrict(raw)); err != nil {
		return dashboard.PanelOrRowPanel{}, err
	}
	if err := sdkError(p.Validate()); err != nil {
		return dashboard.PanelOrRowPanel{}, err
	}
	p.Targets = nil
	for i, rt := range shape.Targets {
		q := &prometheus.Dataquery{}
		if err := sdkError(q.UnmarshalJSONStrict(rt)); err != nil {
			return dashboard.PanelOrRowPanel{}, fmt.Errorf("targets[%d]: %w", i, err)
		}
		if err := sdkError(q.Validate()); err != nil {
			return dashboard.PanelOrRowPanel{}, fmt.Errorf("targets[%d]: %w", i, err)
		}
		p.Targets = append(p.Targets, q)
	}
	return dashboard.PanelOrRowPanel{Panel: p}, nil
}

// sdkError undoes the SDK's habit of returning an empty cog.BuildErrors as
// a non-nil error.
func sdkError(err error) error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	return err
}

// dashboardQuery is one PromQL query of a dashboard, with where it is.
type dashboardQuery struct {
	where, expr string
}

// panelsOf lists a dashboard's panels, those inside collapsed rows too.
func panelsOf(d *dashboard.Dashboard) []dashboard.Panel {
	var out []dashboard.Panel
	for _, p := range d.Panels {
		if p.Panel != nil {
			out = append(out, *p.Panel)
		}
		if p.RowPanel != nil {
			out = append(out, p.RowPanel.Panels...)
		}
	}
	return out
}

func queriesOf(t *testing.T, path string, d *dashboard.Dashboard) []dashboardQuery {
	t.Helper()
	var qs []dashboardQuery
	for _, p := range panelsOf(d) {
		for i, target := range p.Targets {
			q, ok := target.(*prometheus.Dataquery)
			if !ok {
				t.Errorf("%s panel %q target %d: %T, not a Prometheus query", path, deref(p.Title), i, target)
				continue
			}
			qs = append(qs, dashboardQuery{fmt.Sprintf("%s panel %q query %s", path, deref(p.Title), deref(q.RefId)), q.Expr})
		}
	}
	return qs
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func TestDashboardsParseStrictly(t *testing.T) {
	for _, path := range dashboardFiles() {
		d := loadDashboard(t, path)
		if deref(d.Uid) == "" || deref(d.Title) == "" {
			t.Errorf("%s: no uid or title", path)
		}
		if len(panelsOf(d)) == 0 {
			t.Errorf("%s: no panels", path)
		}
	}
}

func TestDashboardsUseTheDatasourceVariable(t *testing.T) {
	want := "${" + datasourceVar + "}"
	for _, path := range dashboardFiles() {
		d := loadDashboard(t, path)
		vars := map[string]dashboard.VariableModel{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v
		}
		ds, ok := vars[datasourceVar]
		if !ok || ds.Type != dashboard.VariableTypeDatasource || ds.Query == nil || deref(ds.Query.String) != "prometheus" {
			t.Errorf("%s: no Prometheus data source variable %q", path, datasourceVar)
		}
		for _, name := range []string{"customer", "host"} {
			if _, ok := vars[name]; !ok {
				t.Errorf("%s: no %s variable", path, name)
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != dashboard.VariableTypeQuery {
				continue
			}
			if v.Datasource == nil || deref(v.Datasource.Uid) != want {
				t.Errorf("%s variable %s: data source %+v, want uid %s", path, v.Name, v.Datasource, want)
			}
		}
		for _, p := range panelsOf(d) {
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || deref(p.Datasource.Uid) != want || deref(p.Datasource.Type) != "prometheus" {
				t.Errorf("%s panel %q: data source %+v, want the %s variable", path, deref(p.Title), p.Datasource, want)
			}
			for _, target := range p.Targets {
				if q, ok := target.(*prometheus.Dataquery); ok && q.Datasource != nil && deref(q.Datasource.Uid) != want {
					t.Errorf("%s panel %q: a query names data source %q", path, deref(p.Title), deref(q.Datasource.Uid))
				}
			}
		}
	}
}

// TestDashboardsHaveNoHardCodedUIDs looks at the raw JSON: every "uid"
// inside a "datasource" object is the variable.
func TestDashboardsHaveNoHardCodedUIDs(t *testing.T) {
	for _, path := range dashboardFiles() {
		raw, err := os.ReadFile(filepath.Join("..", "..", path))
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		walkJSON(v, "", func(where string, key string, val any) {
			if key != "datasource" {
				return
			}
			m, ok := val.(map[string]any)
			if !ok {
				t.Errorf("%s %s: datasource %v is not a reference object", path, where, val)
				return
			}
			if uid, ok := m["uid"]; ok && uid != "${"+datasourceVar+"}" {
				t.Errorf("%s %s: hard-coded data source uid %v", path, where, uid)
			}
		})
	}
}

func walkJSON(v any, where string, f func(where, key string, val any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			f(where, k, val)
			walkJSON(val, where+"."+k, f)
		}
	case []any:
		for i, val := range x {
			walkJSON(val, fmt.Sprintf("%s[%d]", where, i), f)
		}
	}
}

func TestDashboardPanelsHaveUnits(t *testing.T) {
	for _, path := range dashboardFiles() {
		for _, p := range panelsOf(loadDashboard(t, path)) {
			if p.Type == "row" || p.Type == "text" {
				continue
			}
			if p.FieldConfig == nil || deref(p.FieldConfig.Defaults.Unit) == "" {
				t.Errorf("%s panel %q: no unit", path, deref(p.Title))
			}
		}
	}
}

func TestDashboardQueriesNameContractMetrics(t *testing.T) {
	n := 0
	for _, path := range dashboardFiles() {
		d := loadDashboard(t, path)
		for _, q := range queriesOf(t, path, d) {
			n++
			if err := checkPromQL(substituteGrafana(q.expr)); err != nil {
				t.Errorf("%s: %s: %v", q.where, q.expr, err)
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != dashboard.VariableTypeQuery {
				continue
			}
			n++
			if err := checkVariableQuery(deref(v.Query.String)); err != nil {
				t.Errorf("%s variable %s: %v", path, v.Name, err)
			}
		}
	}
	if n < 30 {
		t.Errorf("only %d queries found: the walk misses panels", n)
	}
}

// TestDashboardQueriesParseInPrometheus hands every query, its variables
// replaced, to the Prometheus that deploy/ targets, as recording rules.
func TestDashboardQueriesParseInPrometheus(t *testing.T) {
	promtool := needTool(t, "promtool")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard-queries\n    rules:\n")
	for _, path := range dashboardFiles() {
		d := loadDashboard(t, path)
		for i, q := range queriesOf(t, path, d) {
			fmt.Fprintf(&b, "      - record: dashboard_query_%d\n        expr: %q\n", i, substituteGrafana(q.expr))
		}
	}
	file := filepath.Join(t.TempDir(), "queries.yml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runTool(t, "", promtool, "check", "rules", file); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// TestStrictPanelParsingRejectsMistakes proves the panel and query parsing
// above is strict, despite the SDK's dropped-panel quirk.
func TestStrictPanelParsingRejectsMistakes(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	good := `{"type":"timeseries","title":"t","targets":[{"refId":"A","expr":"up","datasource":{"type":"prometheus","uid":"${datasource}"}}]}`
	p, err := strictPanel(json.RawMessage(good))
	if err != nil || p.Panel == nil || len(p.Panel.Targets) != 1 {
		t.Fatalf("a good panel: %v %+v", err, p)
	}
	for name, bad := range map[string]string{
		"unknown panel field":  `{"type":"timeseries","title":"t","colour":"red"}`,
		"unknown query field":  `{"type":"timeseries","targets":[{"refId":"A","expr":"up","exprr":"x"}]}`,
		"wrong option type":    `{"type":"stat","options":{"colorMode":1}}`,
		"unknown option field": `{"type":"table","options":{"showHeader":true,"frobnicate":true}}`,
	} {
		if _, err := strictPanel(json.RawMessage(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
