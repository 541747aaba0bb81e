package remediator

import (
	"bufio"
	"context"
	"errors"
	"path"
	"strings"
	"time"

	"github.com/mamori-ops/mamori/inventory"
	"github.com/mamori-ops/mamori/runbook"
)

// proc is one line of the runbook's "processes" command (ps -e -o
// stat=,comm=,args=): the runbook's "check with ps that the process runs";
// the matching is done here, nothing of an alert goes into the command.
type proc struct {
	stat, comm, argv0, args string
}

// parseProcesses reads `ps -e -o stat=,comm=,args=`.
func parseProcesses(out string) []proc {
	var ps []proc
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		p := proc{stat: f[0], comm: f[1]}
		if len(f) > 2 {
			p.argv0, p.args = f[2], strings.Join(f[2:], " ")
		}
		ps = append(ps, p)
	}
	return ps
}

// liveProcesses counts the live processes of a canonical service: matched
// by comm (cut to 15 characters by the kernel) or argv[0]'s base name,
// zombies left out.
func liveProcesses(ps []proc, service string) int {
	s, ok := runbook.ServiceByName(service)
	if !ok {
		return 0
	}
	n := 0
	for _, p := range ps {
		if strings.HasPrefix(p.stat, "Z") {
			continue
		}
		base := strings.TrimSuffix(path.Base(p.argv0), ":")
		for _, want := range s.Processes {
			name := want.Name
			comm := name
			if len(comm) > 15 {
				comm = comm[:15]
			}
			if (p.comm == comm || base == name) && (want.PathHas == "" || strings.Contains(p.args, want.PathHas)) {
				n++
				break
			}
		}
	}
	return n
}

// observation is one look at the check.
type observation struct {
	healthy  bool
	rendered bool
	// unreachable is why SSH could not be used to look.
	unreachable error
}

// look checks the incident's check once: over SSH (unit active, process
// present) for a service, and by re-probing from outside where the check is
// a probe; for ping, the re-probe or an SSH login.
func (l *ladder) look(ctx context.Context, s *stepRec) (observation, error) {
	if l.hc.Service == "" {
		return l.lookHost(ctx, s)
	}
	unit := l.host.Unit(l.hc.Service)
	isActive, err := l.render("is_active", unit)
	if err != nil {
		return observation{}, err
	}
	res, err := l.runSSH(ctx, s, isActive)
	switch {
	case errors.Is(err, errDryRun):
		if ps, err := l.render("processes", ""); err == nil {
			_, _ = l.runSSH(ctx, s, ps)
		}
		s.note("would look at unit %s, its processes and re-probe %s", unit, l.hc.ID)
		return observation{rendered: true}, nil
	case stopping(err):
		return observation{}, err
	case err != nil:
		s.note("cannot look over SSH: %v", err)
		return observation{unreachable: err}, nil
	}
	active := res.ExitCode == 0
	s.note("unit %s: %s", unit, stateWord(active, strings.TrimSpace(string(res.Output))))
	ps, err := l.render("processes", "")
	if err != nil {
		return observation{}, err
	}
	pres, err := l.runSSH(ctx, s, ps)
	if stopping(err) {
		return observation{}, err
	}
	n := 0
	if err == nil && pres.ExitCode == 0 {
		n = liveProcesses(parseProcesses(string(pres.Output)), l.hc.Service)
		s.note("%d live %s process(es)", n, l.hc.Service)
	} else {
		s.note("process list unavailable")
		n = -1
	}
	probeOK := true
	if l.hc.Kind == runbook.Probe {
		probeOK = l.reprobe(ctx, s, l.hc)
	}
	return observation{healthy: active && n != 0 && probeOK}, nil
}

func stateWord(active bool, out string) string {
	if out == "" {
		if active {
			return "active"
		}
		return "not active"
	}
	if len(out) > 80 {
		out = out[:80]
	}
	return strings.ReplaceAll(out, "\n", " ")
}

// lookHost checks a host-level check (ping): the re-probe, else an SSH
// login. A host that answers SSH is up, whatever ICMP says.
func (l *ladder) lookHost(ctx context.Context, s *stepRec) (observation, error) {
	if l.dry {
		s.note("would re-probe %s and try an SSH login", l.hc.ID)
		return observation{rendered: true}, nil
	}
	if l.hc.Kind == runbook.Probe && l.e.reprober != nil && l.reprobe(ctx, s, l.hc) {
		return observation{healthy: true}, nil
	}
	_, err := l.ssh(ctx)
	switch {
	case stopping(err):
		return observation{}, err
	case hostKeyErr(err):
		return observation{unreachable: err}, nil
	case err != nil:
		// Not reachable is what this ladder is about: unhealthy.
		s.note("SSH login fails: %v", err)
		return observation{}, nil
	}
	s.note("SSH login works: the host is up")
	return observation{healthy: true}, nil
}

// reprobe runs the check's dialogue from here, within the probe timeout.
func (l *ladder) reprobe(ctx context.Context, s *stepRec, hc inventory.HostCheck) bool {
	if l.e.reprober == nil {
		s.note("no prober: %s not re-probed", hc.ID)
		return true
	}
	pctx, cancel := context.WithTimeout(ctx, time.Duration(l.cfg.Ladder.ProbeTimeout))
	defer cancel()
	r := l.e.reprober.Reprobe(pctx, l.host, hc)
	if r.Success {
		s.note("probe %s: answers", hc.ID)
		return true
	}
	s.note("probe %s: fails (%s)", hc.ID, r.Reason)
	return false
}

