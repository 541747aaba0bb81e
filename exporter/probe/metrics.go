package probe

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mamori-ops/mamori/runbook"
)

// Metrics are the probe role's own metrics, on /metrics: how many probes
// ran, how they failed, how long they took, and how /probe requests ended.
// Every series exists from the start, 0 until it counts.
type Metrics struct {
	probes   *prometheus.CounterVec
	failures *prometheus.CounterVec
	duration *prometheus.HistogramVec
	requests *prometheus.CounterVec
}

// Request outcomes, the `result` label of mamori_exporter_probe_requests_total.
const (
	requestProbed        = "probed"
	requestBadRequest    = "bad_request"
	requestUnknownTarget = "unknown_target"
	requestUnknownCheck  = "unknown_check"
	requestConfigError   = "config_error"
)

// NewMetrics registers the probe role's metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_exporter_probes_total",
			Help: "Probes run, by check.",
		}, []string{"check"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_exporter_probe_failures_total",
			Help: "Probes that failed, by check and reason.",
		}, []string{"check", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mamori_exporter_probe_duration_seconds",
			Help:    "Time probes took, by check.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"check"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_exporter_probe_requests_total",
			Help: "Requests to /probe, by result: probed, bad_request, unknown_target, unknown_check, config_error.",
		}, []string{"result"}),
	}
	for _, c := range runbook.Checks() {
		if c.Kind != runbook.Probe {
			continue
		}
		m.probes.WithLabelValues(c.ID)
		m.duration.WithLabelValues(c.ID)
		for _, r := range Reasons() {
			m.failures.WithLabelValues(c.ID, string(r))
		}
	}
	for _, r := range []string{requestProbed, requestBadRequest, requestUnknownTarget, requestUnknownCheck, requestConfigError} {
		m.requests.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.probes, m.failures, m.duration, m.requests)
	}
	return m
}

// observe counts one probe; m may be nil.
func (m *Metrics) observe(check string, r Result) {
	if m == nil {
		return
	}
	m.probes.WithLabelValues(check).Inc()
	m.duration.WithLabelValues(check).Observe(r.Duration.Seconds())
	if !r.Success {
		m.failures.WithLabelValues(check, string(r.Reason)).Inc()
	}
}

// request counts one /probe request; m may be nil.
func (m *Metrics) request(result string) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(result).Inc()
}
