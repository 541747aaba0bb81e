package quietnet

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// tcpConn is a *net.TCPConn whose reads and writes are raw; everything else
// (deadlines, CloseWrite, Close) is net's.
type tcpConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

// Wrap wraps a TCP connection; anything else is returned as it is.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &tcpConn{TCPConn: tc, rc: rc}
}

func (c *tcpConn) Read(b []byte) (int, error)  { return read(c.rc, c, b) }
func (c *tcpConn) Write(b []byte) (int, error) { return write(c.rc, c, b) }

// addrs names a connection in errors.
type addrs interface {
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
}

// read is one read(2) into b, waiting in the poller while there is nothing
// to read.
func read(rc syscall.RawConn, a addrs, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := rc.Read(func(fd uintptr) bool {
		n, errno = rawIO(syscall.SYS_READ, fd, b)
		return errno != syscall.EAGAIN
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, opError("read", a, errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// write writes all of b, waiting in the poller while the socket's buffer
// is full.
func write(rc syscall.RawConn, a addrs, b []byte) (int, error) {
	var done int
	var errno syscall.Errno
	err := rc.Write(func(fd uintptr) bool {
		for done < len(b) {
			var n int
			if n, errno = rawIO(syscall.SYS_WRITE, fd, b[done:]); errno != 0 {
				return errno != syscall.EAGAIN
			}
			done += n
		}
		return true
	})
	switch {
	case err != nil:
		return done, err
	case errno != 0:
		return done, opError("write", a, errno)
	}
	return done, nil
}

func opError(op string, a addrs, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: a.LocalAddr(), Addr: a.RemoteAddr(), Err: err}
}

// rawIO is one read(2) or write(2) of b on a non-blocking fd, retried on
// EINTR.
func rawIO(trap, fd uintptr, b []byte) (int, syscall.Errno) {
	for {
		r, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if e != syscall.EINTR {
			if e != 0 {
				return 0, e
			}
			return int(r), 0
		}
	}
}
