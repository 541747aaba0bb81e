package remediator

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/go-kit/log/level"

	"github.com/mamori-ops/mamori/inventory"
	"github.com/mamori-ops/mamori/remediator/journal"
	"github.com/mamori-ops/mamori/remediator/remote"
	"github.com/mamori-ops/mamori/runbook"
)

// Where a command runs, as journaled.
const (
	targetSSH   = "ssh"
	targetLocal = "local"
)

// errDryRun is what running a command returns in dry-run mode: it was
// rendered and recorded, not run.
var errDryRun = errors.New("dry-run: not run")

// stepRec is a step being recorded.
type stepRec struct {
	journal.Step
	notes []string
}

func (s *stepRec) note(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// begin journals that rung i starts. budget names the budget it spends
// (restart, reboot) when it is about to act; service is what it acts on.
func (l *ladder) begin(ctx context.Context, i int, service, budget string) (*stepRec, error) {
	s := journal.Step{IncidentID: l.inc.ID, Index: i, Action: string(l.rungs[i].Action), Host: l.host.Name,
		Service: service, Budget: budget, StartedAt: l.e.now()}
	if l.dry {
		// Nothing will run: the step is journaled whole when it ends.
		s.State = journal.StepStarted
		return &stepRec{Step: s}, nil
	}
	id, err := l.e.journal.BeginStep(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errStop, err)
	}
	s.ID, s.State = id, journal.StepStarted
	l.history[i] = s
	return &stepRec{Step: s}, nil
}

// end journals the step's outcome, its notes as the detail.
func (l *ladder) end(ctx context.Context, s *stepRec, out string) (string, error) {
	s.Outcome, s.State = out, journal.StepFinished
	s.Detail = joinNotes(s.notes)
	if l.dry {
		s.FinishedAt = l.e.now()
		id, err := l.e.journal.RecordStep(ctx, s.Step)
		if err != nil {
			return "", fmt.Errorf("%w: %w", errStop, err)
		}
		s.ID = id
		l.history[s.Index] = s.Step
		return out, nil
	}
	if err := l.e.journal.EndStep(ctx, s.Step); err != nil {
		return "", fmt.Errorf("%w: %w", errStop, err)
	}
	l.history[s.Index] = s.Step
	return out, nil
}

func joinNotes(notes []string) string {
	out := ""
	for i, n := range notes {
		if i > 0 {
			out += "; "
		}
		out += n
	}
	return out
}

// skip records rung i as not applying.
func (l *ladder) skip(ctx context.Context, i int, why string) (string, error) {
	s, err := l.begin(ctx, i, "", "")
	if err != nil {
		return "", err
	}
	s.note("%s", why)
	return l.end(ctx, s, outSkipped)
}

// render fills a runbook command template for this host. unit is an
// inventory or registry unit name, for the template's {unit}.
func (l *ladder) render(name, unit string) (remote.Command, error) {
	return l.renderFill(name, map[string]string{runbook.UnitPlaceholder: unit})
}

// placeholderRE is what each placeholder's value may look like: whatever
// fills a template is checked again here, at the last moment.
var placeholderRE = map[string]*regexp.Regexp{
	runbook.UnitPlaceholder:    labelRE,
	runbook.QueueIDPlaceholder: queueIDRE,
}

// renderFill fills a template's placeholders from fill.
func (l *ladder) renderFill(name string, fill map[string]string) (remote.Command, error) {
	t, ok := runbook.CommandByName(name)
	if !ok {
		return remote.Command{}, fmt.Errorf("no command %q in the runbook", name)
	}
	argv := t.Systemd
	if l.host.ServiceManager == inventory.SysV {
		argv = t.SysV
	}
	out := make([]string, len(argv))
	for i, a := range argv {
		if re, ok := placeholderRE[a]; ok {
			v := fill[a]
			if !re.MatchString(v) {
				return remote.Command{}, fmt.Errorf("command %s: %q is not a valid %s", name, v, a)
			}
			a = v
		}
		out[i] = a
	}
	return remote.Command{Name: name, Argv: out, Timeout: time.Duration(l.cfg.Ladder.CommandTimeout)}, nil
}

// dialer is the SSH dialer with this configuration's limits.
func (l *ladder) dialer() remote.Dialer {
	c := l.cfg
	return remote.Dialer{
		ConnectTimeout:   time.Duration(c.Ladder.ConnectTimeout),
		HandshakeTimeout: time.Duration(c.Ladder.HandshakeTimeout),
		KillAfter:        time.Duration(c.Ladder.KillAfter),
		OutputLimit:      c.Journal.OutputLimitBytes,
		AgentSocket:      l.e.agentSocket,
	}
}

func (l *ladder) endpoint() remote.Endpoint {
	s := l.host.SSH
	return remote.Endpoint{Address: s.Address, Port: s.Port, User: s.User, KeyFile: s.KeyFile,
		KnownHostsFile: s.KnownHostsFile, Agent: s.Agent}
}

