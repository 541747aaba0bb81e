package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
)

// MySQL probes a MySQL or MariaDB server: it reads the greeting packet
// (protocol version 10, server version). A server that refuses the prober
// sends an error packet instead (1129 host blocked, 1130 host not allowed,
// 1040 too many connections): that is reason "blocked".
//
// Hanging up after the greeting is a handshake error to the server, and
// max_connect_errors (100 by default) of them in a row block the prober's
// address until FLUSH HOSTS: the classic health-check lockout. So the
// probe finishes the handshake as Config.MySQLUser with an empty password
// and sends COM_QUIT, as HAProxy's mysql-check does. Create that account
// without a password or privileges (CREATE USER 'mamori_probe'@'PROBER')
// and the server logs nothing; without the account the server answers
// "Access denied" (1045), which does not count towards max_connect_errors
// and still proves the server works. Either answer is a success.
type MySQL struct {
	s *settings
}

// MySQL capability flags used here.
const (
	mysqlLongPassword     = 0x00000001
	mysqlProtocol41       = 0x00000200
	mysqlSecureConnection = 0x00008000
	mysqlPluginAuth       = 0x00080000
)

// maxMySQLPacket bounds a packet read during the handshake.
const maxMySQLPacket = 64 << 10

// Probe implements Prober.
func (p *MySQL) Probe(ctx context.Context, t Target, tr *Transcript) Result {
	var r Result
	c, err := dial(ctx, p.s, t, tr)
	if err != nil {
		return r.fail(err)
	}
	defer c.close()
	seq, payload, err := readMySQLPacket(c)
	if err != nil {
		return r.fail(stageError(ReasonBanner, "greeting", err))
	}
	g, err := parseMySQLGreeting(payload)
	if err != nil {
		tr.Printf("greeting: %v", err)
		return r.fail(err)
	}
	if tr != nil {
		tr.Received(fmt.Sprintf("greeting: protocol 10, server %q, connection %d, auth plugin %q", g.version, g.connID, g.plugin))
	}
	if p.s.MySQLUser == "" || g.caps&mysqlProtocol41 == 0 {
		tr.Printf("hanging up after the greeting")
		return r.ok()
	}
	p.logOut(c, g, seq)
	return r.ok()
}

// logOut finishes the handshake and quits, best effort: the check already
// succeeded with the greeting.
func (p *MySQL) logOut(c *conn, g mysqlGreeting, seq byte) {
	caps := uint32(mysqlLongPassword | mysqlProtocol41 | mysqlSecureConnection)
	if g.caps&mysqlPluginAuth != 0 {
		caps |= mysqlPluginAuth
	}
	resp := binary.LittleEndian.AppendUint32(nil, caps)
	resp = binary.LittleEndian.AppendUint32(resp, 1<<24) // max packet size
	resp = append(resp, 33)                              // utf8_general_ci
	resp = append(resp, make([]byte, 23)...)
	resp = append(resp, p.s.MySQLUser...)
	resp = append(resp, 0, 0) // user's NUL, empty auth response
	if caps&mysqlPluginAuth != 0 {
		resp = append(resp, g.plugin...)
		resp = append(resp, 0)
	}
	if c.tr != nil {
		c.tr.Sent(fmt.Sprintf("handshake response: user %q, empty password", p.s.MySQLUser))
	}
	seq++
	if err := c.write(mysqlPacket(seq, resp)); err != nil {
		c.tr.Printf("handshake response: %v", err)
		return
	}
	for switches := 0; ; switches++ {
		s, answer, err := readMySQLPacket(c)
		if err != nil {
			c.tr.Printf("handshake answer: %v", err)
			return
		}
		seq = s
		switch {
		case len(answer) > 0 && answer[0] == 0x00:
			c.tr.Received("OK")
			c.tr.Sent("COM_QUIT")
			if err := c.write(mysqlPacket(0, []byte{0x01})); err == nil {
				c.hangUp()
			}
			return
		case len(answer) > 0 && answer[0] == 0xff:
			e := parseMySQLError(answer)
			c.tr.Received(e.Error())
			c.hangUp() // the server closes after an error
			return
		case len(answer) > 0 && answer[0] == 0xfe && switches == 0:
			// Auth switch request: answer with an empty password once.
			c.tr.Received("auth switch request")
			c.tr.Sent("empty auth response")
			seq++
			if err := c.write(mysqlPacket(seq, nil)); err != nil {
				return
			}
		default:
			c.tr.Printf("handshake answer 0x%x: hanging up", answer[:min(1, len(answer))])
			return
		}
	}
}

