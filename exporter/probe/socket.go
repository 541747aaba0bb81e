package probe

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// quietConn reads and writes a probe's TCP socket with raw system calls
// through syscall.RawConn, waiting in the poller as net does (deadlines
// included). The socket is non-blocking, so a read or write never sleeps
// in the kernel; leaving out the scheduler's system-call bookkeeping
// (entersyscall) spares the runtime's monitor thread, sysmon, a wake-up
// and a millisecond of 20 µs polling at nearly every call of a process that
// mostly waits for servers: a sixth of a mail probe's CPU, measured.
type quietConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

// quiet wraps a TCP connection; anything else is returned as it is.
func quiet(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &quietConn{TCPConn: tc, rc: rc}
}

func (c *quietConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		n, errno = rawIO(syscall.SYS_READ, fd, b)
		return errno != syscall.EAGAIN
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, c.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *quietConn) Write(b []byte) (int, error) {
	var done int
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
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
		return done, c.opError("write", errno)
	}
	return done, nil
}

func (c *quietConn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errno}
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
