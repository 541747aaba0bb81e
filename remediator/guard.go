package remediator

import (
	"fmt"
	"regexp"

	"github.com/mamori-ops/mamori/runbook"
)

// labelRE is the shape of every label value the remediator reads: names,
// not sentences, and nothing a shell would interpret.
var labelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@:-]{0,252}$`)

// interpreted are the labels whose values the pipeline reads.
func interpreted() []string {
	return []string{LabelCheck, LabelHost, LabelCustomer, LabelService, LabelUnit, LabelRemediate}
}

// guard refuses an alert whose labels are malformed or contradict the
// inventory. Label values are only ever compared with the inventory and the
// registry: a refused alert runs nothing, and an accepted one runs commands
// built from inventory values alone.
func guard(s *alertState) {
	labels := s.alert.Labels
	for _, name := range interpreted() {
		if v, ok := labels[name]; ok && !labelRE.MatchString(v) {
			// More specific than "unknown host": someone put a command or
			// garbage into a label.
			s.reason, s.detail = ReasonRejectedLabel, fmt.Sprintf("label %s=%q is not a name", name, clip(v))
			return
		}
	}
	if !s.accepted() {
		return
	}
	if v := labels[LabelRemediate]; v != "true" {
		// mamori's rules mark the alerts a ladder answers; others may carry
		// a check label too (MamoriTLSCertificateExpiring has check=https),
		// and a certificate is not fixed by restarting httpd.
		s.reject(ReasonNotRemediable, fmt.Sprintf("the alert does not carry remediate=\"true\" (remediate=%q)", v))
		return
	}
	h, hc := s.host, s.check
	if v, ok := labels[LabelCustomer]; ok && v != h.Customer.Name {
		s.reject(ReasonRejectedLabel, fmt.Sprintf("customer=%q, but %s belongs to %s", v, h.Name, h.Customer.Name))
		return
	}
	unit := ""
	if hc.Service != "" {
		unit = h.Unit(hc.Service)
	}
	// The rules are generated from the registry and carry its service; a
	// host may run the check's service under another name (ftp: vsftpd
	// instead of xinetd). Either agrees; the ladder uses the inventory's.
	registryService := ""
	if c, ok := runbook.CheckByID(hc.ID); ok {
		registryService = c.Service
	}
	if v, ok := labels[LabelService]; ok && (hc.Service == "" || (v != hc.Service && v != unit && v != registryService)) {
		s.reject(ReasonRejectedLabel, fmt.Sprintf("service=%q, but check %s on %s concerns %q (unit %q)", v, hc.ID, h.Name, hc.Service, unit))
		return
	}
	if v, ok := labels[LabelUnit]; ok && (unit == "" || v != unit) {
		s.reject(ReasonRejectedLabel, fmt.Sprintf("unit=%q, but the inventory's unit for check %s on %s is %q", v, hc.ID, h.Name, unit))
		return
	}
	if unit != "" && !labelRE.MatchString(unit) {
		// The inventory validates unit names; the registry's are constants.
		// A second look costs nothing where commands are concerned.
		s.reject(ReasonRejectedLabel, fmt.Sprintf("unit %q is not an allow-listed name", unit))
	}
}
