package probe

import "context"

// FTP probes a file transfer server: the 220 greeting (multi-line ones
// included) and QUIT, no login. vsftpd and ProFTPD log nothing that a
// fail2ban filter counts for such a session.
type FTP struct {
	s *settings
}

// Probe implements Prober.
func (p *FTP) Probe(ctx context.Context, t Target, tr *Transcript) Result {
	var r Result
	c, err := dial(ctx, p.s, t, tr)
	if err != nil {
		return r.fail(err)
	}
	defer c.close()
	rep, err := readReply(c)
	if err != nil {
		return r.fail(stageError(ReasonBanner, "greeting", err))
	}
	if rep.code != 220 {
		// 120 (ready in n minutes) and 421 (too many users) are not ready.
		return r.fail(failf(ReasonBanner, "greeting %d %q, want 220", rep.code, rep.text()))
	}
	if err := quit(c, 221); err != nil {
		return r.fail(err)
	}
	return r.ok()
}

var _ Prober = (*FTP)(nil)
