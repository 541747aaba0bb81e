package remediator

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/log/level"

	"github.com/mamori-ops/mamori/remediator/journal"
	"github.com/mamori-ops/mamori/remediator/remote"
	"github.com/mamori-ops/mamori/runbook"
)

// spend asks the budgets whether rung i may act on service (restart) or on
// the host (reboot). On refusal it records the step as over budget and
// returns its outcome; on consent the caller must call l.e.actions.Add(-1)
// when the action ends.
func (l *ladder) spend(ctx context.Context, i int, service, kind string) (ok bool, s *stepRec, err error) {
	b, svc := l.cfg.Budgets.Restarts, service
	if kind == budgetReboot {
		b, svc = l.cfg.Budgets.Reboots, ""
	}
	window := time.Duration(b.Window)
	used, err := l.e.journal.CountBudget(ctx, journal.BudgetQuery{Budget: kind, Host: l.host.Name, Service: svc,
		Since: l.e.now().Add(-window)})
	if err != nil {
		return false, nil, fmt.Errorf("%w: %w", errStop, err)
	}
	refuse := func(metricKind, why string) (bool, *stepRec, error) {
		s, err := l.begin(ctx, i, service, "")
		if err != nil {
			return false, nil, err
		}
		s.note("%s", why)
		if l.dry {
			// Dry-run renders what would happen; it spends nothing and
			// refuses nothing. The caller releases one action slot.
			l.e.actions.Add(1)
			return true, s, nil
		}
		host, msvc := l.host.Name, svc
		if metricKind == budgetConcurrency {
			host, msvc = "", ""
		}
		l.e.metrics.budgetExhausted.WithLabelValues(host, msvc, metricKind).Inc()
		level.Warn(l.logger).Log("msg", "budget spent: escalating instead of acting", "kind", metricKind, "service", svc)
		if err := l.decide(ctx, ReasonOverBudget, why); err != nil {
			return false, nil, err
		}
		_, err = l.end(ctx, s, outOverBudget)
		return false, s, err
	}
	if used >= b.Max {
		return refuse(kind, fmt.Sprintf("%s budget spent: %d of %d in the last %s on %s %s", kind, used, b.Max, window, l.host.Name, svc))
	}
	if n := l.e.actions.Add(1); n > int64(l.cfg.Budgets.ConcurrentActions) {
		l.e.actions.Add(-1)
		return refuse(budgetConcurrency, fmt.Sprintf("%d restarts or reboots already in progress across the fleet (budgets.concurrent_actions %d)",
			n-1, l.cfg.Budgets.ConcurrentActions))
	}
	budget := kind
	if l.dry {
		budget = ""
	}
	s, err = l.begin(ctx, i, service, budget)
	if err != nil {
		l.e.actions.Add(-1)
		return false, nil, err
	}
	s.note("%s budget: %d of %d used in the last %s", kind, used, b.Max, window)
	return true, s, nil
}

// restart restarts a service's unit over SSH, detached from the session.
func (l *ladder) restart(ctx context.Context, i int, service string, notes ...string) (string, error) {
	if service == "" {
		return l.skip(ctx, i, "the check concerns no service")
	}
	cmd, err := l.render("restart", l.host.Unit(service))
	if err != nil {
		return l.skip(ctx, i, err.Error())
	}
	cmd.Detach = true
	ok, s, err := l.spend(ctx, i, service, budgetRestart)
	if err != nil || !ok {
		return outOverBudget, err
	}
	defer l.e.actions.Add(-1)
	s.notes = append(notes, s.notes...)
	res, err := l.runSSH(ctx, s, cmd)
	return l.acted(ctx, s, res, err)
}

// acted ends an action's step from its command's result.
func (l *ladder) acted(ctx context.Context, s *stepRec, res remote.Result, err error) (string, error) {
	switch {
	case errors.Is(err, errDryRun):
		return l.end(ctx, s, outRendered)
	case stopping(err):
		return "", err
	case hostKeyErr(err):
		s.note("%v", err)
		return l.end(ctx, s, outHostKey)
	case err != nil:
		s.note("%v", err)
		return l.end(ctx, s, outFailed)
	case res.ExitCode != 0:
		s.note("exit status %d", res.ExitCode)
		return l.end(ctx, s, outFailed)
	}
	return l.end(ctx, s, outDone)
}

// consoleRestart restarts the service through the host's out-of-band
// console: the console argv with the restart argv appended.
func (l *ladder) consoleRestart(ctx context.Context, i int) (string, error) {
	console := l.host.OutOfBand.Console
	if len(console) == 0 {
		return l.skip(ctx, i, "the inventory gives no out-of-band console for this host")
	}
	cmd, err := l.render("restart", l.host.Unit(l.hc.Service))
	if err != nil {
		return l.skip(ctx, i, err.Error())
	}
	ok, s, err := l.spend(ctx, i, l.hc.Service, budgetRestart)
	if err != nil || !ok {
		return outOverBudget, err
	}
	defer l.e.actions.Add(-1)
	argv := append(append([]string(nil), console...), cmd.Argv...)
	res, err := l.runLocal(ctx, s, remote.Command{Name: "console", Argv: argv})
	return l.acted(ctx, s, res, err)
}

