package quietnet

import "net"

// Listener wraps l so that the TCP connections it accepts read and write
// raw (an HTTP server's reads and writes would otherwise wake sysmon as
// the probes' own did).
func Listener(l net.Listener) net.Listener { return listener{l} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
