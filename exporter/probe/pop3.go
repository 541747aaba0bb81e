package probe

import (
	"context"
	"strings"
)

// POP3 probes a mailbox server: the "+OK" greeting, STLS when the
// inventory asks for it (RFC 2595), and QUIT. No login is attempted.
type POP3 struct {
	s *settings
}

// Probe implements Prober.
func (p *POP3) Probe(ctx context.Context, t Target, tr *Transcript) Result {
	var r Result
	c, err := connect(ctx, p.s, t, tr, t.TLS, &r)
	if err != nil {
		return r.fail(err)
	}
	defer c.close()
	greeting, err := c.readLine()
	if err != nil {
		return r.fail(stageError(ReasonBanner, "greeting", err))
	}
	if !pop3OK(greeting) {
		return r.fail(failf(ReasonBanner, "greeting %q, want +OK", greeting))
	}
	if t.StartTLS {
		if err := pop3Command(c, "STLS", ReasonTLS); err != nil {
			return r.fail(err)
		}
		if err := c.startTLS(ctx, t, p.s, &r); err != nil {
			return r.fail(err)
		}
	}
	if err := pop3Command(c, "QUIT", ReasonProtocol); err != nil {
		return r.fail(err)
	}
	c.hangUp()
	return r.ok()
}

// pop3Command sends cmd and expects +OK; failures count as stage.
func pop3Command(c *conn, cmd string, stage Reason) error {
	if err := c.writeLine(cmd); err != nil {
		return stageError(stage, cmd, err)
	}
	line, err := c.readLine()
	if err != nil {
		return stageError(stage, cmd, err)
	}
	if !pop3OK(line) {
		return failf(stage, "%s answered %q", cmd, line)
	}
	return nil
}

func pop3OK(line string) bool { return line == "+OK" || strings.HasPrefix(line, "+OK ") }

var _ Prober = (*POP3)(nil)
