package generate

import (
	"fmt"
	"time"

	"github.com/mamori-ops/mamori/internal/generate/contract"
)

// newEvents is an expression that is positive while counter has counted
// events within window, summed by the labels by. A series that appears
// within the window counts too: increase() cannot see the first event of a
// series the producer could not create in advance (a budget of a host).
func newEvents(counter, by, window string) string {
	return fmt.Sprintf("sum by (%s) (increase(%s[%s])) > 0\nor\nsum by (%s) (%s unless %s offset %s) > 0",
		by, counter, window, by, counter, counter, window)
}

// selfRules are the alerts on mamori itself: its exporters, the remediator
// and the delivery of notifications.
func selfRules() []alertRule {
	up := func(job string, h map[string]string, v string) inputSeries {
		l := map[string]string{"job": job}
		for k, x := range h {
			l[k] = x
		}
		return inputSeries{"up", l, v}
	}
	hostUp := func(v string) inputSeries { return up(contract.JobHost, testHost(), v) }
	proberUp := inputSeries{"up", map[string]string{"job": contract.JobProber, "instance": "127.0.0.1:9796"}, ""}
	remediatorUp := inputSeries{"up", map[string]string{"job": contract.JobRemediator, "instance": "127.0.0.1:9797"}, ""}
	with := func(s inputSeries, v string) inputSeries { s.Values = v; return s }
	collector := func(v string) inputSeries {
		return inputSeries{"mamori_collector_success", target(contract.JobHost, testHost(), "collector", "mailq"), v}
	}
	reload := func(v string) inputSeries {
		return inputSeries{"mamori_exporter_config_last_reload_successful", target(contract.JobHost, testHost()), v}
	}
	rem := map[string]string{"job": contract.JobRemediator, "instance": "127.0.0.1:9797"}
	withLabels := func(base map[string]string, kv ...string) map[string]string {
		l := map[string]string{}
		for k, v := range base {
			l[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		return l
	}
	incidents := func(result, v string) inputSeries {
		return inputSeries{"mamori_remediator_incidents_total", withLabels(rem, "check", "http", "result", result), v}
	}
	budget := func(v string) inputSeries {
		return inputSeries{"mamori_remediator_budget_exhausted_total",
			withLabels(rem, "host", "web1.acme.example", "service", "httpd", "kind", "restart"), v}
	}
	emails := func(result, v string) inputSeries {
		return inputSeries{"mamori_remediator_emails_total", withLabels(rem, "kind", "customer", "result", result), v}
	}
	am := map[string]string{"job": contract.JobAlertmanager, "instance": "127.0.0.1:9093"}
	notifications := func(integration, v string) inputSeries {
		return inputSeries{"alertmanager_notifications_failed_total", withLabels(am, "integration", integration), v}
	}
	warn := map[string]string{"severity": "warning"}
	crit := map[string]string{"severity": "critical"}
	operators := "Nothing: the alert goes to the operators."

	return []alertRule{
		{
			Name:    "MamoriExporterDown",
			Expr:    sel("up", "job", contract.JobHost) + " == 0",
			For:     5 * time.Minute,
			Labels:  warn,
			Summary: "mamori_exporter on {{ $labels.host }} cannot be scraped",
			Description: fmt.Sprintf("Prometheus has failed to scrape the host role of mamori_exporter on {{ $labels.host }}"+
				" (customer {{ $labels.customer }}) for 5m: the host's process, load, swap, disk and mail queue checks"+
				" are blind. Is mamori_exporter running, and is port %d open to Prometheus?", contract.ExporterPort),
			Meaning:   fmt.Sprintf("Prometheus cannot scrape the exporter's host role on the host (port %d).", contract.ExporterPort),
			Threshold: fmt.Sprintf("`up{job=%q}` is 0", contract.JobHost),
			Action:    operators + " A host-down alert of the same host holds it back.",
			Tests: []ruleTest{
				{Name: "MamoriExporterDown fires after 5m", Series: []inputSeries{hostUp("0+0x20"), up(contract.JobHost, testOther(), "1+0x20")},
					Evals: []ruleEval{{At: 4 * time.Minute}, {At: 5 * time.Minute, Fire: []firing{{Labels: target(contract.JobHost, testHost()), Value: 0}}}}},
				{Name: "MamoriExporterDown stays quiet while scrapes succeed or fail once", Series: []inputSeries{hostUp("1 1 0 1+0x20")},
					Evals: []ruleEval{{At: 2 * time.Minute}, {At: 7 * time.Minute}}},
			},
		},
		{
			Name:    "MamoriCollectorFailing",
			Expr:    "mamori_collector_success == 0",
			For:     15 * time.Minute,
			Labels:  warn,
			Summary: "mamori_exporter's {{ $labels.collector }} collector fails on {{ $labels.host }}",
			Description: "The {{ $labels.collector }} collector of mamori_exporter on {{ $labels.host }}" +
				" (customer {{ $labels.customer }}) has failed at every scrape for 15m: what it reads is not" +
				" checked. The exporter's log says why.",
			Meaning:   "One collector of the host role (process, load, swap, disk, mailq, threshold) cannot read its source.",
			Threshold: "`mamori_collector_success` is 0",
			Action:    operators,
			Tests: []ruleTest{
				{Name: "MamoriCollectorFailing fires after 15m", Series: []inputSeries{collector("0+0x30")},
					Evals: []ruleEval{{At: 14 * time.Minute}, {At: 15 * time.Minute, Fire: []firing{{
						Labels: target(contract.JobHost, testHost(), "collector", "mailq"), Value: 0}}}}},
				{Name: "MamoriCollectorFailing stays quiet while the collector works", Series: []inputSeries{collector("1 0 1+0x30")},
					Evals: []ruleEval{{At: 20 * time.Minute}}},
			},
		},
		{
			Name:    "MamoriExporterConfigReloadFailed",
			Expr:    "mamori_exporter_config_last_reload_successful == 0",
			For:     10 * time.Minute,
			Labels:  warn,
			Summary: "mamori_exporter on {{ $labels.instance }} runs an old inventory",
			Description: "The last inventory reload of mamori_exporter ({{ $labels.job }}, {{ $labels.instance }}) failed;" +
				" it still runs the previous inventory. The exporter's log names the file, line and field.",
			Meaning:   "The exporter rejected a changed inventory and kept the previous one.",
			Threshold: "`mamori_exporter_config_last_reload_successful` is 0",
			Action:    operators,
			Tests: []ruleTest{
				{Name: "MamoriExporterConfigReloadFailed fires after 10m", Series: []inputSeries{reload("1 0+0x20")},
					Evals: []ruleEval{{At: 10 * time.Minute}, {At: 11 * time.Minute, Fire: []firing{{Labels: target(contract.JobHost, testHost()), Value: 0}}}}},
				{Name: "MamoriExporterConfigReloadFailed stays quiet after good reloads", Series: []inputSeries{reload("1+0x20")},
					Evals: []ruleEval{{At: 15 * time.Minute}}},
			},
		},
		{
			Name:    "MamoriProberDown",
			Expr:    fmt.Sprintf("absent(%s == 1)", sel("up", "job", contract.JobProber)),
			For:     5 * time.Minute,
			Labels:  crit,
			Summary: "The central mamori_exporter (probe role) is down",
			Description: "No scrape of the central mamori_exporter has succeeded for 5m: no check from outside" +
				" runs (ping, http, mail, ...), and Prometheus gets no new targets from its /sd.",
			Meaning:   "The central mamori_exporter, which probes every host from outside and lists the targets, does not answer.",
			Threshold: fmt.Sprintf("no `up{job=%q}` is 1", contract.JobProber),
			Action:    operators,
			Tests: []ruleTest{
				{Name: "MamoriProberDown fires when the prober's scrape fails", Series: []inputSeries{with(proberUp, "1 0+0x20")},
					Evals: []ruleEval{{At: 5 * time.Minute}, {At: 6 * time.Minute, Fire: []firing{{Value: 1}}}}},
				{Name: "MamoriProberDown fires when the prober is not even a target", Series: []inputSeries{},
					Evals: []ruleEval{{At: 5 * time.Minute, Fire: []firing{{Value: 1}}}}},
				{Name: "MamoriProberDown stays quiet while the prober answers", Series: []inputSeries{with(proberUp, "1+0x20")},
					Evals: []ruleEval{{At: 10 * time.Minute}}},
			},
		},
		{
			Name:    "MamoriProbeScrapeFailing",
			Expr:    sel("up", "job", contract.JobProbe) + " == 0",
			For:     10 * time.Minute,
			Labels:  warn,
			Summary: "Probing {{ $labels.host }} from outside fails as a whole",
			Description: "Prometheus's scrape of /probe?target={{ $labels.host }} (customer {{ $labels.customer }}) has failed" +
				" for 10m: the probes of this host do not finish within the scrape timeout, or the prober does not" +
				" know the host. The prober's log says why.",
			Meaning:   "The prober answers, but not for this host: a probe scrape fails or times out.",
			Threshold: fmt.Sprintf("`up{job=%q}` is 0", contract.JobProbe),
			Action:    operators + " MamoriProberDown holds it back.",
			Tests: []ruleTest{
				{Name: "MamoriProbeScrapeFailing fires after 10m", Series: []inputSeries{up(contract.JobProbe, testHost(), "0+0x20"), up(contract.JobProbe, testOther(), "1+0x20")},
					Evals: []ruleEval{{At: 9 * time.Minute}, {At: 10 * time.Minute, Fire: []firing{{Labels: target(contract.JobProbe, testHost()), Value: 0}}}}},
				{Name: "MamoriProbeScrapeFailing stays quiet while probes answer", Series: []inputSeries{up(contract.JobProbe, testHost(), "1 0 1+0x20")},
					Evals: []ruleEval{{At: 15 * time.Minute}}},
			},
		},
		{
			Name:    "MamoriRemediatorDown",
			Expr:    fmt.Sprintf("absent(%s == 1)", sel("up", "job", contract.JobRemediator)),
			For:     5 * time.Minute,
			Labels:  crit,
			Summary: "mamori_remediator is down",
			Description: "No scrape of mamori_remediator has succeeded for 5m. Alerts with remediate=\"true\" go to it" +
				" only: nothing acts on them and no customer is told. Look at the alerts in Alertmanager and" +
				" start mamori_remediator.",
			Meaning:   "No mamori_remediator instance answers Prometheus.",
			Threshold: fmt.Sprintf("no `up{job=%q}` is 1", contract.JobRemediator),
			Action:    operators,
			Tests: []ruleTest{
				{Name: "MamoriRemediatorDown fires when the remediator's scrape fails", Series: []inputSeries{with(remediatorUp, "1 1 0+0x20")},
					Evals: []ruleEval{{At: 6 * time.Minute}, {At: 7 * time.Minute, Fire: []firing{{Value: 1}}}}},
				{Name: "MamoriRemediatorDown fires when no remediator is a target", Series: []inputSeries{},
					Evals: []ruleEval{{At: 5 * time.Minute, Fire: []firing{{Value: 1}}}}},
				{Name: "MamoriRemediatorDown stays quiet while the remediator answers", Series: []inputSeries{with(remediatorUp, "1 0 1+0x20")},
					Evals: []ruleEval{{At: 10 * time.Minute}}},
			},
		},
		{
			Name:    "MamoriRemediationFailing",
			Expr:    newEvents(sel("mamori_remediator_incidents_total", "result", contract.ResultFailed), "check", "30m"),
			Labels:  warn,
			Summary: "mamori_remediator could not finish a ladder for the {{ $labels.check }} check",
			Description: "In the last 30m, {{ $value | printf \"%.0f\" }} incident(s) of the {{ $labels.check }} check ended" +
				" with result=\"failed\": the ladder could not run (SSH, command or journal errors). The" +
				" remediator's status page lists the incidents with their steps.",
			Meaning:   "An incident's ladder stopped on an error of the remediator's own, not on the runbook's escalation.",
			Threshold: "`mamori_remediator_incidents_total{result=\"failed\"}` rose within 30m",
			Action:    operators,
			Tests: []ruleTest{
				{Name: "MamoriRemediationFailing fires on a failed incident", Series: []inputSeries{incidents(contract.ResultFailed, "0+0x10 1+0x50"), incidents("recovered", "0+1x60")},
					Evals: []ruleEval{{At: 10 * time.Minute}, {At: 15 * time.Minute, Fire: []firing{{Labels: map[string]string{"check": "http"}, Value: 1}}}, {At: 45 * time.Minute}}},
				{Name: "MamoriRemediationFailing sees the first failure of a series born failed", Series: []inputSeries{incidents(contract.ResultFailed, "_x10 1+0x50")},
					Evals: []ruleEval{{At: 15 * time.Minute, Fire: []firing{{Labels: map[string]string{"check": "http"}, Value: 1}}}}},
				{Name: "MamoriRemediationFailing stays quiet while ladders end otherwise", Series: []inputSeries{incidents(contract.ResultFailed, "0+0x60"), incidents("escalated", "0+1x60")},
					Evals: []ruleEval{{At: 45 * time.Minute}}},
			},
		},
		{
			Name:    "MamoriRemediationBudgetExhausted",
			Expr:    newEvents("mamori_remediator_budget_exhausted_total", "host, service, kind", "1h"),
			Labels:  warn,
			Summary: "{{ $labels.kind }} budget of {{ $labels.host }} {{ $labels.service }} is spent",
			Description: "mamori_remediator refused to {{ $labels.kind }} for {{ $labels.host }} ({{ $labels.service }})" +
				" in the last hour because the budget is spent, and handed the incident to a person. Something" +
				" keeps failing: a restart loop is not a fix.",
			Meaning:   "The remediator's per host+service restart budget, per host reboot budget or global concurrency was spent.",
			Threshold: "`mamori_remediator_budget_exhausted_total` rose within 1h",
			Action:    operators,
			Tests: []ruleTest{
				{Name: "MamoriRemediationBudgetExhausted fires on the first exhaustion of a host", Series: []inputSeries{budget("_x20 1+0x100")},
					Evals: []ruleEval{{At: 10 * time.Minute}, {At: 30 * time.Minute, Fire: []firing{{Labels: map[string]string{
						"host": "web1.acme.example", "service": "httpd", "kind": "restart"}, Value: 1}}}, {At: 90 * time.Minute}}},
				{Name: "MamoriRemediationBudgetExhausted fires on a later exhaustion", Series: []inputSeries{budget("1+0x80 2+0x40")},
					Evals: []ruleEval{{At: 75 * time.Minute}, {At: 85 * time.Minute, Fire: []firing{{Labels: map[string]string{
						"host": "web1.acme.example", "service": "httpd", "kind": "restart"}, Value: 1}}}}},
			},
		},
		{
			Name:    "MamoriRemediatorEmailFailing",
			Expr:    newEvents(sel("mamori_remediator_emails_total", "result", contract.EmailFailed), "kind", "30m"),
			Labels:  warn,
			Summary: "mamori_remediator cannot send {{ $labels.kind }} emails",
			Description: "In the last 30m, {{ $value | printf \"%.0f\" }} {{ $labels.kind }} email(s) could not be" +
				" handed to the SMTP server: the runbook's \"tell the customer\" did not happen. The remediator's" +
				" log and journal have the messages.",
			Meaning:   "An email to a customer or to the operators failed.",
			Threshold: "`mamori_remediator_emails_total{result=\"failed\"}` rose within 30m",
			Action:    operators,
			Tests: []ruleTest{
				{Name: "MamoriRemediatorEmailFailing fires on a failed email", Series: []inputSeries{emails(contract.EmailFailed, "0+0x10 2+0x50"), emails("sent", "0+1x60")},
					Evals: []ruleEval{{At: 5 * time.Minute}, {At: 12 * time.Minute, Fire: []firing{{Labels: map[string]string{"kind": "customer"}, Value: 2}}}}},
				{Name: "MamoriRemediatorEmailFailing stays quiet while mail goes out", Series: []inputSeries{emails(contract.EmailFailed, "0+0x60"), emails("sent", "0+1x60")},
					Evals: []ruleEval{{At: 45 * time.Minute}}},
			},
		},
		{
			Name:    "MamoriNotificationsFailing",
			Expr:    "sum by (job, instance, integration) (rate(alertmanager_notifications_failed_total[5m])) > 0",
			For:     10 * time.Minute,
			Labels:  crit,
			Summary: "Alertmanager fails to deliver {{ $labels.integration }} notifications",
			Description: "Alertmanager {{ $labels.instance }} has failed to deliver {{ $labels.integration }} notifications" +
				" for 10m. webhook is mamori_remediator (is it up, and do its token and Alertmanager's" +
				" credentials_file agree?); email is the operators' mail.",
			Meaning:   "Alertmanager cannot hand alerts to the remediator (webhook) or mail the operators (email).",
			Threshold: "`alertmanager_notifications_failed_total` rises",
			Action:    operators,
			Tests: []ruleTest{
				{Name: "MamoriNotificationsFailing fires when the webhook keeps failing", Series: []inputSeries{notifications("webhook", "0+1x30"), notifications("email", "0+0x30")},
					Evals: []ruleEval{{At: 5 * time.Minute}, {At: 11 * time.Minute, Fire: []firing{{Labels: withLabels(am, "integration", "webhook"), Value: 1.0 / 60}}}}},
				{Name: "MamoriNotificationsFailing stays quiet while notifications go out", Series: []inputSeries{notifications("webhook", "0+0x30")},
					Evals: []ruleEval{{At: 20 * time.Minute}}},
			},
		},
	}
}
