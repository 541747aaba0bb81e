package generate

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"github.com/mamori-ops/mamori/internal/generate/contract"
	"github.com/mamori-ops/mamori/runbook"
)

// The dashboards under dashboards/, for Grafana's file provisioning or
// import. Each selects its Prometheus with the datasource variable: no
// data source UID is written into them.
const (
	fleetDashboard       = "dashboards/mamori-fleet.json"
	hostDashboard        = "dashboards/mamori-host.json"
	remediationDashboard = "dashboards/mamori-remediation.json"
)

// datasourceVar is the name of every dashboard's data source variable.
const datasourceVar = "datasource"

func datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${" + datasourceVar + "}")}
}

// board wraps the SDK's builder: it numbers panels and lays them out.
type board struct {
	b      *dashboard.DashboardBuilder
	nextID uint32
}

func newBoard(uid, title, description string) *board {
	b := dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"mamori", "generated"}).
		Refresh("1m").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder(datasourceVar).
			Label("Data source").
			Type("prometheus"))
	return &board{b: b}
}

func (d *board) id() uint32 { d.nextID++; return d.nextID }

func (d *board) row(title string) { d.b.WithRow(dashboard.NewRowBuilder(title).Id(d.id())) }

// queryVar is a label_values variable.
func queryVar(name, label, query string, multi bool) *dashboard.QueryVariableBuilder {
	v := dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Definition(query).
		Datasource(datasource()).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
	if multi {
		v = v.Multi(true).IncludeAll(true).AllValue(".*")
	}
	return v
}

// targetJobs matches the jobs whose series carry customer and host.
const targetJobs = `job=~"` + contract.JobHost + `|` + contract.JobProbe + `"`

func customerVar() *dashboard.QueryVariableBuilder {
	return queryVar("customer", "Customer", fmt.Sprintf("label_values(up{%s}, customer)", targetJobs), true)
}

func hostVar(multi bool) *dashboard.QueryVariableBuilder {
	return queryVar("host", "Host", fmt.Sprintf(`label_values(up{%s, customer=~"$customer"}, host)`, targetJobs), multi)
}

// Queries name the data source too, as Grafana writes them: a reader (and
// the SDK's strict parser) knows their type without the panel.
func rangeQuery(ref, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(datasource()).RefId(ref).Expr(expr).LegendFormat(legend).Range()
}

func instantQuery(ref, expr string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(datasource()).RefId(ref).Expr(expr).Instant().Format(prometheus.PromQueryFormatTable)
}

func steps(colors ...any) *dashboard.ThresholdsConfigBuilder {
	var s []dashboard.Threshold
	for i := 0; i+1 < len(colors); i += 2 {
		t := dashboard.Threshold{Color: colors[i+1].(string)}
		if v, ok := colors[i].(float64); ok {
			t.Value = cog.ToPtr(v)
		}
		s = append(s, t)
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(s)
}

// okFail maps a 1/0 status to OK and FAIL.
func okFail(ok, fail string) []dashboard.ValueMapping {
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{
		Type: dashboard.MappingTypeValueToText,
		Options: map[string]dashboard.ValueMappingResult{
			"0": {Text: cog.ToPtr(fail), Color: cog.ToPtr("red"), Index: cog.ToPtr[int32](0)},
			"1": {Text: cog.ToPtr(ok), Color: cog.ToPtr("green"), Index: cog.ToPtr[int32](1)},
		},
	}}}
}

func counter(title, description, expr, unit string, w uint32, th *dashboard.ThresholdsConfigBuilder) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).Description(description).
		Datasource(datasource()).
		WithTarget(instantQuery("A", expr)).
		Unit(unit).
		Thresholds(th).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeNone).
		Orientation(common.VizOrientationAuto).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		Height(4).Span(w)
}

func graph(title, description, unit string, w, h uint32, queries ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).Description(description).
		Datasource(datasource()).
		Unit(unit).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeTable).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true).
			Calcs([]string{"lastNotNull", "max"})).
		Height(h).Span(w)
	for _, q := range queries {
		p = p.WithTarget(q)
	}
	return p
}

