package remediator

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/mamori-ops/mamori/inventory"
	"github.com/mamori-ops/mamori/remediator/journal"
	"github.com/mamori-ops/mamori/remediator/remote"
	"github.com/mamori-ops/mamori/runbook"
)

// Step outcomes, as journaled. The ladder's control flow is a function of
// them alone, so a resumed ladder replays the recorded outcomes to find its
// place and its result.
const (
	outHealthy     = "healthy"     // the check or verify found the service well
	outUnhealthy   = "unhealthy"   // ... found it down or not answering
	outDone        = "done"        // the action ran and succeeded
	outFailed      = "failed"      // the action ran and failed, or could not run
	outSkipped     = "skipped"     // the step does not apply here
	outOverBudget  = "over_budget" // a budget forbade the action
	outUnreachable = "unreachable" // SSH could not reach the host to look
	outHostKey     = "host_key"    // the host key is changed or unknown
	outInterrupted = "interrupted" // the remediator stopped while the action ran
	outURLOnly     = "url_only"    // only the url check's URL fails: no restart
	outSiteDown    = "site_down"   // the whole site fails: restart
	outRendered    = "rendered"    // dry-run: commands rendered, nothing run
	outQueued      = "queued"      // the email is in the outbox
)

// disruptive actions are never repeated blindly: one that was in progress
// when the remediator died is recorded as interrupted and the ladder goes
// on to verify.
func disruptive(a runbook.Action) bool {
	switch a {
	case runbook.ActRestart, runbook.ActConsoleRestart, runbook.ActPowerCycle, runbook.ActRestartOverLoad,
		runbook.ActResetPassword:
		return true
	}
	return false
}

// stepMetric maps an outcome to the steps_total result.
func stepMetric(out string) string {
	switch out {
	case outHealthy, outDone, outRendered, outQueued, outURLOnly, outSiteDown:
		return stepOK
	case outSkipped, outOverBudget:
		return stepSkipped
	}
	return stepFailed
}

// Reprober runs a check's outside dialogue again, now: the exporter's probe
// package in production, a fake in tests.
type Reprober interface {
	Reprobe(ctx context.Context, h *inventory.Host, hc inventory.HostCheck) ProbeResult
}

// ProbeResult is one re-probe's outcome.
type ProbeResult struct {
	Success bool
	// Reason is the probe's failure reason (refused, timeout, ...).
	Reason string
	Err    error
}

// engine is what every ladder shares.
type engine struct {
	journal  journal.Journal
	metrics  *metrics
	logger   log.Logger
	reprober Reprober
	now      func() time.Time
	// actions counts restarts and reboots in progress across the fleet.
	actions atomic.Int64
	// wakeMailer tells the outbox that an email is waiting.
	wakeMailer func()
	// agentSocket is $SSH_AUTH_SOCK.
	agentSocket string
}

// rung is one step of the ladder as the engine runs it.
type rung struct {
	runbook.Step
	// conditional rungs run only when the ladder jumps to them: the
	// escalation the engine adds to a customer's own procedure that has
	// none, so a changed host key or a spent budget still reaches a person.
	conditional bool
}

// ladder is one incident's run.
type ladder struct {
	e        *engine
	rc       *runtime
	cfg      *Config
	inc      *journal.Incident
	host     *inventory.Host
	hc       inventory.HostCheck
	rungs    []rung
	history  map[int]journal.Step
	resolved *atomic.Bool
	logger   log.Logger
	dry      bool

	client  *remote.Client
	hostErr error // a host key problem: sticky, nothing more runs over SSH

	// Replayed from outcomes.
	result  string
	forced  bool // a jump to escalation happened
	stopped bool // a resolved notification stopped the ladder
	lastOut string
}

// errStop ends a ladder without finishing it: the remediator is stopping,
// or the journal cannot be written; the incident resumes on the next start.
var errStop = errors.New("ladder stopped")

// rungs builds the engine's ladder from the host's check.
func rungsOf(hc inventory.HostCheck) []rung {
	var out []rung
	hasEscalate := false
	for _, s := range hc.Ladder.Steps {
		hasEscalate = hasEscalate || s.Action == runbook.ActEscalate
	}
	for i, s := range hc.Ladder.Steps {
		if !hasEscalate && s.Action == runbook.ActNotify && i == len(hc.Ladder.Steps)-1 {
			out = append(out, rung{Step: runbook.Step{Action: runbook.ActEscalate}, conditional: true})
		}
		out = append(out, rung{Step: s})
	}
	return out
}

