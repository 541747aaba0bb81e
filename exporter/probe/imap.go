package probe

import (
	"context"
	"strconv"
	"strings"
)

// IMAP probes a mailbox server: the "* OK" greeting, CAPABILITY,
// STARTTLS when the inventory asks for it (then CAPABILITY again, as RFC
// 3501 recommends), and LOGOUT. No login is attempted; Dovecot logs the
// session as "Disconnected: Logged out", which its default fail2ban filter
// does not count.
type IMAP struct {
	s *settings
}

// Probe implements Prober.
func (p *IMAP) Probe(ctx context.Context, t Target, tr *Transcript) Result {
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
	if !imapGreetingOK(greeting) {
		return r.fail(failf(ReasonBanner, "greeting %q, want * OK", greeting))
	}
	// Commands are pipelined (RFC 3501 5.5): CAPABILITY with the command
	// that follows it, in one write; STARTTLS always ends a batch.
	s := imapSession{c: c}
	if t.StartTLS {
		tags, err := s.send("CAPABILITY", "STARTTLS")
		if err != nil {
			return r.fail(stageError(ReasonProtocol, "CAPABILITY", err))
		}
		caps, err := s.capability(tags[0])
		if err != nil {
			return r.fail(err)
		}
		if !caps["STARTTLS"] {
			return r.fail(failf(ReasonTLS, "STARTTLS requested by the inventory, not offered by the server"))
		}
		if _, err := s.answer(tags[1], "STARTTLS", ReasonTLS); err != nil {
			return r.fail(err)
		}
		if err := c.startTLS(ctx, t, p.s, &r); err != nil {
			return r.fail(err)
		}
	}
	tags, err := s.send("CAPABILITY", "LOGOUT")
	if err != nil {
		return r.fail(stageError(ReasonProtocol, "CAPABILITY", err))
	}
	if _, err := s.capability(tags[0]); err != nil {
		return r.fail(err)
	}
	if _, err := s.answer(tags[1], "LOGOUT", ReasonProtocol); err != nil {
		return r.fail(err)
	}
	c.hangUp()
	return r.ok()
}

// imapGreetingOK accepts "* OK" and "* PREAUTH"; "* BYE" is a refusal.
func imapGreetingOK(line string) bool {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "*" {
		return false
	}
	s := strings.ToUpper(f[1])
	return s == "OK" || s == "PREAUTH"
}

// imapSession numbers the commands of one connection.
type imapSession struct {
	c   *conn
	tag int
}

// send writes the commands, tagged, in one write, and returns their tags.
func (s *imapSession) send(cmds ...string) ([]string, error) {
	tags := make([]string, len(cmds))
	lines := make([]string, len(cmds))
	for i, cmd := range cmds {
		s.tag++
		tags[i] = "m" + strconv.Itoa(s.tag)
		lines[i] = tags[i] + " " + cmd
	}
	return tags, s.c.writeLines(lines...)
}

// answer reads up to the tagged answer of cmd, which must be OK, and
// returns the untagged lines before it; failures count as stage.
func (s *imapSession) answer(tag, cmd string, stage Reason) ([]string, error) {
	var untagged []string
	for i := 0; i < maxLines; i++ {
		line, err := s.c.readLine()
		if err != nil {
			return nil, stageError(stage, cmd, err)
		}
		if rest, ok := strings.CutPrefix(line, tag+" "); ok {
			if status, _, _ := strings.Cut(rest, " "); !strings.EqualFold(status, "OK") {
				return nil, failf(stage, "%s answered %q", cmd, line)
			}
			return untagged, nil
		}
		untagged = append(untagged, line)
	}
	return nil, failf(stage, "%s: no tagged answer within %d lines", cmd, maxLines)
}

// capability reads the answer to CAPABILITY.
func (s *imapSession) capability(tag string) (map[string]bool, error) {
	lines, err := s.answer(tag, "CAPABILITY", ReasonProtocol)
	if err != nil {
		return nil, err
	}
	caps := parseIMAPCapabilities(lines)
	if !caps["IMAP4REV1"] && !caps["IMAP4REV2"] {
		return nil, failf(ReasonProtocol, "CAPABILITY names neither IMAP4rev1 nor IMAP4rev2")
	}
	return caps, nil
}

// parseIMAPCapabilities reads the "* CAPABILITY ..." lines, upper-cased.
func parseIMAPCapabilities(lines []string) map[string]bool {
	caps := map[string]bool{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "*" || !strings.EqualFold(f[1], "CAPABILITY") {
			continue
		}
		for _, c := range f[2:] {
			caps[strings.ToUpper(c)] = true
		}
	}
	return caps
}

var _ Prober = (*IMAP)(nil)
