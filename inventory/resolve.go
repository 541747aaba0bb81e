package inventory

import (
	"slices"

	"github.com/mamori-ops/mamori/runbook"
)

// HostCheck is a registry check as it applies to one host: the registry's
// defaults with the host's overrides laid over them.
type HostCheck struct {
	runbook.Check
	// Override is what the inventory says of this check on this host.
	Override CheckOverride
	// Thresholds in force, by level; a level that is off is absent.
	Thresholds map[runbook.Level]float64
}

// has reports whether check c is in force on h (plan, enable, disable).
func (h *Host) has(c runbook.Check) bool {
	if slices.Contains(h.Disable, c.ID) {
		return false
	}
	if slices.Contains(h.Enable, c.ID) {
		return true
	}
	return h.Customer != nil && h.Customer.Plan.Includes(c.Plan)
}

// resolve computes every host's checks once, after validation, from one
// copy of the registry: a fleet of hundreds of hosts loads in one pass.
func (inv *Inventory) resolve() {
	registry := runbook.Checks()
	for ci := range inv.Customers {
		for _, h := range inv.Customers[ci].Hosts {
			h.checks = h.resolveChecks(registry)
		}
	}
}

func (h *Host) resolveChecks(registry []runbook.Check) []HostCheck {
	out := make([]HostCheck, 0, len(registry))
	for _, c := range registry {
		if !h.has(c) {
			continue
		}
		o := h.Checks[c.ID]
		hc := HostCheck{Check: c, Override: o}
		if len(c.Thresholds) > 0 {
			hc.Thresholds = make(map[runbook.Level]float64, len(c.Thresholds))
		}
		if o.Port != 0 {
			hc.Port = o.Port
		}
		if o.Service != "" {
			hc.Service = o.Service
		}
		if len(o.Ladder) > 0 {
			hc.Ladder = runbook.Ladder{}
			for _, a := range o.Ladder {
				hc.Ladder.Steps = append(hc.Ladder.Steps, runbook.Step{Action: a})
			}
		}
		for _, t := range c.Thresholds {
			if v, ok := o.Thresholds[t.Level]; ok {
				hc.Thresholds[t.Level] = v
			} else if !t.Off {
				hc.Thresholds[t.Level] = t.Value
			}
		}
		out = append(out, hc)
	}
	return out
}

// CheckList returns the checks in force on the host, in registry order.
func (h *Host) CheckList() []HostCheck { return h.checks }

// Check returns one check in force on the host.
func (h *Host) Check(id string) (HostCheck, bool) {
	for _, c := range h.checks {
		if c.ID == id {
			return c, true
		}
	}
	return HostCheck{}, false
}

// Services returns the canonical services the host's checks concern, in
// registry order, each once.
func (h *Host) Services() []string {
	var out []string
	for _, c := range h.checks {
		if c.Service != "" && !slices.Contains(out, c.Service) {
			out = append(out, c.Service)
		}
	}
	return out
}

// Unit returns the unit name of a canonical service on this host.
func (h *Host) Unit(service string) string {
	if u := h.Units[service]; u != "" {
		return u
	}
	s, _ := runbook.ServiceByName(service)
	return s.Unit(h.OSFamily)
}

// Host returns the host of that name.
func (inv *Inventory) Host(name string) (*Host, bool) {
	for _, h := range inv.Hosts() {
		if h.Name == name {
			return h, true
		}
	}
	return nil, false
}

// Hosts returns every host, in file order.
func (inv *Inventory) Hosts() []*Host {
	var out []*Host
	for ci := range inv.Customers {
		out = append(out, inv.Customers[ci].Hosts...)
	}
	return out
}