func timeline(title, description, expr, legend string, w, h uint32, mappings []dashboard.ValueMapping) *statetimeline.PanelBuilder {
	return statetimeline.NewPanelBuilder().
		Title(title).Description(description).
		Datasource(datasource()).
		WithTarget(rangeQuery("A", expr, legend)).
		Unit("short").
		Mappings(mappings).
		Thresholds(steps(nil, "red", 1.0, "green")).
		ShowValue(common.VisibilityModeNever).
		MergeValues(true).
		Height(h).Span(w)
}

func tablePanel(title, description, expr, unit string, w, h uint32, transformations ...dashboard.DataTransformerConfig) *table.PanelBuilder {
	p := table.NewPanelBuilder().
		Title(title).Description(description).
		Datasource(datasource()).
		WithTarget(instantQuery("A", expr)).
		Unit(unit).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{"sum"})).
		Height(h).Span(w)
	for _, t := range transformations {
		p = p.WithTransformation(t)
	}
	return p
}

// organize keeps the named columns, in order, and drops the rest that an
// instant table query returns.
func organize(keep []string, drop ...string) dashboard.DataTransformerConfig {
	index := map[string]int{}
	for i, k := range keep {
		index[k] = i
	}
	exclude := map[string]bool{"Time": true, "__name__": true}
	for _, d := range drop {
		exclude[d] = true
	}
	return dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
		"excludeByName": exclude, "indexByName": index, "renameByName": map[string]string{},
	}}
}

func render(d *board) ([]byte, error) {
	dash, err := d.b.Build()
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(dash, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func matchers(kv ...string) string {
	var m []string
	for i := 0; i+1 < len(kv); i += 2 {
		m = append(m, fmt.Sprintf("%s=~%q", kv[i], kv[i+1]))
	}
	return "{" + strings.Join(m, ", ") + "}"
}

// fleetSel narrows a selector to the chosen customers and hosts.
const fleetSel = `{customer=~"$customer", host=~"$host"}`

// renderFleet is the fleet overview: what fails now, every host against
// every check of the registry.
func renderFleet([]byte) ([]byte, error) {
	hostDown, err := hostDownCheck()
	if err != nil {
		return nil, err
	}
	d := newBoard("mamori-fleet", "mamori / Fleet",
		"Every customer's hosts against every runbook check, and what fails now. Generated from the runbook registry.")
	d.b.WithVariable(customerVar()).WithVariable(hostVar(true))

	d.row("Now")
	red := steps(nil, "green", 1.0, "red")
	d.b.WithPanel(counter("Hosts", "Hosts Prometheus scrapes or probes.",
		fmt.Sprintf("count(count by (customer, host) (up%s))", matchers("job", contract.JobHost+"|"+contract.JobProbe, "customer", "$customer", "host", "$host")),
		"short", 4, steps(nil, "blue")).Id(d.id()))
	d.b.WithPanel(counter("Hosts down", "Hosts that do not answer ping from the prober.",
		fmt.Sprintf(`count(%s{check="%s", customer=~"$customer", host=~"$host"} == 0) or vector(0)`, checkOK, hostDown),
		"short", 4, red).Id(d.id()))
	d.b.WithPanel(counter("Checks failing", "Host × check pairs failing now, before any for: delay.",
		fmt.Sprintf("count(%s%s == 0) or vector(0)", checkOK, fleetSel), "short", 4, red).Id(d.id()))
	d.b.WithPanel(counter("Alerts firing", "Alerts firing now, about checks and about mamori itself.",
		`count(ALERTS{alertstate="firing", customer=~"$customer", host=~"$host"}) or vector(0)`, "short", 4, red).Id(d.id()))
	d.b.WithPanel(counter("Scrapes failing", "Host-role and probe-role scrapes that fail: checks that are blind.",
		fmt.Sprintf("count(up%s == 0) or vector(0)", matchers("job", contract.JobHost+"|"+contract.JobProbe, "customer", "$customer", "host", "$host")),
		"short", 4, steps(nil, "green", 1.0, "orange")).Id(d.id()))
	d.b.WithPanel(counter("Remediator", "mamori_remediator instances up.",
		fmt.Sprintf(`sum(up{job="%s"}) or vector(0)`, contract.JobRemediator),
		"short", 4, steps(nil, "red", 1.0, "green")).Id(d.id()))

	d.row("Status grid")
	order := map[string]int{"host\\check": 0}
	for i, c := range runbook.Checks() {
		order[c.ID] = i + 1
	}
	d.b.WithPanel(tablePanel("Hosts × checks",
		"mamori:check_ok per host and check, from the recording rules: OK, or FAIL before any for: delay. Empty: the check is off on the host.",
		fmt.Sprintf("%s%s", checkOK, fleetSel), "short", 24, 12,
		dashboard.DataTransformerConfig{Id: "groupingToMatrix", Options: map[string]any{
			"columnField": contract.LabelCheck, "rowField": contract.LabelHost, "valueField": "Value"}},
		dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
			"indexByName": order, "excludeByName": map[string]bool{}, "renameByName": map[string]string{"host\\check": "host"}}}).
		Mappings(okFail("OK", "FAIL")).
		Thresholds(steps(nil, "red", 1.0, "green")).
		CellOptions(common.TableCellOptions{TableColoredBackgroundCellOptions: &common.TableColoredBackgroundCellOptions{
			Type: common.TableCellDisplayModeColorBackground}}).
		Id(d.id()))

	d.row("Failing")
	d.b.WithPanel(tablePanel("Alerts firing now", "Firing alerts with their labels; remediate=true ones are with the remediator.",
		`ALERTS{alertstate="firing", customer=~"$customer", host=~"$host"}`, "short", 24, 8,
		organize([]string{"customer", "host", "alertname", "check", "service", "severity", "remediate"},
			"Value", "alertstate", "job", "instance", "port")).Id(d.id()))
	d.b.WithPanel(graph("Failing checks over time", "Hosts failing each check.", "short", 24, 8,
		rangeQuery("A", fmt.Sprintf("count by (check) (%s%s == 0)", checkOK, fleetSel), "{{check}}")).
		DrawStyle(common.GraphDrawStyleBars).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
		Id(d.id()))
	return render(d)
}