// powerCycle reboots the host out of band: the power command, or else the
// reboot command through the console.
func (l *ladder) powerCycle(ctx context.Context, i int) (string, error) {
	argv := l.host.OutOfBand.PowerCycle
	name := "power_cycle"
	if len(argv) == 0 && len(l.host.OutOfBand.Console) > 0 {
		reboot, err := l.render("reboot", "")
		if err != nil {
			return l.skip(ctx, i, err.Error())
		}
		argv, name = append(append([]string(nil), l.host.OutOfBand.Console...), reboot.Argv...), "console"
	}
	if len(argv) == 0 {
		return l.skip(ctx, i, "the inventory gives no out-of-band power or console command for this host")
	}
	ok, s, err := l.spend(ctx, i, "", budgetReboot)
	if err != nil || !ok {
		return outOverBudget, err
	}
	defer l.e.actions.Add(-1)
	res, err := l.runLocal(ctx, s, remote.Command{Name: name, Argv: argv})
	l.closeClient()
	return l.acted(ctx, s, res, err)
}

var loadRE = regexp.MustCompile(`load average:\s*([0-9.]+),\s*([0-9.]+),\s*([0-9.]+)`)

// parseLoad5 reads the 5-minute load from top's first line.
func parseLoad5(top string) (float64, bool) {
	m := loadRE.FindStringSubmatch(top)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[2], 64)
	return v, err == nil
}

// restartOverLoad restarts the offending service the inventory names, only
// when the load per CPU is above the host's restart threshold.
func (l *ladder) restartOverLoad(ctx context.Context, i int) (string, error) {
	threshold, ok := l.hc.Thresholds[runbook.LevelRestart]
	if !ok {
		return l.skip(ctx, i, "no restart threshold is set for this host (the runbook's \"very high\" load is off by default)")
	}
	offender := l.hc.Override.Offender
	if offender == "" {
		return l.skip(ctx, i, "the inventory names no offending service to restart")
	}
	if l.dry {
		return l.restart(ctx, i, offender)
	}
	load5, ok := parseLoad5(l.lastOutput("top"))
	if !ok {
		return l.skip(ctx, i, "no load average in top's output")
	}
	s, err := l.begin(ctx, i, offender, "")
	if err != nil {
		return "", err
	}
	nproc, err := l.render("cpus", "")
	if err != nil {
		return "", err
	}
	res, err := l.runSSH(ctx, s, nproc)
	if stopping(err) {
		return "", err
	}
	cpus, perr := strconv.Atoi(strings.TrimSpace(string(res.Output)))
	if err != nil || perr != nil || cpus < 1 {
		s.note("cannot count the host's CPUs: %v", errors.Join(err, perr))
		return l.end(ctx, s, outSkipped)
	}
	per := load5 / float64(cpus)
	why := fmt.Sprintf("5-minute load %.2f on %d CPU(s) is %.2f per CPU", load5, cpus, per)
	if per <= threshold {
		s.note("%s, not above the restart threshold %.2f", why, threshold)
		return l.end(ctx, s, outSkipped)
	}
	level.Info(l.logger).Log("msg", "load above the restart threshold", "load5", load5, "cpus", cpus, "threshold", threshold, "offender", offender)
	// The same step row, now with its budget and the restart command.
	return l.restart(ctx, i, offender, fmt.Sprintf("%s, above the restart threshold %.2f", why, threshold))
}

// lastOutput is the output of the latest command of that name in this
// incident's journal.
func (l *ladder) lastOutput(name string) string {
	out := ""
	for i := 0; i < len(l.rungs); i++ {
		if h, ok := l.history[i]; ok {
			for _, c := range h.Commands {
				if c.Name == name {
					out = c.Output
				}
			}
		}
	}
	return out
}

// resetPassword resets the dominating account's password to the agreed
// value, only where the customer agreed, with the inventory's command; the
// password goes on standard input.
func (l *ladder) resetPassword(ctx context.Context, i int) (string, error) {
	agreed := l.host.Customer.Agreed.MailPasswordReset
	if agreed == nil {
		return l.skip(ctx, i, "the customer has not agreed to password resets: the finding goes to a person and to the customer")
	}
	a := l.queueAnalysis()
	if a.Dominant == "" {
		return l.skip(ctx, i, "no authenticated account dominates the queue")
	}
	if !accountRE.MatchString(a.Dominant) {
		return l.skip(ctx, i, fmt.Sprintf("account %q is not a plain mail account name", a.Dominant))
	}
	argv := make([]string, len(agreed.Command))
	for j, arg := range agreed.Command {
		argv[j] = strings.ReplaceAll(arg, "{account}", a.Dominant)
	}
	s, err := l.begin(ctx, i, "postfix", "")
	if err != nil {
		return "", err
	}
	s.note("account %s", a.Dominant)
	cmd := remote.Command{Name: "reset_password", Argv: argv, Stdin: []byte(agreed.Password.Reveal() + "\n")}
	res, err := l.runSSH(ctx, s, cmd)
	return l.acted(ctx, s, res, err)
}