// run executes the incident's ladder from where its journal says it stands.
func (e *engine) run(ctx context.Context, rc *runtime, id int64, resolved *atomic.Bool) error {
	inc, steps, _, err := e.journal.Incident(ctx, id)
	if err != nil {
		return fmt.Errorf("%w: %w", errStop, err)
	}
	logger := log.With(e.logger, "incident", inc.ID, "check", inc.Check, "host", inc.Host)
	h, ok := rc.inv.Host(inc.Host)
	var hc inventory.HostCheck
	if ok {
		hc, ok = h.Check(inc.Check)
	}
	if !ok {
		// The inventory changed under a queued incident.
		detail := fmt.Sprintf("host %s or its check %s is no longer in the inventory", inc.Host, inc.Check)
		level.Warn(logger).Log("msg", "cannot run ladder", "err", detail)
		return e.finish(ctx, inc, ResultFailed, detail, logger)
	}
	if inc.Resolved() {
		resolved.Store(true)
	}
	e.metrics.running.WithLabelValues(inc.Check).Inc()
	defer e.metrics.running.WithLabelValues(inc.Check).Dec()
	l := &ladder{
		e: e, rc: rc, cfg: rc.cfg, inc: inc, host: h, hc: hc, rungs: rungsOf(hc),
		history: map[int]journal.Step{}, resolved: resolved, logger: logger, dry: inc.DryRun,
	}
	for _, s := range steps {
		l.history[s.Index] = s
	}
	defer l.closeClient()
	if len(steps) > 0 {
		level.Info(logger).Log("msg", "resuming ladder", "steps_recorded", len(steps))
		if err := l.decide(ctx, ReasonResumed, fmt.Sprintf("resumed with %d step(s) recorded", len(steps))); err != nil {
			return err
		}
	}
	if err := l.walk(ctx); err != nil {
		return err
	}
	return e.finish(ctx, inc, l.finalResult(), "", logger)
}

// walk goes through the rungs, replaying recorded ones and running the rest.
func (l *ladder) walk(ctx context.Context) error {
	notify := l.notifyIndex()
	started := len(l.history) > 0
	for i := 0; i < len(l.rungs); {
		r := l.rungs[i]
		if h, ok := l.history[i]; ok && h.Finished() {
			l.apply(i, h.Outcome)
			i = l.next(i, h.Outcome)
			continue
		}
		if h, ok := l.history[i]; ok && disruptive(r.Action) {
			// Started, never finished: the remediator died while it ran. It
			// may have happened; doing it again blindly could do it twice.
			detail := "the remediator stopped while this action ran; it is not repeated: the next steps look whether it worked"
			h.Outcome, h.Detail = outInterrupted, detail
			if err := l.e.journal.EndStep(ctx, h); err != nil {
				return fmt.Errorf("%w: %w", errStop, err)
			}
			l.history[i] = h
			if err := l.decide(ctx, ReasonInterrupted, fmt.Sprintf("step %d (%s) interrupted", i, r.Action)); err != nil {
				return err
			}
			l.apply(i, outInterrupted)
			i = l.next(i, outInterrupted)
			continue
		}
		if ctx.Err() != nil {
			return errStop
		}
		if l.resolved.Load() && !l.stopped && r.Action != runbook.ActNotify {
			l.stopped = true
			detail := fmt.Sprintf("the alert resolved; the ladder stops before step %d (%s)", i, r.Action)
			if err := l.decide(ctx, ReasonResolved, detail); err != nil {
				return err
			}
			level.Info(l.logger).Log("msg", "alert resolved: stopping ladder", "before_step", i, "action", r.Action)
			if !started {
				// Nothing was done: nothing to tell.
				return nil
			}
			i = notify
			continue
		}
		if r.conditional && !l.forced {
			// The escalation added to a procedure without one runs only
			// when a jump lands on it.
			i++
			continue
		}
		started = true
		out, err := l.step(ctx, i)
		if err != nil {
			return err
		}
		l.apply(i, out)
		i = l.next(i, out)
	}
	return nil
}

func (l *ladder) notifyIndex() int {
	for i := len(l.rungs) - 1; i >= 0; i-- {
		if l.rungs[i].Action == runbook.ActNotify {
			return i
		}
	}
	return len(l.rungs)
}

// escalateAfter is the first escalation after rung i, else the notify rung.
func (l *ladder) escalateAfter(i int) int {
	for j := i + 1; j < len(l.rungs); j++ {
		if l.rungs[j].Action == runbook.ActEscalate {
			return j
		}
	}
	return l.notifyIndex()
}

