package remediator

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mamori-ops/mamori/inventory"
	"github.com/mamori-ops/mamori/remediator/journal"
	"github.com/mamori-ops/mamori/runbook"
)

// Step results on /metrics: the step ran and did its part (ok), could not
// (failed: an error, an unhealthy verify, a refused budget), or did not
// apply (skipped).
const (
	stepOK      = "ok"
	stepFailed  = "failed"
	stepSkipped = "skipped"
)

// Budget kinds, the `kind` label of budget exhaustion.
const (
	budgetRestart     = "restart"
	budgetReboot      = "reboot"
	budgetConcurrency = "concurrency"
)

// Email kinds and results.
const (
	kindCustomer = "customer"
	kindOperator = "operator"
	emailSent    = "sent"
	emailFailed  = "failed"
)

// metrics are the remediator's own series. The names and label values of
// the first group are the metric contract (internal/generate/contract);
// every value a rule can name is created at start, at 0.
type metrics struct {
	alertsReceived  *prometheus.CounterVec
	incidents       *prometheus.CounterVec
	running         *prometheus.GaugeVec
	steps           *prometheus.CounterVec
	stepDuration    *prometheus.HistogramVec
	budgetExhausted *prometheus.CounterVec
	emails          *prometheus.CounterVec

	decisions     *prometheus.CounterVec
	webhook       *prometheus.HistogramVec
	reloadSuccess prometheus.Gauge
	reloadTime    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, j journal.Journal) *metrics {
	m := &metrics{
		alertsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_remediator_alerts_received_total",
			Help: "Alerts taken from Alertmanager's webhook, by their own status.",
		}, []string{"status"}),
		incidents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_remediator_incidents_total",
			Help: "Incidents whose ladder ended, by check and result.",
		}, []string{"check", "result"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mamori_remediator_incidents_running",
			Help: "Incidents whose ladder runs now.",
		}, []string{"check"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_remediator_steps_total",
			Help: "Ladder steps run, by action and result.",
		}, []string{"action", "result"}),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mamori_remediator_step_duration_seconds",
			Help:    "Time a ladder step took, by action.",
			Buckets: []float64{.01, .05, .1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"action"}),
		budgetExhausted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_remediator_budget_exhausted_total",
			Help: "Actions refused because a budget was spent; the incident went to a person.",
		}, []string{"host", "service", "kind"}),
		emails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_remediator_emails_total",
			Help: "Emails to customers and operators, by result.",
		}, []string{"kind", "result"}),

		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_remediator_decisions_total",
			Help: "Decisions of the pipeline about alerts and ladders, by typed reason.",
		}, []string{"reason"}),
		webhook: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mamori_remediator_webhook_duration_seconds",
			Help:    "Time from a webhook request to its answer (the incident durably journaled), by status code.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 5},
		}, []string{"code"}),
		reloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mamori_remediator_config_last_reload_successful",
			Help: "1 when the last load of the configuration and inventory succeeded.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mamori_remediator_config_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful load of the configuration and inventory.",
		}),
	}
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mamori_remediator_emails_pending",
		Help: "Emails in the journal's outbox waiting for the SMTP server.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := j.PendingEmails(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	reg.MustRegister(m.alertsReceived, m.incidents, m.running, m.steps, m.stepDuration, m.budgetExhausted, m.emails,
		m.decisions, m.webhook, m.reloadSuccess, m.reloadTime, pending)

	for _, s := range []string{"firing", "resolved"} {
		m.alertsReceived.WithLabelValues(s)
	}
	for _, c := range checkIDs() {
		m.running.WithLabelValues(c)
		for _, r := range Results() {
			m.incidents.WithLabelValues(c, r)
		}
	}
	for _, a := range runbook.Actions() {
		m.stepDuration.WithLabelValues(string(a))
		for _, r := range []string{stepOK, stepFailed, stepSkipped} {
			m.steps.WithLabelValues(string(a), r)
		}
	}
	for _, k := range []string{kindCustomer, kindOperator} {
		for _, r := range []string{emailSent, emailFailed} {
			m.emails.WithLabelValues(k, r)
		}
	}
	for _, r := range Reasons() {
		m.decisions.WithLabelValues(string(r))
	}
	return m
}

// inventoryLoaded creates the budget series of every host and service the
// inventory names, so that the first exhaustion is an increase.
func (m *metrics) inventoryLoaded(inv *inventory.Inventory) {
	m.budgetExhausted.WithLabelValues("", "", budgetConcurrency)
	for _, h := range inv.Hosts() {
		m.budgetExhausted.WithLabelValues(h.Name, "", budgetReboot)
		for _, s := range h.Services() {
			m.budgetExhausted.WithLabelValues(h.Name, s, budgetRestart)
		}
	}
}