// ssh returns the ladder's connection, dialing when there is none. A host
// key problem is remembered: nothing runs on that host for this ladder.
func (l *ladder) ssh(ctx context.Context) (*remote.Client, error) {
	if l.hostErr != nil {
		return nil, l.hostErr
	}
	if l.client != nil && !l.client.Broken() {
		return l.client, nil
	}
	l.closeClient()
	c, err := l.dialer().Dial(ctx, l.endpoint())
	if err != nil {
		if errors.Is(err, remote.ErrHostKeyChanged) || errors.Is(err, remote.ErrHostKeyUnknown) {
			l.hostErr = err
			reason := ReasonHostKeyChanged
			if errors.Is(err, remote.ErrHostKeyUnknown) {
				reason = ReasonHostKeyUnknown
			}
			level.Error(l.logger).Log("msg", "host key check failed: no command runs on this host", "err", err)
			if derr := l.decide(ctx, reason, err.Error()); derr != nil {
				return nil, derr
			}
		}
		return nil, err
	}
	l.client = c
	return c, nil
}

func (l *ladder) closeClient() {
	if l.client != nil {
		l.client.Close()
		l.client = nil
	}
}

// hostKeyErr reports whether err is a host key problem.
func hostKeyErr(err error) bool {
	return errors.Is(err, remote.ErrHostKeyChanged) || errors.Is(err, remote.ErrHostKeyUnknown)
}

// runSSH runs one command on the host and journals it: before it runs (so
// a crash leaves a trace) and when it ends. In dry-run it journals the
// rendering and returns errDryRun. A connection error returns before any
// command is journaled.
func (l *ladder) runSSH(ctx context.Context, s *stepRec, cmd remote.Command) (remote.Result, error) {
	if cmd.Timeout <= 0 {
		cmd.Timeout = time.Duration(l.cfg.Ladder.CommandTimeout)
	}
	line := cmd.Line(time.Duration(l.cfg.Ladder.KillAfter))
	if cmd.Stdin != nil {
		line += "   # standard input: <secret>"
	}
	if l.dry {
		return remote.Result{ExitCode: -1}, l.recordDry(ctx, s, cmd.Name, targetSSH, line)
	}
	c, err := l.ssh(ctx)
	if err != nil {
		return remote.Result{ExitCode: -1}, err
	}
	return l.record(ctx, s, cmd.Name, targetSSH, line, func() (remote.Result, error) { return c.Run(ctx, cmd) })
}

// runLocal runs an out-of-band command where the remediator runs.
func (l *ladder) runLocal(ctx context.Context, s *stepRec, cmd remote.Command) (remote.Result, error) {
	if cmd.Timeout <= 0 {
		cmd.Timeout = time.Duration(l.cfg.Ladder.OutOfBandTimeout)
	}
	line := remote.Join(cmd.Argv)
	if l.dry {
		return remote.Result{ExitCode: -1}, l.recordDry(ctx, s, cmd.Name, targetLocal, line)
	}
	local := remote.Local{OutputLimit: l.cfg.Journal.OutputLimitBytes}
	return l.record(ctx, s, cmd.Name, targetLocal, line, func() (remote.Result, error) { return local.Run(ctx, cmd) })
}

// recordDry keeps a rendered command with its step, journaled when the
// step ends.
func (l *ladder) recordDry(_ context.Context, s *stepRec, name, target, line string) error {
	now := l.e.now()
	s.Commands = append(s.Commands, journal.Command{IncidentID: l.inc.ID, Name: name, Target: target, Line: line,
		DryRun: true, StartedAt: now, FinishedAt: now, Err: "dry-run: rendered, not run"})
	return errDryRun
}

func (l *ladder) record(ctx context.Context, s *stepRec, name, target, line string, run func() (remote.Result, error)) (remote.Result, error) {
	c := journal.Command{IncidentID: l.inc.ID, StepID: s.ID, Name: name, Target: target, Line: line}
	id, err := l.e.journal.BeginCommand(ctx, c)
	if err != nil {
		return remote.Result{ExitCode: -1}, fmt.Errorf("%w: %w", errStop, err)
	}
	res, runErr := run()
	c.ID = id
	if res.ExitCode >= 0 && runErr == nil {
		code := res.ExitCode
		c.ExitCode = &code
	}
	c.Output, c.Truncated = string(res.Output), res.Truncated
	if runErr != nil {
		c.Err = runErr.Error()
	}
	// The command's end is journaled even when the ladder is being
	// stopped: what happened on the host must not be lost.
	if err := l.e.journal.EndCommand(context.WithoutCancel(ctx), c); err != nil {
		return res, fmt.Errorf("%w: %w", errStop, err)
	}
	s.Commands = append(s.Commands, c)
	if runErr != nil && ctx.Err() != nil {
		return res, errStop
	}
	return res, runErr
}

// stopping reports whether err means the ladder must stop now.
func stopping(err error) bool { return errors.Is(err, errStop) }
