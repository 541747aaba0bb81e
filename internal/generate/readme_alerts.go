package generate

import (
	"fmt"
	"strings"
	"time"
)

// alertsSection is the README's documentation of every alert: one
// subsection per alert, whose anchor the alert's runbook_url points to.
func alertsSection() (string, error) {
	rs, err := buildRules()
	if err != nil {
		return "", err
	}
	hostDown, err := hostDownAlert()
	if err != nil {
		return "", err
	}
	p := deployedPrometheus()
	httpFor := time.Duration(0)
	for _, a := range rs.Alerts {
		if a.Check != nil && a.Check.ID == "http" {
			httpFor = a.For
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `## Alerts

Generated from the registry by `+"`make generate`"+`, like the rules themselves:
[`+"`%s`"+`](%s) (one alert per check, and the status the dashboards show) and
[`+"`%s`"+`](%s) (alerts on mamori itself), each with promtool unit tests beside it
(`+"`promtool test rules rules/*.test.yml`"+`) that show every alert firing with its labels and
staying quiet when it should.

Labels: every check alert carries `+"`check`"+`, `+"`service`"+` (the registry's canonical service, when
the check concerns one), `+"`host`"+`, `+"`customer`"+`, `+"`severity`"+`, and `+"`remediate=\"true\"`"+` where the runbook
has a ladder. Thresholds are compared through `+"`mamori_threshold`"+`, which the exporter sets from
the inventory: a per-host threshold needs no rule edit.

Routing ([`+"`%s`"+`](%s)): alerts with `+"`remediate=\"true\"`"+` go to mamori_remediator's webhook,
`+"`%s`"+`, with `+"`send_resolved: true`"+` and a bearer token read from `+"`%s`"+`
(the remediator reads the same token); everything else goes to the operators by email. Both are
grouped by `+"`%s`"+`. While `+"`%s`"+` fires for a host, Alertmanager holds back that host's other
check alerts and `+"`%s`"+` of it.

Time to fire: with [`+"`%s`"+`](%s) (scrape every %s, rules evaluated every %s) an alert
fires at most its `+"`for`"+` + %s + %s after the fault begins, plus the probe's own timeout (%s) for
a probe that hangs: `+"`MamoriHttpDown`"+` fires at most %s after the web server stops (connections
refused), and at most %s after it hangs (connections accepted, never answered).
`, checksRulesFile, checksRulesFile, selfRulesFile, selfRulesFile,
		alertmanagerFile, alertmanagerFile, webhookURL(), webhookTokenFile,
		strings.Join(groupBy(), ", "), hostDown, strings.Join(hostAlertsInhibited(), "`, `"),
		prometheusFile, prometheusFile, promDuration(p.ScrapeInterval), promDuration(p.EvaluationInterval),
		promDuration(p.ScrapeInterval), promDuration(p.EvaluationInterval), promDuration(p.ProbeTimeout),
		humanDuration(httpFor+p.ScrapeInterval+p.EvaluationInterval),
		humanDuration(httpFor+p.ScrapeInterval+p.EvaluationInterval+p.ProbeTimeout))

	b.WriteString("\n### Check alerts\n")
	for _, a := range rs.Alerts {
		if a.Group == groupChecks {
			writeAlertDoc(&b, a)
		}
	}
	b.WriteString("\n### Alerts on mamori itself\n")
	for _, a := range rs.Alerts {
		if a.Group == groupSelf {
			writeAlertDoc(&b, a)
		}
	}
	return b.String(), nil
}

func writeAlertDoc(b *strings.Builder, a alertRule) {
	fmt.Fprintf(b, "\n#### %s\n\n%s\n\n", a.Name, a.Meaning)
	var what []string
	if a.Check != nil {
		what = append(what, fmt.Sprintf("check `%s` (%s plan)", a.Check.ID, a.Check.Plan))
		if a.Check.Service != "" {
			what = append(what, fmt.Sprintf("service `%s`", a.Check.Service))
		}
	}
	what = append(what, fmt.Sprintf("severity `%s`", a.Labels["severity"]))
	if a.Labels["remediate"] == "true" {
		what = append(what, "`remediate=\"true\"`")
	}
	fmt.Fprintf(b, "- **Labels:** %s\n", strings.Join(what, ", "))
	forText := "at once"
	if a.For > 0 {
		forText = "for " + promDuration(a.For)
	}
	fmt.Fprintf(b, "- **Fires when:** %s, %s: `%s`\n", a.Threshold, forText, strings.Join(strings.Fields(a.Expr), " "))
	action := a.Action
	if a.Check != nil && a.Check.Remediates() {
		action = "runs the ladder " + a.Check.Ladder.Summary() + " (steps: see *Checks* above)."
	}
	fmt.Fprintf(b, "- **Remediator:** %s\n", action)
}

// readmeAlerts splices the alerts section into the README, between
// <!-- BEGIN generated:alerts --> and <!-- END generated:alerts -->.
func readmeAlerts(cur []byte) ([]byte, error) {
	s, err := alertsSection()
	if err != nil {
		return nil, err
	}
	return spliceSection("alerts", func() string { return s })(cur)
}

// humanDuration writes 1m45s as "1 min 45 s".
func humanDuration(d time.Duration) string {
	m, s := int(d/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case m == 0:
		return fmt.Sprintf("%d s", s)
	case s == 0:
		return fmt.Sprintf("%d min", m)
	}
	return fmt.Sprintf("%d min %d s", m, s)
}
