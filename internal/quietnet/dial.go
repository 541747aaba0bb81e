package quietnet

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// Dialer connects TCP sockets with raw system calls. Its zero value is
// ready; it must not be copied once used.
type Dialer struct {
	// Source is the local address to connect from; the zero Addr lets the
	// kernel choose.
	Source netip.Addr
	reaper reaper
}

// Dial connects to ap (an address without a zone), giving up at deadline
// unless it is zero. The socket, its options and the connect are raw
// system calls; the poller waits for the connect to finish, as
// net.Dialer's does. Failures are *net.OpError, as net.Dialer's are,
// wrapping an *os.SyscallError (errors.Is finds syscall.ECONNREFUSED in
// it) or os.ErrDeadlineExceeded (a net.Error whose Timeout is true).
func (d *Dialer) Dial(ap netip.AddrPort, deadline time.Time) (net.Conn, error) {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	remote := net.TCPAddrFromAddrPort(ap)
	if !ap.Addr().IsValid() || ap.Addr().Zone() != "" {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: remote, Err: errors.New("quietnet: an address without a zone is needed")}
	}
	family := syscall.AF_INET6
	if ap.Addr().Is4() {
		family = syscall.AF_INET
	}
	fd, _, errno := syscall.RawSyscall(syscall.SYS_SOCKET, uintptr(family),
		syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if errno != 0 {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: remote, Err: os.NewSyscallError("socket", errno)}
	}
	// The descriptor is non-blocking, so package os registers it with the
	// poller, and Close unregisters it.
	f := os.NewFile(fd, "tcp:"+ap.String())
	rc, err := f.SyscallConn()
	if err == nil {
		err = connect(f, rc, ap, d.Source, deadline)
	}
	if err != nil {
		_ = f.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: remote, Err: err}
	}
	return &fileConn{File: f, rc: rc, remote: remote, reaper: &d.reaper}, nil
}

// connect sets TCP_NODELAY, binds to source if it is valid, and connects,
// waiting in the poller until deadline for the handshake to end.
func connect(f *os.File, rc syscall.RawConn, ap netip.AddrPort, source netip.Addr, deadline time.Time) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		// A probe writes and waits for the answer; Nagle's algorithm could
		// only hold back a second write until the first is acknowledged.
		one := int32(1)
		if _, _, e := syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY,
			uintptr(unsafe.Pointer(&one)), unsafe.Sizeof(one), 0); e != 0 {
			err = os.NewSyscallError("setsockopt", e)
			return
		}
		if source.IsValid() {
			sa, n := rawSockaddr(netip.AddrPortFrom(source.Unmap(), 0))
			if _, _, e := syscall.RawSyscall(syscall.SYS_BIND, fd, uintptr(sa), n); e != 0 {
				err = os.NewSyscallError("bind", e)
				return
			}
		}
		sa, n := rawSockaddr(ap)
		switch _, _, e := syscall.RawSyscall(syscall.SYS_CONNECT, fd, uintptr(sa), n); e {
		case 0, syscall.EISCONN:
		case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
			err = syscall.EINPROGRESS
		default:
			err = os.NewSyscallError("connect", e)
		}
	})
	switch {
	case cerr != nil:
		return cerr
	case err != syscall.EINPROGRESS:
		return err
	}
	if !deadline.IsZero() {
		if err := f.SetWriteDeadline(deadline); err != nil {
			return err
		}
	}
	// Writable means the handshake ended: SO_ERROR tells how.
	var errno syscall.Errno
	if err := rc.Write(func(fd uintptr) bool {
		errno = handshakeEnd(fd)
		return errno != syscall.EINPROGRESS
	}); err != nil {
		return err
	}
	if errno != 0 {
		return os.NewSyscallError("connect", errno)
	}
	return f.SetWriteDeadline(time.Time{})
}

// handshakeEnd is the outcome of a non-blocking connect on fd: 0 when
// connected, EINPROGRESS while it is not over, or the error it ended with.
func handshakeEnd(fd uintptr) syscall.Errno {
	var v int32
	n := uint32(unsafe.Sizeof(v))
	if _, _, e := syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, fd, syscall.SOL_SOCKET, syscall.SO_ERROR,
		uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)), 0); e != 0 {
		return e
	}
	switch e := syscall.Errno(v); e {
	case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
		return syscall.EINPROGRESS
	case syscall.EISCONN:
		return 0
	case 0:
		// No error yet: connected, unless the poller woke us before the
		// handshake ended; net waits again unless getpeername succeeds.
		if _, e := sockName(syscall.SYS_GETPEERNAME, fd); e != 0 {
			return syscall.EINPROGRESS
		}
		return 0
	default:
		return e
	}
}
