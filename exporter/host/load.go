package host

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	load1Desc  = prometheus.NewDesc(namespace+"_load1", "1-minute load average.", nil, nil)
	load5Desc  = prometheus.NewDesc(namespace+"_load5", "5-minute load average.", nil, nil)
	load15Desc = prometheus.NewDesc(namespace+"_load15", "15-minute load average.", nil, nil)
	cpusDesc   = prometheus.NewDesc(namespace+"_cpus", "Online CPUs, to read the load per CPU.", nil, nil)
)

// loadCollector reports the load average and the online CPUs.
type loadCollector struct {
	procRoot, sysRoot string
}

func newLoadCollector(procRoot, sysRoot string) *loadCollector {
	return &loadCollector{procRoot: procRoot, sysRoot: sysRoot}
}

func (c *loadCollector) update(ch chan<- prometheus.Metric, _ *Target) error {
	b, err := os.ReadFile(filepath.Join(c.procRoot, "loadavg"))
	if err != nil {
		return fmt.Errorf("read load average: %w", err)
	}
	loads, err := parseLoad(string(b))
	if err != nil {
		return err
	}
	b, err = os.ReadFile(filepath.Join(c.sysRoot, "devices/system/cpu/online"))
	if err != nil {
		return fmt.Errorf("read online CPUs: %w", err)
	}
	cpus, err := parseCPUList(string(b))
	if err != nil {
		return err
	}
	ch <- prometheus.MustNewConstMetric(load1Desc, prometheus.GaugeValue, loads[0])
	ch <- prometheus.MustNewConstMetric(load5Desc, prometheus.GaugeValue, loads[1])
	ch <- prometheus.MustNewConstMetric(load15Desc, prometheus.GaugeValue, loads[2])
	ch <- prometheus.MustNewConstMetric(cpusDesc, prometheus.GaugeValue, float64(cpus))
	return nil
}

// parseLoad reads the three averages of /proc/loadavg.
func parseLoad(s string) ([3]float64, error) {
	var out [3]float64
	f := strings.Fields(s)
	if len(f) < 3 {
		return out, fmt.Errorf("unexpected /proc/loadavg content %q", s)
	}
	for i := range out {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return out, fmt.Errorf("parse /proc/loadavg: %w", err)
		}
		out[i] = v
	}
	return out, nil
}

// parseCPUList counts the CPUs of a kernel CPU list such as "0-3,5,7-8".
func parseCPUList(s string) (int, error) {
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0, fmt.Errorf("parse CPU list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("parse CPU list %q: bad range %q", s, part)
			}
		}
		n += b - a + 1
	}
	return n, nil
}

var _ collector = (*loadCollector)(nil)
