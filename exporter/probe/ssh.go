package probe

import (
	"context"
	"encoding/binary"
	"strings"
	"time"
)

// SSH probes an SSH server without logging in: it sends its own
// identification string (RFC 4253 4.2) followed by SSH_MSG_DISCONNECT "by
// application", reads the server's "SSH-2.0-" line, and waits for the
// server to close. OpenSSH 9.2 logs that session as
//
//	Received disconnect from ADDR port N:11: mamori probe [preauth]
//	Disconnected from ADDR port N [preauth]
//
// which the default ("normal") mode of fail2ban's sshd filter does not
// count. A client that connects and sends nothing makes sshd log
// "kex_exchange_identification: ..." (older releases: "Did not receive
// identification string"), and one that closes with unread data makes it
// log "Connection reset"; both count in the filter's ddos mode. The ddos
// and aggressive modes count every pre-authentication disconnect, a polite
// one included: exempt the prober's address (ignoreip) on hosts that use
// them.
type SSH struct {
	s *settings
}

// sshIdent is the identification string the prober sends.
const sshIdent = "SSH-2.0-mamori_probe"

const (
	// maxPreIdent bounds the lines a server may send before its
	// identification (RFC 4253 allows some).
	maxPreIdent = 20
	// preIdentWait is how long the identification may follow such lines: a
	// server speaking another protocol (an FTP or SMTP greeting on the SSH
	// port) then waits for a command, and is not SSH.
	preIdentWait = time.Second
)

// Probe implements Prober.
func (p *SSH) Probe(ctx context.Context, t Target, tr *Transcript) Result {
	var r Result
	c, err := dial(ctx, p.s, t, tr)
	if err != nil {
		return r.fail(err)
	}
	defer c.close()
	// Our identification and the goodbye go in one write: the server reads
	// them in order (RFC 4253 lets a client send packets right after its
	// identification) and closes once it has sent its own.
	c.tr.Sent(sshIdent)
	c.tr.Sent(`SSH_MSG_DISCONNECT 11 (by application) "mamori probe"`)
	if err := c.write(append([]byte(sshIdent+"\r\n"), sshDisconnect(11, "mamori probe")...)); err != nil {
		return r.fail(stageError(ReasonBanner, "identification", err))
	}
	var ident, notSSH string
	for i := 0; i < maxPreIdent; i++ {
		line, err := c.readLine()
		if err != nil {
			if notSSH != "" {
				return r.fail(failf(ReasonBanner, "%q and no SSH identification", notSSH))
			}
			return r.fail(stageError(ReasonBanner, "identification", err))
		}
		if strings.HasPrefix(line, "SSH-") {
			ident = line
			break
		}
		if i == 0 {
			_ = c.raw.SetReadDeadline(earliest(c.dl, time.Now().Add(preIdentWait)))
			notSSH = line
		}
	}
	if ident == "" {
		return r.fail(failf(ReasonBanner, "no SSH identification in the first %d lines", maxPreIdent))
	}
	if strings.HasPrefix(ident, sshIdent+" ") || ident == sshIdent {
		// A line-based server (IMAP, SMTP) quoting our identification back.
		return r.fail(failf(ReasonBanner, "the server echoed our identification: %q", ident))
	}
	if !strings.HasPrefix(ident, "SSH-2.0-") && !strings.HasPrefix(ident, "SSH-1.99-") {
		return r.fail(failf(ReasonBanner, "identification %q does not speak SSH 2.0", ident))
	}
	_ = c.raw.SetReadDeadline(c.dl)
	c.hangUp()
	return r.ok()
}

// sshDisconnect builds an unencrypted SSH_MSG_DISCONNECT binary packet
// (RFC 4253 6 and 11.1), as sent before key exchange.
func sshDisconnect(reason uint32, description string) []byte {
	const msgDisconnect = 1
	payload := []byte{msgDisconnect}
	payload = binary.BigEndian.AppendUint32(payload, reason)
	payload = binary.BigEndian.AppendUint32(payload, uint32(len(description)))
	payload = append(payload, description...)
	payload = binary.BigEndian.AppendUint32(payload, 0) // language tag ""
	// packet_length(4) padding_length(1) payload padding: a multiple of 8,
	// with at least 4 bytes of padding.
	padding := 8 - (5+len(payload))%8
	if padding < 4 {
		padding += 8
	}
	pkt := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)+padding))
	pkt = append(pkt, byte(padding))
	pkt = append(pkt, payload...)
	return append(pkt, make([]byte, padding)...)
}

var _ Prober = (*SSH)(nil)
