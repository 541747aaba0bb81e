package remediator

import (
	"fmt"

	"github.com/mamori-ops/mamori/inventory"
	"github.com/mamori-ops/mamori/runbook"
)

// match finds the alert's host and check in the inventory and the registry,
// by the `host` and `check` labels. What it finds, not the labels, is what
// the ladder uses.
func match(inv *inventory.Inventory, s *alertState) {
	labels := s.alert.Labels
	checkID := labels[LabelCheck]
	if checkID == "" {
		s.reject(ReasonUnknownCheck, "the alert has no check label: it does not come from mamori's rules")
		return
	}
	c, ok := runbook.CheckByID(checkID)
	if !ok {
		s.reject(ReasonUnknownCheck, fmt.Sprintf("check %q is not in the runbook registry", clip(checkID)))
		return
	}
	name := labels[LabelHost]
	if name == "" {
		// Relabelling sets host; the probe job also sets instance to it.
		name = labels[LabelInstance]
	}
	if name == "" {
		s.reject(ReasonUnknownHost, "the alert has no host label")
		return
	}
	h, ok := inv.Host(name)
	if !ok {
		s.reject(ReasonUnknownHost, fmt.Sprintf("host %q is not in the inventory %s", clip(name), inv.File))
		return
	}
	hc, ok := h.Check(c.ID)
	if !ok {
		s.reject(ReasonNotRemediable, fmt.Sprintf("check %s is not in force on %s (plan %s, enable/disable)", c.ID, h.Name, h.Customer.Plan))
		return
	}
	if !hc.Remediates() {
		s.reject(ReasonNotRemediable, fmt.Sprintf("check %s has no ladder", c.ID))
		return
	}
	s.host, s.check = h, hc
}
