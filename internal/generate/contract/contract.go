// Package contract is the metric contract of mamori, in one place: every
// series the exporter's two roles and the remediator export, the series
// Prometheus and Alertmanager add that the rules and dashboards read, the
// job names the scrape configuration gives, and the remediator's webhook
// path. The alert rules, the dashboards and their tests read it; the
// exporter's and the remediator's tests check what they export against it.
//
// A name not listed here does not exist as far as the rules and dashboards
// are concerned: a test fails when one of them names it.
package contract

import (
	"strings"

	"github.com/mamori-ops/mamori/runbook"
)

// Source says who produces a series.
type Source string

const (
	// HostRole is mamori_exporter's /metrics on each managed server.
	HostRole Source = "host"
	// ProbeRole is mamori_exporter's /probe?target=HOST, run centrally.
	ProbeRole Source = "probe"
	// Exporter is mamori_exporter's own health, on /metrics in either role.
	Exporter Source = "exporter"
	// Remediator is mamori_remediator's /metrics.
	Remediator Source = "remediator"
	// Recording is a series the generated recording rules compute.
	Recording Source = "recording"
	// Prometheus is a series Prometheus makes itself (up, ALERTS).
	Prometheus Source = "prometheus"
	// Alertmanager is a series of Alertmanager's own /metrics.
	Alertmanager Source = "alertmanager"
)

// Type is a metric's type, as in the exposition format.
type Type string

const (
	Gauge     Type = "gauge"
	Counter   Type = "counter"
	Histogram Type = "histogram"
)

// Metric is one metric name of the contract.
type Metric struct {
	Name   string
	Type   Type
	Source Source
	// Labels are the metric's own labels, without the target labels
	// (job, instance, customer, host) that Prometheus adds.
	Labels []string
	Help   string
	// Values are the only values some labels take. The producer creates
	// every combination at start (a counter at 0), so that rules using
	// increase() see the first event.
	Values map[string][]string
	// Lazy metrics appear with their first observation (a label value
	// known only then, or a figure only some probes have).
	Lazy bool
}

// Job names the scrape configuration gives; the rules about mamori itself
// select on them.
const (
	// JobHost scrapes the host role of every inventory host.
	JobHost = "mamori_host"
	// JobProbe scrapes the probe role once per inventory host.
	JobProbe = "mamori_probe"
	// JobProber scrapes the central exporter's own /metrics.
	JobProber       = "mamori_prober"
	JobRemediator   = "mamori_remediator"
	JobAlertmanager = "alertmanager"
)

// Target labels: relabelling sets customer, host and instance (= host) on
// every series of the host-role and probe-role jobs.
const (
	LabelCustomer = "customer"
	LabelHost     = "host"
	LabelCheck    = "check"
	LabelService  = "service"
)

// Ports, paths and the webhook of the two binaries.
const (
	ExporterPort   = 9796
	RemediatorPort = 9797
	// SDPath is the exporter's Prometheus HTTP service discovery: one target
	// group per inventory host, __address__ = the host's address, labels
	// customer, host and plan.
	SDPath = "/sd"
	// ProbePath is the probe role: /probe?target=HOST[&check=CHECK].
	ProbePath = "/probe"
	// WebhookPath is where the remediator takes Alertmanager's webhook
	// (version 4 payload), with a bearer token.
	WebhookPath = "/api/v1/alerts"
)

// Label values of the remediator's metrics, fixed so that the rules can
// name them and the remediator can pre-initialise them.
const (
	// ResultFailed is an incident whose ladder could not run to its end
	// (SSH, command or journal errors): a person must look.
	ResultFailed = "failed"
	// EmailFailed is an email the remediator could not hand to the SMTP
	// server.
	EmailFailed = "failed"
)

// IncidentResults are the values of mamori_remediator_incidents_total's
// result label.
func IncidentResults() []string {
	return []string{
		"recovered",           // a restart or reboot brought the check back
		"healthy",             // the first look found the check healthy again
		"resolved",            // the alert resolved while the ladder ran
		"escalated",           // handed over to a person, as the runbook says
		"skipped_over_budget", // a budget forbade acting; escalated instead
		"dry_run",             // dry-run mode: commands rendered, not run
		ResultFailed,
	}
}

