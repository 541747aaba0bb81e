package remediator

import (
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/mamori-ops/mamori/remediator/journal"
)

// dedup reads what the journal made of each alert (journal.Accept keys
// incidents by fingerprint and startsAt, in one transaction with the
// decisions) and passes it on: a new incident wakes the scheduler, a
// resolved notification stops the incident's running ladder, a repeat does
// nothing more. It counts every decision.
func dedup(states []*alertState, results []journal.Accepted, m *metrics, sched *scheduler, logger log.Logger) {
	var wake []string
	for i, st := range states {
		r := results[i]
		st.incidentID, st.outcome = r.IncidentID, r.Outcome
		reason := st.reason
		switch r.Outcome {
		case journal.New:
			reason, wake = ReasonAccepted, append(wake, st.host.Name)
			level.Info(logger).Log("msg", "incident accepted", "incident", r.IncidentID, "check", st.check.ID, "host", st.host.Name, "dry_run", st.dryRun)
		case journal.Rejected:
			level.Warn(logger).Log("msg", "alert rejected: nothing runs", "incident", r.IncidentID, "reason", st.reason, "detail", st.detail)
		case journal.Duplicate:
			reason = ReasonDuplicate
			level.Debug(logger).Log("msg", "duplicate alert", "incident", r.IncidentID, "fingerprint", st.alert.Fingerprint)
		case journal.ResolvedActive:
			reason = ReasonResolved
			sched.Resolve(r.IncidentID)
			level.Info(logger).Log("msg", "alert resolved: its ladder stops at the next step", "incident", r.IncidentID)
		case journal.ResolvedDone, journal.ResolvedFirst:
			reason = ReasonResolved
		}
		m.decisions.WithLabelValues(string(reason)).Inc()
	}
	if len(wake) > 0 {
		sched.Wake(wake...)
	}
}
