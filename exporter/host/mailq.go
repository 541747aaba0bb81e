package host

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mamori-ops/mamori/exporter/host/postfix"
)

var (
	mailqMessagesDesc = prometheus.NewDesc(namespace+"_mailq_messages",
		"Messages in each Postfix queue.", []string{"queue"}, nil)
	mailqOldestDesc = prometheus.NewDesc(namespace+"_mailq_oldest_message_age_seconds",
		"Age of the oldest queued message; 0 when the queue is empty.", nil, nil)
)

// mailqCollector reports the Postfix queue from the spool directories,
// instead of running mailq at every scrape.
type mailqCollector struct {
	spool *postfix.Spool
	now   func() time.Time
}

func newMailqCollector(spoolDir string, now func() time.Time) *mailqCollector {
	return &mailqCollector{spool: postfix.NewSpool(spoolDir), now: now}
}

func (c *mailqCollector) update(ch chan<- prometheus.Metric, _ *Target) error {
	now := c.now()
	st, err := c.spool.Scan(now)
	if err != nil {
		return err
	}
	for _, q := range postfix.Queues() {
		ch <- prometheus.MustNewConstMetric(mailqMessagesDesc, prometheus.GaugeValue, float64(st.Messages[q]), q)
	}
	age := 0.0
	if !st.Oldest.IsZero() {
		age = max(now.Sub(st.Oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(mailqOldestDesc, prometheus.GaugeValue, age)
	return nil
}

var _ collector = (*mailqCollector)(nil)
