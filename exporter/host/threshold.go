package host

import "github.com/prometheus/client_golang/prometheus"

var thresholdDesc = prometheus.NewDesc(namespace+"_threshold",
	"The threshold the alert rules compare with, from the inventory.", []string{"check", "level"}, nil)

// thresholdCollector exports the host's thresholds, so that a per-host
// change needs no rule edit.
type thresholdCollector struct{}

func (thresholdCollector) update(ch chan<- prometheus.Metric, t *Target) error {
	for _, th := range t.Thresholds {
		ch <- prometheus.MustNewConstMetric(thresholdDesc, prometheus.GaugeValue, th.Value, th.Check, th.Level)
	}
	return nil
}

var _ collector = thresholdCollector{}
