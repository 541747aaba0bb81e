package quietnet

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// rawSockaddr is ap as a struct sockaddr_in or sockaddr_in6, and its size.
func rawSockaddr(ap netip.AddrPort) (unsafe.Pointer, uintptr) {
	if ap.Addr().Is4() {
		sa := &syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: ap.Addr().As4()}
		putPort(&sa.Port, ap.Port())
		return unsafe.Pointer(sa), unsafe.Sizeof(*sa)
	}
	sa := &syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: ap.Addr().As16()}
	putPort(&sa.Port, ap.Port())
	return unsafe.Pointer(sa), unsafe.Sizeof(*sa)
}

// sockName is getsockname(2) or getpeername(2) (trap) of fd.
func sockName(trap, fd uintptr) (syscall.RawSockaddrAny, syscall.Errno) {
	var sa syscall.RawSockaddrAny
	l := uint32(syscall.SizeofSockaddrAny)
	_, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&l)))
	return sa, e
}

// tcpAddr reads a struct sockaddr_in or sockaddr_in6; nil for another
// family.
func tcpAddr(sa *syscall.RawSockaddrAny) *net.TCPAddr {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		in := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(in.Addr), getPort(&in.Port)))
	case syscall.AF_INET6:
		in := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom16(in.Addr), getPort(&in.Port)))
	}
	return nil
}

// putPort and getPort store a port in network byte order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}