// check is the ladder's first look.
func (l *ladder) check(ctx context.Context, i int) (string, error) {
	s, err := l.begin(ctx, i, l.hc.Service, "")
	if err != nil {
		return "", err
	}
	o, err := l.look(ctx, s)
	if err != nil {
		return "", err
	}
	return l.end(ctx, s, l.observed(o))
}

func (l *ladder) observed(o observation) string {
	switch {
	case o.rendered:
		return outRendered
	case hostKeyErr(o.unreachable):
		return outHostKey
	case o.unreachable != nil:
		return outUnreachable
	case o.healthy:
		return outHealthy
	}
	return outUnhealthy
}

// sshConnect tries a fresh SSH login (the SSH ladder's first step).
func (l *ladder) sshConnect(ctx context.Context, i int) (string, error) {
	s, err := l.begin(ctx, i, l.hc.Service, "")
	if err != nil {
		return "", err
	}
	o, err := l.login(ctx, s)
	if err != nil {
		return "", err
	}
	out := l.observed(o)
	if out == outUnreachable {
		out = outUnhealthy
	}
	return l.end(ctx, s, out)
}

func (l *ladder) login(ctx context.Context, s *stepRec) (observation, error) {
	if l.dry {
		s.note("would log in to %s as %s", l.endpoint().Addr(), l.host.SSH.User)
		return observation{rendered: true}, nil
	}
	l.closeClient()
	_, err := l.ssh(ctx)
	switch {
	case stopping(err):
		return observation{}, err
	case err != nil:
		s.note("SSH login to %s fails: %v", l.endpoint().Addr(), err)
		return observation{unreachable: err}, nil
	}
	s.note("SSH login to %s works", l.endpoint().Addr())
	return observation{healthy: true}, nil
}

// verify looks again, with retries, after an action. After a reboot it
// waits up to reboot_wait.
func (l *ladder) verify(ctx context.Context, i int) (string, error) {
	s, err := l.begin(ctx, i, l.hc.Service, "")
	if err != nil {
		return "", err
	}
	lc := l.cfg.Ladder
	attempts, interval := lc.VerifyAttempts, time.Duration(lc.VerifyInterval)
	delay := time.Duration(lc.VerifyDelay)
	if i > 0 && l.rungs[i-1].Action == runbook.ActPowerCycle && interval > 0 {
		// A rebooting host takes minutes: keep looking for reboot_wait.
		attempts = max(attempts, int(time.Duration(lc.RebootWait)/interval))
	}
	sshLadder := false
	for _, r := range l.rungs {
		sshLadder = sshLadder || r.Action == runbook.ActSSHConnect
	}
	if !l.dry && !sleep(ctx, delay) {
		return "", errStop
	}
	for n := 1; n <= attempts; n++ {
		// Only the last attempt's notes are kept: a long wait stays short.
		s.notes = s.notes[:0]
		var o observation
		if sshLadder {
			o, err = l.login(ctx, s)
		} else {
			o, err = l.look(ctx, s)
		}
		if err != nil {
			return "", err
		}
		switch out := l.observed(o); out {
		case outHealthy, outRendered, outHostKey:
			s.note("attempt %d of %d", n, attempts)
			return l.end(ctx, s, out)
		}
		if n < attempts && !sleep(ctx, interval) {
			return "", errStop
		}
	}
	s.note("not recovered after %d attempt(s)", attempts)
	return l.end(ctx, s, outUnhealthy)
}

// scopeURL decides the url check's ladder: the URL answers again
// (healthy), only the URL fails while the site answers (a person finds the
// cause, no restart), or the whole site fails (restart httpd).
func (l *ladder) scopeURL(ctx context.Context, i int) (string, error) {
	s, err := l.begin(ctx, i, l.hc.Service, "")
	if err != nil {
		return "", err
	}
	if l.dry {
		s.note("would re-probe %s and the host's other web checks", l.hc.Override.URL)
		return l.end(ctx, s, outRendered)
	}
	if l.e.reprober != nil {
		if l.reprobe(ctx, s, l.hc) {
			return l.end(ctx, s, outHealthy)
		}
		others := 0
		for _, hc := range l.host.CheckList() {
			if hc.ID == l.hc.ID || hc.Protocol != runbook.HTTP || hc.Service != l.hc.Service {
				continue
			}
			others++
			if l.reprobe(ctx, s, hc) {
				s.note("the site answers on %s: only the URL fails", hc.ID)
				return l.end(ctx, s, outURLOnly)
			}
		}
		if others > 0 {
			s.note("no page of the site answers")
			return l.end(ctx, s, outSiteDown)
		}
	}
	// No other web check to compare with: ask the host whether the web
	// server runs at all.
	o, err := l.look(ctx, s)
	if err != nil {
		return "", err
	}
	switch {
	case hostKeyErr(o.unreachable):
		return l.end(ctx, s, outHostKey)
	case o.unreachable != nil:
		return l.end(ctx, s, outURLOnly)
	case o.healthy:
		s.note("the web server runs: only the URL fails")
		return l.end(ctx, s, outURLOnly)
	}
	return l.end(ctx, s, outSiteDown)
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
