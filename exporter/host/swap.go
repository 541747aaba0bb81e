package host

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	swapTotalDesc = prometheus.NewDesc(namespace+"_swap_total_bytes", "Swap space in total.", nil, nil)
	swapFreeDesc  = prometheus.NewDesc(namespace+"_swap_free_bytes", "Swap space free.", nil, nil)
)

// swapCollector reports swap size and use from /proc/meminfo.
type swapCollector struct {
	procRoot string
}

func newSwapCollector(procRoot string) *swapCollector { return &swapCollector{procRoot: procRoot} }

func (c *swapCollector) update(ch chan<- prometheus.Metric, _ *Target) error {
	b, err := os.ReadFile(filepath.Join(c.procRoot, "meminfo"))
	if err != nil {
		return fmt.Errorf("read swap: %w", err)
	}
	total, ok1 := meminfoValue(b, "SwapTotal")
	free, ok2 := meminfoValue(b, "SwapFree")
	if !ok1 || !ok2 {
		return fmt.Errorf("read swap: no SwapTotal or SwapFree in %s", filepath.Join(c.procRoot, "meminfo"))
	}
	ch <- prometheus.MustNewConstMetric(swapTotalDesc, prometheus.GaugeValue, total)
	ch <- prometheus.MustNewConstMetric(swapFreeDesc, prometheus.GaugeValue, free)
	return nil
}

var _ collector = (*swapCollector)(nil)

// meminfoValue returns a "Key:  123 kB" line of /proc/meminfo in bytes.
func meminfoValue(b []byte, key string) (float64, bool) {
	i := bytes.Index(b, []byte("\n"+key+":"))
	if i < 0 {
		if !bytes.HasPrefix(b, []byte(key+":")) {
			return 0, false
		}
		i = -1
	}
	line := b[i+1+len(key)+1:]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	f := strings.Fields(string(line))
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, false
	}
	if len(f) > 1 && f[1] == "kB" {
		v *= 1024
	}
	return v, true
}
