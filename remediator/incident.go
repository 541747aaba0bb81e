package remediator

import (
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/mamori-ops/mamori/inventory"
	"github.com/mamori-ops/mamori/remediator/journal"
	"github.com/mamori-ops/mamori/runbook"
)

// Reason is a typed decision of the pipeline: the `reason` label of
// mamori_remediator_decisions_total, journaled with every alert.
type Reason string

// The decisions. Every value is pre-initialised on /metrics.
const (
	// ReasonAccepted: a firing alert for a known host and check, queued.
	ReasonAccepted Reason = "accepted"
	// ReasonDuplicate: an incident with the same key exists (a repeat, a
	// retry, the other peer of an HA pair).
	ReasonDuplicate Reason = journal.DecisionDuplicate
	// ReasonResolved: a resolved notification; a running ladder stops at
	// its next step.
	ReasonResolved Reason = journal.DecisionResolved
	// ReasonUnknownHost: no `host` label, or a host not in the inventory.
	ReasonUnknownHost Reason = "unknown_host"
	// ReasonUnknownCheck: no `check` label, or a check not in the registry.
	ReasonUnknownCheck Reason = "unknown_check"
	// ReasonRejectedLabel: a label the remediator reads is malformed or
	// contradicts the inventory (a service or unit other than the one the
	// inventory names). Nothing runs.
	ReasonRejectedLabel Reason = "rejected_label"
	// ReasonNotRemediable: the check has no ladder, is not in force on the
	// host, or the alert says remediate="false".
	ReasonNotRemediable Reason = "not_remediable"
	// ReasonOverBudget: a restart or reboot budget, or the fleet-wide
	// concurrency budget, is spent: a person decides.
	ReasonOverBudget Reason = "over_budget"
	// ReasonHostKeyChanged: the host's SSH key is not the pinned one.
	ReasonHostKeyChanged Reason = "host_key_changed"
	// ReasonHostKeyUnknown: known_hosts has no key for the host.
	ReasonHostKeyUnknown Reason = "host_key_unknown"
	// ReasonResumed: a ladder in flight when the remediator stopped was
	// taken up again.
	ReasonResumed Reason = "resumed"
	// ReasonInterrupted: an action was in progress when the remediator
	// stopped; it is not repeated, the verify step decides.
	ReasonInterrupted Reason = "interrupted"
)

// Reasons lists every decision, in a fixed order.
func Reasons() []Reason {
	return []Reason{ReasonAccepted, ReasonDuplicate, ReasonResolved, ReasonUnknownHost, ReasonUnknownCheck,
		ReasonRejectedLabel, ReasonNotRemediable, ReasonOverBudget, ReasonHostKeyChanged, ReasonHostKeyUnknown,
		ReasonResumed, ReasonInterrupted}
}

// Results of an incident: the `result` label of
// mamori_remediator_incidents_total (the metric contract's values).
const (
	ResultRecovered         = "recovered"
	ResultHealthy           = "healthy"
	ResultResolved          = "resolved"
	ResultEscalated         = "escalated"
	ResultSkippedOverBudget = "skipped_over_budget"
	ResultDryRun            = "dry_run"
	ResultFailed            = "failed"
)

// Results lists the incident results, in the contract's order.
func Results() []string {
	return []string{ResultRecovered, ResultHealthy, ResultResolved, ResultEscalated, ResultSkippedOverBudget,
		ResultDryRun, ResultFailed}
}

// Alert labels the remediator reads. Relabelling sets host and customer;
// the rules set check, service, severity and remediate.
const (
	LabelCheck     = "check"
	LabelHost      = "host"
	LabelCustomer  = "customer"
	LabelService   = "service"
	LabelUnit      = "unit"
	LabelRemediate = "remediate"
	LabelInstance  = "instance"
)

// alertState is one alert on its way through intake → match → guard →
// dedup. Each stage reads what the earlier ones found and may set a
// rejection; the first rejection stands.
type alertState struct {
	// Set by intake.
	alert    template.Alert
	received time.Time
	dryRun   bool

	// Set by match: inventory and registry objects, never label values.
	host  *inventory.Host
	check inventory.HostCheck

	// Set by any stage that refuses the alert.
	reason Reason
	detail string

	// Set by dedup.
	incidentID int64
	outcome    journal.Outcome
}

func (s *alertState) reject(r Reason, detail string) {
	if s.reason == "" {
		s.reason, s.detail = r, detail
	}
}

func (s *alertState) accepted() bool { return s.reason == "" }

// incident is what the journal records of the alert. Check, host,
// customer and service come from the inventory for an accepted alert; for a
// rejected one they are the label values, kept for people to read.
func (s *alertState) incident() journal.Incident {
	a := s.alert
	inc := journal.Incident{
		Key:          journal.Key{Fingerprint: a.Fingerprint, StartsAt: a.StartsAt},
		Status:       a.Status,
		AlertName:    clip(a.Labels["alertname"]),
		Labels:       clipMap(a.Labels),
		Annotations:  clipMap(a.Annotations),
		GeneratorURL: clip(a.GeneratorURL),
		DryRun:       s.dryRun,
		Decision:     string(ReasonAccepted),
	}
	if s.accepted() {
		inc.Check, inc.Host, inc.Customer, inc.Service = s.check.ID, s.host.Name, s.host.Customer.Name, s.check.Service
		return inc
	}
	inc.Decision, inc.Detail = string(s.reason), s.detail
	inc.Check, inc.Host, inc.Customer, inc.Service = clip(a.Labels[LabelCheck]), clip(a.Labels[LabelHost]),
		clip(a.Labels[LabelCustomer]), clip(a.Labels[LabelService])
	return inc
}

// maxLabel bounds what is kept of one label value.
const maxLabel = 1024

func clip(s string) string {
	if len(s) > maxLabel {
		return strings.ToValidUTF8(s[:maxLabel], "") + "…"
	}
	return s
}

func clipMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[clip(k)] = clip(v)
	}
	return out
}

// checkIDs lists the registry's checks, for label pre-initialisation.
func checkIDs() []string {
	var ids []string
	for _, c := range runbook.Checks() {
		ids = append(ids, c.ID)
	}
	return ids
}
