package host

import (
	"sort"

	"github.com/mamori-ops/mamori/inventory"
	"github.com/mamori-ops/mamori/runbook"
)

// TargetFor derives what the host role reports for an inventory host: the
// canonical services of its checks with their process names from the
// registry, and its thresholds in force. A nil host (the exporter runs on a
// machine the inventory does not list, such as the central prober) watches
// no services and has no thresholds.
func TargetFor(h *inventory.Host) *Target {
	t := &Target{}
	if h == nil {
		return t
	}
	for _, name := range h.Services() {
		s, ok := runbook.ServiceByName(name)
		if !ok {
			continue
		}
		m := ServiceMatch{Service: name}
		for _, p := range s.Processes {
			m.Processes = append(m.Processes, ProcessName{Name: p.Name, PathHas: p.PathHas})
		}
		t.Services = append(t.Services, m)
	}
	for _, c := range h.CheckList() {
		levels := make([]string, 0, len(c.Thresholds))
		for l := range c.Thresholds {
			levels = append(levels, string(l))
		}
		sort.Strings(levels)
		for _, l := range levels {
			t.Thresholds = append(t.Thresholds, Threshold{Check: c.ID, Level: l, Value: c.Thresholds[runbook.Level(l)]})
		}
	}
	return t
}
