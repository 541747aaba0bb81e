package quietnet

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"
)

// fileConn is a socket a Dialer connected, as an *os.File (which gives it
// the poller, deadlines included), read and written raw.
type fileConn struct {
	*os.File
	rc     syscall.RawConn
	remote *net.TCPAddr
	reaper *reaper
	closed atomic.Bool
}

// Read and Write fail with net.ErrClosed once Close was called, also when
// they were blocked across it (shutdown(2) wakes them).
func (c *fileConn) Read(b []byte) (int, error) {
	n, err := read(c.rc, c, b)
	return n, c.afterClose("read", err)
}

func (c *fileConn) Write(b []byte) (int, error) {
	n, err := write(c.rc, c, b)
	return n, c.afterClose("write", err)
}

func (c *fileConn) afterClose(op string, err error) error {
	if c.closed.Load() {
		return opError(op, c, net.ErrClosed)
	}
	return err
}

// Close shuts the connection down, which ends it for both sides and wakes
// any read or write in progress, and leaves the descriptor to the reaper.
func (c *fileConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return opError("close", c, net.ErrClosed)
	}
	_ = c.rc.Control(func(fd uintptr) {
		_, _, _ = syscall.RawSyscall(syscall.SYS_SHUTDOWN, fd, syscall.SHUT_RDWR, 0)
	})
	c.reaper.close(c.File)
	return nil
}

func (c *fileConn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr asks the kernel (getsockname); nil once the descriptor is
// closed.
func (c *fileConn) LocalAddr() net.Addr {
	var local *net.TCPAddr
	_ = c.rc.Control(func(fd uintptr) {
		if sa, e := sockName(syscall.SYS_GETSOCKNAME, fd); e == 0 {
			local = tcpAddr(&sa)
		}
	})
	if local == nil {
		return nil
	}
	return local
}