// hostDownCheck is the registry check that says a host is down.
func hostDownCheck() (string, error) {
	for _, c := range runbook.Checks() {
		if c.Protocol == runbook.ICMP {
			return c.ID, nil
		}
	}
	return "", fmt.Errorf("the registry has no ICMP check")
}

// renderHost is one host: its checks, probes, processes, the values of the
// threshold checks against the host's own thresholds, and the exporter.
func renderHost([]byte) ([]byte, error) {
	d := newBoard("mamori-host", "mamori / Host",
		"One host: every check, the probes from outside, process presence, and load, swap, disk and mail queue against the host's own thresholds. Generated from the runbook registry.")
	d.b.WithVariable(customerVar()).WithVariable(hostVar(false))
	host := `{host="$host"}`

	d.row("Checks")
	d.b.WithPanel(timeline("Checks", "mamori:check_ok per check: OK, or FAIL before any for: delay.",
		checkOK+host, "{{check}}", 24, 10, okFail("OK", "FAIL")).Id(d.id()))

	d.row("From outside")
	d.b.WithPanel(graph("Probe duration", "How long each check's dialogue took.", "s", 12, 8,
		rangeQuery("A", "mamori_probe_duration_seconds"+host, "{{check}} {{port}}")).Id(d.id()))
	d.b.WithPanel(tablePanel("Failing probes", "Why a probe fails now (mamori_probe_failure).",
		"mamori_probe_failure"+host+" == 1", "short", 12, 8,
		organize([]string{"check", "port", "reason"}, "Value", "job", "instance", "customer", "host")).Id(d.id()))
	d.b.WithPanel(graph("Certificate validity left", "Time until the earliest certificate of each TLS check expires.", "s", 24, 7,
		rangeQuery("A", "mamori_tls_cert_expiry_timestamp_seconds"+host+" - time()", "{{check}} {{port}}")).
		Thresholds(steps(nil, "red", 14*86400.0, "orange", 30*86400.0, "green")).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLineAndArea)).
		Id(d.id()))

	d.row("Processes")
	d.b.WithPanel(timeline("Process presence", "mamori_process_up per service: a live, non-zombie process runs.",
		"mamori_process_up"+host, "{{service}}", 12, 8, okFail("up", "absent")).Id(d.id()))
	d.b.WithPanel(graph("Processes", "Live processes per service.", "short", 6, 8,
		rangeQuery("A", "mamori_processes"+host, "{{service}}")).Id(d.id()))
	d.b.WithPanel(tablePanel("Restarts in range", "Times the oldest process of a service changed: restarts, by anyone.",
		fmt.Sprintf("changes(mamori_process_start_time_seconds%s[$__range])", host), "short", 6, 8,
		organize([]string{"service", "Value"}, "job", "instance", "customer", "host")).Id(d.id()))

	d.row("Thresholds")
	ms := measures()
	for _, c := range runbook.Checks() {
		m, ok := ms[c.ID]
		if !ok {
			continue
		}
		legend := c.ID
		if m.Many {
			legend = "{{mountpoint}}"
		}
		d.b.WithPanel(graph(c.Title, fmt.Sprintf("%s, against the host's thresholds (mamori_threshold{check=%q}).", m.What, c.ID), m.Unit, 12, 8,
			rangeQuery("A", m.value(host), legend),
			rangeQuery("B", fmt.Sprintf(`mamori_threshold{host="$host", check=%q}`, c.ID), "{{level}} threshold")).
			OverrideByRegexp(".*threshold", []dashboard.DynamicConfigValue{
				{Id: "custom.lineStyle", Value: map[string]any{"fill": "dash", "dash": []int{10, 10}}},
				{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": "red"}},
			}).
			Id(d.id()))
	}
	d.b.WithPanel(graph("Mail queue by queue", "Messages per Postfix queue.", "short", 12, 8,
		rangeQuery("A", "mamori_mailq_messages"+host, "{{queue}}")).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).Id(d.id()))
	d.b.WithPanel(graph("Oldest queued message", "Age of the oldest message in the Postfix queues.", "s", 12, 8,
		rangeQuery("A", "mamori_mailq_oldest_message_age_seconds"+host, "oldest")).Id(d.id()))
	d.b.WithPanel(graph("Disk space available", "Space left to unprivileged users, per filesystem.", "bytes", 24, 8,
		rangeQuery("A", "mamori_filesystem_avail_bytes"+host, "{{mountpoint}}")).Id(d.id()))

	d.row("Exporter")
	d.b.WithPanel(timeline("Scrapes", "up per job: the host role and the probes of this host.",
		"up"+host, "{{job}}", 12, 6, okFail("up", "down")).Id(d.id()))
	d.b.WithPanel(timeline("Collectors", "mamori_collector_success per collector of the host role.",
		"mamori_collector_success"+host, "{{collector}}", 12, 6, okFail("ok", "failing")).Id(d.id()))
	d.b.WithPanel(graph("Collector duration", "Time each collector took per scrape.", "s", 12, 7,
		rangeQuery("A", "mamori_collector_duration_seconds"+host, "{{collector}}")).Id(d.id()))
	d.b.WithPanel(tablePanel("Build", "mamori_exporter's version on the host.",
		"mamori_exporter_build_info"+host, "short", 12, 7,
		organize([]string{"version", "revision", "branch", "goversion"}, "Value", "job", "instance", "customer", "host", "goos", "goarch", "tags")).Id(d.id()))
	return render(d)
}