// next is the ladder's control flow: where to go after rung i ended with out.
func (l *ladder) next(i int, out string) int {
	a := l.rungs[i].Action
	l.lastOut = out
	switch out {
	case outHealthy:
		return l.notifyIndex()
	case outHostKey, outOverBudget, outURLOnly:
		l.forced = true
		return l.escalateAfter(i)
	case outUnreachable:
		if a == runbook.ActCheck {
			l.forced = true
			return l.escalateAfter(i)
		}
	case outSkipped:
		// Nothing was done, so there is nothing to verify.
		if disruptive(a) && i+1 < len(l.rungs) && l.rungs[i+1].Action == runbook.ActVerify {
			return i + 2
		}
	}
	return i + 1
}

// apply keeps the incident's result as outcomes come in.
func (l *ladder) apply(i int, out string) {
	a := l.rungs[i].Action
	set := func(r string) {
		if l.result == "" {
			l.result = r
		}
	}
	switch {
	case out == outHealthy && a == runbook.ActVerify:
		set(ResultRecovered)
	case out == outHealthy:
		set(ResultHealthy)
	case out == outOverBudget:
		set(ResultSkippedOverBudget)
	case out == outHostKey, out == outUnreachable && a == runbook.ActCheck:
		set(ResultFailed)
	case a == runbook.ActEscalate && out == outQueued:
		set(ResultEscalated)
	}
}

// result is the incident's result as it stands now.
func (l *ladder) finalResult() string {
	switch {
	case l.dry:
		return ResultDryRun
	case l.stopped && l.result != ResultHealthy && l.result != ResultRecovered:
		return ResultResolved
	case l.result != "":
		return l.result
	}
	// A ladder that only reports (load, swap, disk): the customer decides.
	return ResultEscalated
}

// step runs rung i.
func (l *ladder) step(ctx context.Context, i int) (string, error) {
	r := l.rungs[i]
	start := l.e.now()
	var (
		out string
		err error
	)
	switch r.Action {
	case runbook.ActCheck:
		out, err = l.check(ctx, i)
	case runbook.ActSSHConnect:
		out, err = l.sshConnect(ctx, i)
	case runbook.ActVerify:
		out, err = l.verify(ctx, i)
	case runbook.ActRestart:
		out, err = l.restart(ctx, i, l.hc.Service)
	case runbook.ActConsoleRestart:
		out, err = l.consoleRestart(ctx, i)
	case runbook.ActPowerCycle:
		out, err = l.powerCycle(ctx, i)
	case runbook.ActCollect:
		out, err = l.collect(ctx, i, r.Collect)
	case runbook.ActRestartOverLoad:
		out, err = l.restartOverLoad(ctx, i)
	case runbook.ActScopeURL:
		out, err = l.scopeURL(ctx, i)
	case runbook.ActAnalyseQueue:
		out, err = l.analyseQueue(ctx, i)
	case runbook.ActResetPassword:
		out, err = l.resetPassword(ctx, i)
	case runbook.ActEscalate:
		out, err = l.escalate(ctx, i)
	case runbook.ActNotify:
		out, err = l.notify(ctx, i)
	default:
		out, err = l.skip(ctx, i, fmt.Sprintf("unknown action %q", r.Action))
	}
	if err != nil {
		return "", err
	}
	l.e.metrics.steps.WithLabelValues(string(r.Action), stepMetric(out)).Inc()
	l.e.metrics.stepDuration.WithLabelValues(string(r.Action)).Observe(l.e.now().Sub(start).Seconds())
	level.Info(l.logger).Log("msg", "step", "index", i, "action", r.Action, "outcome", out)
	return out, nil
}

// finish records the result and counts it.
func (e *engine) finish(ctx context.Context, inc *journal.Incident, result, detail string, logger log.Logger) error {
	if err := e.journal.Finish(ctx, inc.ID, result, detail); err != nil {
		return fmt.Errorf("%w: %w", errStop, err)
	}
	e.metrics.incidents.WithLabelValues(inc.Check, result).Inc()
	level.Info(logger).Log("msg", "incident finished", "result", result)
	return nil
}

// decide journals a decision about the incident and counts it.
func (l *ladder) decide(ctx context.Context, r Reason, detail string) error {
	l.e.metrics.decisions.WithLabelValues(string(r)).Inc()
	err := l.e.journal.Decide(ctx, journal.Decision{IncidentID: l.inc.ID, Key: l.inc.Key, Status: l.inc.Status,
		Reason: string(r), Detail: detail})
	if err != nil {
		return fmt.Errorf("%w: %w", errStop, err)
	}
	return nil
}