// readMySQLPacket reads one packet: 3-byte length, sequence id, payload.
func readMySQLPacket(c *conn) (byte, []byte, error) {
	var hdr [4]byte
	if err := c.readFull(hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	if n > maxMySQLPacket {
		return 0, nil, fmt.Errorf("%w: packet of %d bytes", errMalformed, n)
	}
	payload := make([]byte, n)
	if err := c.readFull(payload); err != nil {
		return 0, nil, err
	}
	return hdr[3], payload, nil
}

// mysqlPacket frames a payload.
func mysqlPacket(seq byte, payload []byte) []byte {
	n := len(payload)
	pkt := []byte{byte(n), byte(n >> 8), byte(n >> 16), seq}
	return append(pkt, payload...)
}

// mysqlGreeting is what the probe needs of the initial handshake packet.
type mysqlGreeting struct {
	version string
	connID  uint32
	caps    uint32
	plugin  string
}

// mysqlError is an ERR packet.
type mysqlError struct {
	code  uint16
	state string
	msg   string
}

func (e *mysqlError) Error() string {
	if e.state != "" {
		return fmt.Sprintf("server error %d (%s): %s", e.code, e.state, e.msg)
	}
	return fmt.Sprintf("server error %d: %s", e.code, e.msg)
}

// parseMySQLGreeting parses the initial handshake packet (protocol 10); an
// error packet in its place is reason blocked.
func parseMySQLGreeting(b []byte) (mysqlGreeting, error) {
	var g mysqlGreeting
	if len(b) == 0 {
		return g, failf(ReasonBanner, "empty greeting")
	}
	if b[0] == 0xff {
		return g, &probeError{reason: ReasonBlocked, err: parseMySQLError(b)}
	}
	if b[0] != 10 {
		return g, failf(ReasonBanner, "protocol version %d, want 10", b[0])
	}
	b = b[1:]
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return g, failf(ReasonBanner, "greeting without a server version")
	}
	g.version, b = string(b[:i]), b[i+1:]
	// connection id 4, auth data 8, filler 1, capabilities (low) 2
	if len(b) < 15 {
		return g, failf(ReasonBanner, "greeting truncated after the server version")
	}
	g.connID = binary.LittleEndian.Uint32(b)
	g.caps = uint32(binary.LittleEndian.Uint16(b[13:]))
	b = b[15:]
	// charset 1, status 2, capabilities (high) 2, auth data length 1, reserved 10
	if len(b) < 16 {
		return g, nil
	}
	g.caps |= uint32(binary.LittleEndian.Uint16(b[3:])) << 16
	authLen := int(b[5])
	b = b[16:]
	if g.caps&mysqlPluginAuth != 0 {
		skip := max(13, authLen-8)
		if len(b) < skip {
			return g, failf(ReasonBanner, "greeting truncated in the auth data")
		}
		b = b[skip:]
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		g.plugin = string(b)
	}
	return g, nil
}

// parseMySQLError parses an ERR packet; before the handshake it carries no
// SQL state, after it "#" and five characters.
func parseMySQLError(b []byte) *mysqlError {
	e := &mysqlError{}
	if len(b) < 3 {
		e.msg = "truncated error packet"
		return e
	}
	e.code = binary.LittleEndian.Uint16(b[1:])
	msg := b[3:]
	if len(msg) >= 6 && msg[0] == '#' {
		e.state, msg = string(msg[1:6]), msg[6:]
	}
	e.msg = string(msg)
	return e
}

var _ Prober = (*MySQL)(nil)
