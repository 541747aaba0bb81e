package probe

import (
	"context"
	"fmt"
	"strings"
)

// SMTP probes a mail server: the 220 greeting (multi-line replies
// included), EHLO, STARTTLS when the inventory asks for it (then EHLO again
// over TLS, as RFC 3207 requires), and QUIT. Postfix logs such a session as
// "disconnect from ... ehlo=1 quit=1", which no fail2ban postfix filter
// mode counts.
type SMTP struct {
	s *settings
}

// Probe implements Prober.
func (p *SMTP) Probe(ctx context.Context, t Target, tr *Transcript) Result {
	var r Result
	c, err := connect(ctx, p.s, t, tr, t.TLS, &r)
	if err != nil {
		return r.fail(err)
	}
	defer c.close()
	rep, err := readReply(c)
	if err != nil {
		return r.fail(stageError(ReasonBanner, "greeting", err))
	}
	if rep.code != 220 {
		return r.fail(failf(ReasonBanner, "greeting %d %q, want 220", rep.code, rep.text()))
	}
	ext, err := p.ehlo(c)
	if err != nil {
		return r.fail(err)
	}
	if t.StartTLS {
		if !ext["STARTTLS"] {
			return r.fail(failf(ReasonTLS, "STARTTLS requested by the inventory, not offered by the server"))
		}
		if err := c.writeLine("STARTTLS"); err != nil {
			return r.fail(stageError(ReasonTLS, "STARTTLS", err))
		}
		rep, err := readReply(c)
		if err != nil {
			return r.fail(stageError(ReasonTLS, "STARTTLS", err))
		}
		if rep.code != 220 {
			return r.fail(failf(ReasonTLS, "STARTTLS answered %d %q", rep.code, rep.text()))
		}
		if err := c.startTLS(ctx, t, p.s, &r); err != nil {
			return r.fail(err)
		}
		if _, err := p.ehlo(c); err != nil {
			return r.fail(err)
		}
	}
	if err := quit(c, 221); err != nil {
		return r.fail(err)
	}
	return r.ok()
}

// ehlo greets and returns the extensions the server announces.
func (p *SMTP) ehlo(c *conn) (map[string]bool, error) {
	if err := c.writeLine("EHLO " + p.s.heloName); err != nil {
		return nil, stageError(ReasonProtocol, "EHLO", err)
	}
	rep, err := readReply(c)
	if err != nil {
		return nil, stageError(ReasonProtocol, "EHLO", err)
	}
	if rep.code != 250 {
		return nil, failf(ReasonProtocol, "EHLO answered %d %q", rep.code, rep.text())
	}
	ext := map[string]bool{}
	for _, l := range rep.lines[1:] {
		if f := strings.Fields(l); len(f) > 0 {
			ext[strings.ToUpper(f[0])] = true
		}
	}
	return ext, nil
}

// quit says goodbye, expects the code (221 for SMTP and FTP), and hangs up
// after the server closed.
func quit(c *conn, want int) error {
	if err := c.writeLine("QUIT"); err != nil {
		return stageError(ReasonProtocol, "QUIT", err)
	}
	rep, err := readReply(c)
	if err != nil {
		return stageError(ReasonProtocol, "QUIT", err)
	}
	if rep.code != want {
		return failf(ReasonProtocol, "QUIT answered %d %q, want %d", rep.code, rep.text(), want)
	}
	c.hangUp()
	return nil
}

// reply is an SMTP or FTP reply: a code and its text lines.
type reply struct {
	code  int
	lines []string // text after the code, one per line
}

func (r reply) text() string { return strings.Join(r.lines, " / ") }

// readReply reads one reply, multi-line ones included ("220-..." lines up
// to "220 ..."). FTP allows continuation lines without the code; SMTP
// always repeats it; both are accepted.
func readReply(c *conn) (reply, error) {
	var rep reply
	for i := 0; i < maxLines; i++ {
		line, err := c.readLine()
		if err != nil {
			return rep, err
		}
		code, last, text, ok := parseReplyLine(line)
		switch {
		case i == 0 && !ok:
			return rep, fmt.Errorf("%w: not a reply: %q", errMalformed, line)
		case i == 0:
			rep.code = code
		case !ok || code != rep.code:
			// An FTP continuation line without the code, or one that
			// happens to start with digits.
			rep.lines = append(rep.lines, line)
			continue
		}
		rep.lines = append(rep.lines, text)
		if last {
			return rep, nil
		}
	}
	return rep, fmt.Errorf("%w: reply longer than %d lines", errMalformed, maxLines)
}

// parseReplyLine splits "250-text" or "250 text" (or a bare "250"); last
// is false for the "-" continuation form.
func parseReplyLine(line string) (code int, last bool, text string, ok bool) {
	if len(line) < 3 {
		return 0, false, "", false
	}
	for i := 0; i < 3; i++ {
		d := line[i]
		if d < '0' || d > '9' {
			return 0, false, "", false
		}
		code = code*10 + int(d-'0')
	}
	if code < 100 || code > 599 {
		return 0, false, "", false
	}
	switch {
	case len(line) == 3:
		return code, true, "", true
	case line[3] == ' ':
		return code, true, line[4:], true
	case line[3] == '-':
		return code, false, line[4:], true
	}
	return 0, false, "", false
}

var _ Prober = (*SMTP)(nil)