// Metrics returns the contract, a fresh table on each call.
func Metrics() []Metric {
	checks := checkIDs(func(runbook.Check) bool { return true })
	outside := checkIDs(func(c runbook.Check) bool { return c.Kind == runbook.Probe })
	actions := make([]string, 0, len(runbook.Actions()))
	for _, a := range runbook.Actions() {
		actions = append(actions, string(a))
	}
	fs := []string{"mountpoint", "device", "fstype"}
	return []Metric{
		// Probe role.
		{Name: "mamori_probe_success", Type: Gauge, Source: ProbeRole, Labels: []string{"check", "port"},
			Help: "1 when the check's dialogue succeeded."},
		{Name: "mamori_probe_duration_seconds", Type: Gauge, Source: ProbeRole, Labels: []string{"check", "port"},
			Help: "Time the check's dialogue took."},
		{Name: "mamori_probe_failure", Type: Gauge, Source: ProbeRole, Labels: []string{"check", "port", "reason"},
			Help: "1 for the reason the check failed, 0 for the other reasons."},
		{Name: "mamori_tls_cert_expiry_timestamp_seconds", Type: Gauge, Source: ProbeRole, Labels: []string{"check", "port"},
			Help: "Earliest expiry of the certificate chain the server presented.", Lazy: true},
		{Name: "mamori_probe_icmp_packet_loss_ratio", Type: Gauge, Source: ProbeRole, Labels: []string{"check", "port"},
			Help: "Share of the ping check's echo requests that got no reply.", Lazy: true},
		{Name: "mamori_probe_icmp_rtt_seconds", Type: Gauge, Source: ProbeRole, Labels: []string{"check", "port"},
			Help: "Average round-trip time of the ping check's echo replies.", Lazy: true},

		// Host role.
		{Name: "mamori_process_up", Type: Gauge, Source: HostRole, Labels: []string{"service"},
			Help: "1 when at least one live process of the service runs."},
		// Not mamori_process_count: promtool check metrics rejects a _count
		// suffix on a gauge, as it belongs to histograms and summaries.
		{Name: "mamori_processes", Type: Gauge, Source: HostRole, Labels: []string{"service"},
			Help: "Live processes of the service."},
		{Name: "mamori_process_start_time_seconds", Type: Gauge, Source: HostRole, Labels: []string{"service"},
			Help: "Start time of the service's oldest live process."},
		{Name: "mamori_load1", Type: Gauge, Source: HostRole, Help: "1-minute load average."},
		{Name: "mamori_load5", Type: Gauge, Source: HostRole, Help: "5-minute load average."},
		{Name: "mamori_load15", Type: Gauge, Source: HostRole, Help: "15-minute load average."},
		{Name: "mamori_cpus", Type: Gauge, Source: HostRole, Help: "Online CPUs."},
		{Name: "mamori_swap_total_bytes", Type: Gauge, Source: HostRole, Help: "Swap space in total."},
		{Name: "mamori_swap_free_bytes", Type: Gauge, Source: HostRole, Help: "Swap space free."},
		{Name: "mamori_filesystem_size_bytes", Type: Gauge, Source: HostRole, Labels: fs, Help: "Filesystem size, as df shows it."},
		{Name: "mamori_filesystem_avail_bytes", Type: Gauge, Source: HostRole, Labels: fs, Help: "Space available to unprivileged users."},
		{Name: "mamori_filesystem_used_ratio", Type: Gauge, Source: HostRole, Labels: fs, Help: "Share in use, as df's Use% computes it."},
		{Name: "mamori_mailq_messages", Type: Gauge, Source: HostRole, Labels: []string{"queue"},
			Help:   "Messages in a Postfix queue.",
			Values: map[string][]string{"queue": {"maildrop", "incoming", "active", "deferred", "hold"}}},
		{Name: "mamori_mailq_oldest_message_age_seconds", Type: Gauge, Source: HostRole,
			Help: "Age of the oldest queued message."},
		{Name: "mamori_threshold", Type: Gauge, Source: HostRole, Labels: []string{"check", "level"},
			Help: "The threshold in force on this host, from the inventory: the rules compare with it.",
			Values: map[string][]string{"check": checkIDs(func(c runbook.Check) bool { return len(c.Thresholds) > 0 }),
				"level": {string(runbook.LevelAlert), string(runbook.LevelRestart)}}},
		{Name: "mamori_collector_success", Type: Gauge, Source: HostRole, Labels: []string{"collector"},
			Help: "1 when the collector read its source this scrape."},
		{Name: "mamori_collector_duration_seconds", Type: Gauge, Source: HostRole, Labels: []string{"collector"},
			Help: "Time the collector took this scrape."},

		// The exporter's own health.
		{Name: "mamori_exporter_build_info", Type: Gauge, Source: Exporter,
			Labels: []string{"version", "revision", "branch", "goversion", "goos", "goarch", "tags"},
			Help:   "A metric with a constant '1' value labeled by the build."},
		{Name: "mamori_exporter_config_last_reload_successful", Type: Gauge, Source: Exporter,
			Help: "1 when the last inventory load succeeded."},
		{Name: "mamori_exporter_config_last_reload_success_timestamp_seconds", Type: Gauge, Source: Exporter,
			Help: "Time of the last successful inventory load."},
		{Name: "mamori_exporter_probes_total", Type: Counter, Source: Exporter, Labels: []string{"check"},
			Help: "Probes run, by check.", Values: map[string][]string{"check": outside}},
		{Name: "mamori_exporter_probe_failures_total", Type: Counter, Source: Exporter, Labels: []string{"check", "reason"},
			Help: "Probes that failed, by check and reason.", Values: map[string][]string{"check": outside}},
		{Name: "mamori_exporter_probe_duration_seconds", Type: Histogram, Source: Exporter, Labels: []string{"check"},
			Help: "Time probes took, by check.", Values: map[string][]string{"check": outside}},
		{Name: "mamori_exporter_probe_requests_total", Type: Counter, Source: Exporter, Labels: []string{"result"},
			Help:   "Requests to /probe, by result.",
			Values: map[string][]string{"result": {"probed", "bad_request", "unknown_target", "unknown_check", "config_error"}}},

		// The remediator.
		{Name: "mamori_remediator_build_info", Type: Gauge, Source: Remediator,
			Labels: []string{"version", "revision", "branch", "goversion", "goos", "goarch", "tags"},
			Help:   "A metric with a constant '1' value labeled by the build."},
		{Name: "mamori_remediator_alerts_received_total", Type: Counter, Source: Remediator, Labels: []string{"status"},
			Help:   "Alerts taken from Alertmanager's webhook, by their own status.",
			Values: map[string][]string{"status": {"firing", "resolved"}}},
		{Name: "mamori_remediator_incidents_total", Type: Counter, Source: Remediator, Labels: []string{"check", "result"},
			Help:   "Incidents whose ladder ended, by check and result.",
			Values: map[string][]string{"check": checks, "result": IncidentResults()}},
		{Name: "mamori_remediator_incidents_running", Type: Gauge, Source: Remediator, Labels: []string{"check"},
			Help:   "Incidents whose ladder runs now.",
			Values: map[string][]string{"check": checks}},
		{Name: "mamori_remediator_steps_total", Type: Counter, Source: Remediator, Labels: []string{"action", "result"},
			Help:   "Ladder steps run, by action and result.",
			Values: map[string][]string{"action": actions, "result": {"ok", "failed", "skipped"}}},
		{Name: "mamori_remediator_step_duration_seconds", Type: Histogram, Source: Remediator, Labels: []string{"action"},
			Help:   "Time a ladder step took, by action.",
			Values: map[string][]string{"action": actions}},
		{Name: "mamori_remediator_budget_exhausted_total", Type: Counter, Source: Remediator,
			Labels: []string{"host", "service", "kind"},
			Help:   "Actions refused because a budget was spent; the incident went to a person.",
			Values: map[string][]string{"kind": {"restart", "reboot", "concurrency"}}},
		{Name: "mamori_remediator_emails_total", Type: Counter, Source: Remediator, Labels: []string{"kind", "result"},
			Help:   "Emails to customers and operators, by result.",
			Values: map[string][]string{"kind": {"customer", "operator"}, "result": {"sent", EmailFailed}}},
		{Name: "mamori_remediator_emails_pending", Type: Gauge, Source: Remediator,
			Help: "Emails in the journal's outbox waiting for the SMTP server."},
		{Name: "mamori_remediator_decisions_total", Type: Counter, Source: Remediator, Labels: []string{"reason"},
			Help: "Decisions of the pipeline about alerts and ladders, by typed reason (the remediator's Reasons)."},
		{Name: "mamori_remediator_webhook_duration_seconds", Type: Histogram, Source: Remediator, Labels: []string{"code"},
			Help: "Time the webhook took to answer Alertmanager, by status code.", Lazy: true},
		{Name: "mamori_remediator_config_last_reload_successful", Type: Gauge, Source: Remediator,
			Help: "1 when the last load of the configuration and inventory succeeded."},
		{Name: "mamori_remediator_config_last_reload_success_timestamp_seconds", Type: Gauge, Source: Remediator,
			Help: "Time of the last successful load of the configuration and inventory."},

		// Computed by the generated recording rules.
		{Name: "mamori:check_ok", Type: Gauge, Source: Recording, Labels: []string{"check"},
			Help: "1 when the check passes now on the host, 0 when it fails (before any for: delay)."},

		// Made by Prometheus and Alertmanager.
		{Name: "up", Type: Gauge, Source: Prometheus, Help: "1 when the scrape of the target succeeded."},
		{Name: "ALERTS", Type: Gauge, Source: Prometheus, Labels: []string{"alertname", "alertstate"},
			Help: "Pending and firing alerts."},
		{Name: "alertmanager_notifications_total", Type: Counter, Source: Alertmanager, Labels: []string{"integration"},
			Help: "Notifications Alertmanager attempted."},
		{Name: "alertmanager_notifications_failed_total", Type: Counter, Source: Alertmanager, Labels: []string{"integration"},
			Help: "Notifications Alertmanager failed to deliver."},
	}
}

// Lookup finds the metric a series name belongs to; the _bucket, _sum and
// _count series of a histogram belong to it.
func Lookup(series string) (Metric, bool) {
	for _, m := range Metrics() {
		if m.Name == series {
			return m, true
		}
		if m.Type == Histogram {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if strings.TrimSuffix(series, suffix) == m.Name && strings.HasSuffix(series, suffix) {
					return m, true
				}
			}
		}
	}
	return Metric{}, false
}

// From returns the metrics one source produces, in contract order.
func From(s Source) []Metric {
	var out []Metric
	for _, m := range Metrics() {
		if m.Source == s {
			out = append(out, m)
		}
	}
	return out
}

// checkIDs is the registry's check IDs, those keep accepts.
func checkIDs(keep func(runbook.Check) bool) []string {
	var ids []string
	for _, c := range runbook.Checks() {
		if keep(c) {
			ids = append(ids, c.ID)
		}
	}
	return ids
}
