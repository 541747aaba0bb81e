package probe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/mamori-ops/mamori/internal/quietnet"
)

// TCP is the layer every dialogue but ICMP runs on: connect within the
// deadline, read and write CRLF lines, and hang up the way a well-behaved
// client does.

const (
	// maxLine bounds one line of a server's answer (the bufio size).
	maxLine = 4096
	// maxLines bounds a multi-line answer.
	maxLines = 100
	// drainWait is how long a finished dialogue waits for the server to
	// close first, so that the server sees an orderly end and the prober is
	// left without TIME_WAIT sockets.
	drainWait = time.Second
	// maxDrain bounds what is read while waiting for that close.
	maxDrain = 64 << 10
)

// conn is one TCP connection of a dialogue, possibly upgraded to TLS.
type conn struct {
	raw  net.Conn // the TCP connection
	c    net.Conn // raw, or the TLS connection over it
	br   *bufio.Reader
	tr   *Transcript
	s    *settings
	dl   time.Time   // the probe's deadline; zero for none
	stop func() bool // unhooks the context watcher
}

// dial connects to t within ctx's deadline, which it sets on the socket; a
// cancelled ctx interrupts any read or write in progress.
func dial(ctx context.Context, s *settings, t Target, tr *Transcript) (*conn, error) {
	addr := t.addr()
	if tr != nil {
		tr.Printf("connect %s", addr)
	}
	// The deadline, not ctx, bounds the connect: a dial with a cancellable
	// ctx costs a watcher per connection; cancellation is wired below.
	dl, _ := ctx.Deadline()
	if err := ctx.Err(); err != nil {
		return nil, &probeError{reason: ReasonTimeout, err: err}
	}
	raw, err := dialTCP(s, t.Host, t.Port, dl)
	if err != nil {
		r, ok := networkReason(err)
		if !ok {
			r = ReasonUnreachable
		}
		tr.Printf("connect failed: %v", err)
		return nil, &probeError{reason: r, err: err}
	}
	c := &conn{raw: raw, c: raw, br: s.reader(raw), tr: tr, s: s}
	if dl, ok := ctx.Deadline(); ok {
		c.dl = dl
		_ = raw.SetDeadline(dl)
	}
	c.stop = context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	if tr != nil {
		tr.Printf("connected %s -> %s", raw.LocalAddr(), raw.RemoteAddr())
	}
	return c, nil
}

// connect dials the target and, for an implicit-TLS service (IMAPS, SMTPS,
// HTTPS, ...), does the TLS handshake before the dialogue begins.
func connect(ctx context.Context, s *settings, t Target, tr *Transcript, implicitTLS bool, r *Result) (*conn, error) {
	c, err := dial(ctx, s, t, tr)
	if err != nil {
		return nil, err
	}
	if implicitTLS {
		if err := c.startTLS(ctx, t, s, r); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// dialTCP connects to host (an IP address, or a name for the url check)
// and port, with raw system calls where it can (see package quietnet).
func dialTCP(s *settings, host string, port int, deadline time.Time) (net.Conn, error) {
	if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() == "" {
		return s.dialer.Dial(netip.AddrPortFrom(ip, uint16(port)), deadline)
	}
	// No keep-alive: a probe's connection lives for a moment.
	d := net.Dialer{KeepAlive: -1, Deadline: deadline}
	if s.source != nil {
		d.LocalAddr = &net.TCPAddr{IP: s.source}
	}
	c, err := d.Dial("tcp", net.JoinHostPort(host, itoa(port)))
	if err != nil {
		return nil, err
	}
	return quietnet.Wrap(c), nil
}

// close hangs up at once; it may be called more than once.
func (c *conn) close() {
	if c.raw == nil {
		return
	}
	c.stop()
	_ = c.raw.Close()
	c.raw, c.c = nil, nil
	c.s.release(c.br)
	c.br = nil
}

// hangUp ends a dialogue whose goodbye (QUIT, LOGOUT, SSH disconnect) was
// sent: it waits briefly for the server to close and reads what is left,
// then closes. The server closes first, so the end is an orderly FIN
// exchange, never a reset, and the TIME_WAIT socket stays on the server.
func (c *conn) hangUp() {
	defer c.close()
	wait := time.Now().Add(drainWait)
	if !c.dl.IsZero() && c.dl.Before(wait) {
		wait = c.dl
	}
	_ = c.raw.SetReadDeadline(wait)
	n, err := io.Copy(io.Discard, io.LimitReader(c.br, maxDrain))
	switch {
	case err == nil && n < maxDrain:
		c.tr.Printf("closed by the server")
	case err != nil:
		c.tr.Printf("hang up: %v", err)
	}
}

// writeLine sends s with CRLF, whatever the platform.
func (c *conn) writeLine(s string) error {
	c.tr.Sent(s)
	_, err := io.WriteString(c.c, s+"\r\n")
	return err
}

// writeLines sends lines, each with CRLF, in one write (pipelining).
func (c *conn) writeLines(lines ...string) error {
	var b []byte
	for _, l := range lines {
		c.tr.Sent(l)
		b = append(append(b, l...), '\r', '\n')
	}
	_, err := c.c.Write(b)
	return err
}

// write sends raw bytes (binary protocols).
func (c *conn) write(b []byte) error {
	_, err := c.c.Write(b)
	return err
}

var (
	// errLongLine is a line longer than maxLine.
	errLongLine = errors.New("line too long")
	// errMalformed is an answer the protocol does not allow; it counts as
	// the reason of the dialogue's stage (banner for a greeting).
	errMalformed = errors.New("malformed answer")
)

// readLine reads one line, CRLF or LF terminated, without its terminator.
func (c *conn) readLine() (string, error) {
	b, err := c.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("%w (more than %d bytes)", errLongLine, maxLine)
	}
	if err != nil {
		if len(b) > 0 {
			c.tr.Received(string(b))
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
		}
		return "", err
	}
	s := string(bytes.TrimRight(b, "\r\n"))
	c.tr.Received(s)
	return s, nil
}

// readFull reads exactly len(b) bytes (binary protocols).
func (c *conn) readFull(b []byte) error {
	_, err := io.ReadFull(c.br, b)
	return err
}

// earliest is the earlier of a deadline and t; a zero deadline is none.
func earliest(dl, t time.Time) time.Time {
	if !dl.IsZero() && dl.Before(t) {
		return dl
	}
	return t
}