// renderRemediation is the remediator's activity, from its metrics.
func renderRemediation([]byte) ([]byte, error) {
	d := newBoard("mamori-remediation", "mamori / Remediation",
		"What mamori_remediator did: incidents by check and result, ladder steps, emails, budgets, and the alerts it holds now.")
	d.b.WithVariable(customerVar()).WithVariable(hostVar(true)).
		WithVariable(queryVar("check", "Check", "label_values(mamori_remediator_incidents_total, check)", true))
	check := `{check=~"$check"}`

	d.row("Now")
	d.b.WithPanel(counter("Remediator", "mamori_remediator instances up.",
		fmt.Sprintf(`sum(up{job="%s"}) or vector(0)`, contract.JobRemediator), "short", 6, steps(nil, "red", 1.0, "green")).Id(d.id()))
	d.b.WithPanel(counter("Ladders running", "Incidents whose ladder runs now.",
		"sum(mamori_remediator_incidents_running"+check+") or vector(0)", "short", 6, steps(nil, "blue")).Id(d.id()))
	d.b.WithPanel(counter("Incidents in range", "Incidents whose ladder ended in the time range.",
		"sum(increase(mamori_remediator_incidents_total"+check+"[$__range])) or vector(0)", "short", 6, steps(nil, "blue")).Id(d.id()))
	d.b.WithPanel(counter("Failed in range", "Incidents whose ladder could not run to its end (result=\"failed\").",
		fmt.Sprintf(`sum(increase(mamori_remediator_incidents_total{check=~"$check", result=%q}[$__range])) or vector(0)`, contract.ResultFailed),
		"short", 6, steps(nil, "green", 1.0, "red")).Id(d.id()))
	d.b.WithPanel(tablePanel("Alerts with the remediator", "Firing alerts with remediate=\"true\": the remediator works on them.",
		`ALERTS{alertstate="firing", remediate="true", customer=~"$customer", host=~"$host", check=~"$check"}`, "short", 24, 7,
		organize([]string{"customer", "host", "alertname", "check", "service", "severity"},
			"Value", "alertstate", "job", "instance", "port", "remediate")).Id(d.id()))

	d.row("Incidents")
	d.b.WithPanel(graph("Incidents by result", "Incidents ended per interval, by result.", "short", 12, 8,
		rangeQuery("A", "sum by (result) (increase(mamori_remediator_incidents_total"+check+"[$__rate_interval]))", "{{result}}")).
		DrawStyle(common.GraphDrawStyleBars).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).Id(d.id()))
	d.b.WithPanel(tablePanel("Incidents by check and result in range", "Incidents ended in the time range.",
		"sum by (check, result) (increase(mamori_remediator_incidents_total"+check+"[$__range])) > 0", "short", 12, 8,
		dashboard.DataTransformerConfig{Id: "groupingToMatrix", Options: map[string]any{
			"columnField": "result", "rowField": "check", "valueField": "Value"}}).Decimals(0).Id(d.id()))

	d.row("Ladder steps")
	d.b.WithPanel(graph("Steps by action and result", "Ladder steps run per interval.", "short", 12, 8,
		rangeQuery("A", "sum by (action, result) (increase(mamori_remediator_steps_total[$__rate_interval]))", "{{action}} {{result}}")).
		DrawStyle(common.GraphDrawStyleBars).Id(d.id()))
	d.b.WithPanel(graph("Step duration", "95th and 50th percentile of a step's duration, by action.", "s", 12, 8,
		rangeQuery("A", "histogram_quantile(0.95, sum by (action, le) (rate(mamori_remediator_step_duration_seconds_bucket[$__rate_interval])))", "p95 {{action}}"),
		rangeQuery("B", "histogram_quantile(0.5, sum by (action, le) (rate(mamori_remediator_step_duration_seconds_bucket[$__rate_interval])))", "p50 {{action}}")).Id(d.id()))

	d.row("Emails, budgets, delivery")
	d.b.WithPanel(graph("Emails", "Emails to customers and operators per interval, by result.", "short", 8, 8,
		rangeQuery("A", "sum by (kind, result) (increase(mamori_remediator_emails_total[$__rate_interval]))", "{{kind}} {{result}}")).
		DrawStyle(common.GraphDrawStyleBars).Id(d.id()))
	d.b.WithPanel(tablePanel("Budgets spent in range", "Actions refused because a budget was spent: the incident went to a person.",
		`sum by (host, service, kind) (increase(mamori_remediator_budget_exhausted_total{host=~"$host"}[$__range])) > 0`, "short", 8, 8).
		Decimals(0).Id(d.id()))
	d.b.WithPanel(graph("Webhook deliveries", "Alertmanager's notifications to the remediator (webhook), and those that failed.", "ops", 8, 8,
		rangeQuery("A", fmt.Sprintf(`sum by (integration) (rate(alertmanager_notifications_total{job=%q, integration="webhook"}[$__rate_interval]))`, contract.JobAlertmanager), "sent"),
		rangeQuery("B", fmt.Sprintf(`sum by (integration) (rate(alertmanager_notifications_failed_total{job=%q, integration="webhook"}[$__rate_interval]))`, contract.JobAlertmanager), "failed")).Id(d.id()))
	return render(d)
}
