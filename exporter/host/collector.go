// Package host is the exporter's host role: what the runbook checks on the
// server itself (process presence, load, swap, disk, the Postfix queue),
// read from /proc, /sys and the spool without forking anything.
package host

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "mamori"

// Options are the filesystem roots and limits of a host collector. Tests
// point the roots at fixture trees.
type Options struct {
	ProcRoot string // /proc
	SysRoot  string // /sys
	SpoolDir string // Postfix's queue_directory, /var/spool/postfix
	// MountTimeout bounds one statfs; a mount that does not answer in time
	// is left out until its statfs returns.
	MountTimeout time.Duration
	// Statfs reads a filesystem's sizes; nil means the statfs(2) system call.
	Statfs func(path string) (FSStats, error)
	Now    func() time.Time
	Logger log.Logger
}

// Threshold is one limit the rules compare with, from the inventory.
type Threshold struct {
	Check string
	Level string
	Value float64
}

// Target is what the host is expected to run, from the inventory. It is
// replaced whole on reload.
type Target struct {
	// Services are the canonical services of the host's checks; each one
	// gets a series from the first scrape, 0 when absent.
	Services []ServiceMatch
	// Thresholds in force on the host.
	Thresholds []Threshold
}

// ServiceMatch names a canonical service and the processes that are it.
type ServiceMatch struct {
	Service   string
	Processes []ProcessName
}

// ProcessName is one name a process of a service may carry; PathHas, when
// set, must also appear in argv[0].
type ProcessName struct {
	Name    string
	PathHas string
}

// collector is one source of host metrics. update sends fresh const
// metrics and returns an error when the source could not be read.
type collector interface {
	update(ch chan<- prometheus.Metric, t *Target) error
}

// Collector gathers every host collector concurrently and reports, for each,
// mamori_collector_success and mamori_collector_duration_seconds.
type Collector struct {
	target     atomic.Pointer[Target]
	collectors map[string]collector
	logger     log.Logger
	now        func() time.Time

	mu       sync.Mutex
	lastErrs map[string]string // log a failure only when it changes

	successDesc  *prometheus.Desc
	durationDesc *prometheus.Desc
}

// New returns the host collector for t.
func New(o Options, t *Target) *Collector {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = log.NewNopLogger()
	}
	if o.MountTimeout <= 0 {
		o.MountTimeout = 5 * time.Second
	}
	if o.Statfs == nil {
		o.Statfs = statfs
	}
	c := &Collector{
		collectors: map[string]collector{
			"process":   newProcessCollector(o.ProcRoot, o.Now),
			"load":      newLoadCollector(o.ProcRoot, o.SysRoot),
			"swap":      newSwapCollector(o.ProcRoot),
			"disk":      newDiskCollector(o.ProcRoot, o.Statfs, o.MountTimeout, o.Logger),
			"mailq":     newMailqCollector(o.SpoolDir, o.Now),
			"threshold": thresholdCollector{},
		},
		logger:   o.Logger,
		now:      o.Now,
		lastErrs: map[string]string{},
		successDesc: prometheus.NewDesc(namespace+"_collector_success",
			"1 when the collector read its source this scrape.", []string{"collector"}, nil),
		durationDesc: prometheus.NewDesc(namespace+"_collector_duration_seconds",
			"Time the collector took this scrape.", []string{"collector"}, nil),
	}
	c.SetTarget(t)
	return c
}

// SetTarget replaces what the host is expected to run (on reload).
func (c *Collector) SetTarget(t *Target) { c.target.Store(t) }

// Describe sends nothing: the collector is unchecked, because the series it
// returns depend on the inventory and on what the host runs.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	t := c.target.Load()
	var wg sync.WaitGroup
	for name, col := range c.collectors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := c.now()
			err := col.update(ch, t)
			success := 1.0
			if err != nil {
				success = 0
			}
			c.logChange(name, err)
			ch <- prometheus.MustNewConstMetric(c.durationDesc, prometheus.GaugeValue, c.now().Sub(start).Seconds(), name)
			ch <- prometheus.MustNewConstMetric(c.successDesc, prometheus.GaugeValue, success, name)
		}()
	}
	wg.Wait()
}

// logChange logs a collector's failure when it starts or changes, and its
// recovery, not at every scrape.
func (c *Collector) logChange(name string, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	c.mu.Lock()
	prev := c.lastErrs[name]
	c.lastErrs[name] = msg
	c.mu.Unlock()
	switch {
	case msg != "" && msg != prev:
		level.Error(c.logger).Log("msg", "collector failed", "collector", name, "err", err)
	case msg == "" && prev != "":
		level.Info(c.logger).Log("msg", "collector recovered", "collector", name)
	}
}
