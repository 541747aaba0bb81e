package probe

import (
	"context"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	probing "github.com/prometheus-community/pro-bing"
)

// ICMP pings a host with several echo requests (pro-bing; 3, back to back
// by default) and reports the loss and the average round-trip time. The probe
// succeeds when one request is answered. A host that answers none is a failure with reason timeout,
// after the last request's wait, never a hang: pro-bing's Run returns nil
// at 100% loss, so the received count decides.
type ICMP struct {
	s *settings
}

// Probe implements Prober.
func (p *ICMP) Probe(ctx context.Context, t Target, tr *Transcript) Result {
	var r Result
	ip, err := resolve(ctx, t.Host)
	if err != nil {
		return r.fail(err)
	}
	// Ask the kernel for a route first (a UDP connect sends nothing):
	// pro-bing retries a send that fails with EACCES ("prohibit" routes,
	// firewall rejects) for ever, so such a target must not reach it.
	if err := routeTo(ip, p.s.source); err != nil {
		tr.Printf("no route: %v", err)
		return r.fail(stageError(ReasonUnreachable, "route", err))
	}
	count, interval := p.s.ICMPCount, p.s.ICMPInterval
	budget := interval*time.Duration(count-1) + p.s.ICMPWait
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl))
	}
	if budget <= 0 {
		return r.fail(failf(ReasonTimeout, "no time left to ping"))
	}
	pinger := probing.New(ip.String())
	pinger.SetIPAddr(&net.IPAddr{IP: ip})
	pinger.SetPrivileged(p.s.icmpPrivileged)
	if p.s.source != nil {
		pinger.Source = p.s.source.String()
	}
	pinger.SetLogger(probing.NoopLogger{})
	pinger.Count = count
	pinger.Interval = interval
	pinger.Timeout = budget
	pinger.RecordRtts = false
	pinger.RecordTTLs = false
	var sendErr error // written by pro-bing's sender, read after Run returned
	pinger.OnSendError = func(_ *probing.Packet, err error) { sendErr = err }
	if tr != nil {
		tr.Printf("ping %s: %d echo requests %s apart, %s socket, for at most %s", ip, count, interval,
			p.socketKind(), budget)
		pinger.OnSend = func(pkt *probing.Packet) { tr.Sent(fmt.Sprintf("echo request seq=%d", pkt.Seq)) }
		pinger.OnRecv = func(pkt *probing.Packet) {
			tr.Received(fmt.Sprintf("echo reply seq=%d ttl=%d rtt=%s", pkt.Seq, pkt.TTL, pkt.Rtt))
		}
	}
	runErr := pinger.RunWithContext(ctx)
	st := pinger.Statistics()
	r.Ping = &PingStats{Sent: st.PacketsSent, Received: st.PacketsRecv, RTT: st.AvgRtt}
	if tr != nil {
		tr.Printf("%d sent, %d received, average rtt %s", st.PacketsSent, st.PacketsRecv, st.AvgRtt)
	}
	switch {
	case st.PacketsRecv > 0:
		return r.ok()
	case sendErr != nil:
		return r.fail(stageError(ReasonUnreachable, "send", sendErr))
	case runErr != nil && st.PacketsSent == 0:
		// The socket could not be opened: the prober's problem, not the host's.
		return r.fail(&probeError{reason: ReasonInternal, err: fmt.Errorf("%s ICMP socket: %w", p.socketKind(), runErr)})
	}
	return r.fail(failf(ReasonTimeout, "no echo reply to %d requests", st.PacketsSent))
}

func (p *ICMP) socketKind() string {
	if p.s.icmpPrivileged {
		return ICMPSocketRaw
	}
	return ICMPSocketDatagram
}

// routeTo asks the kernel whether ip has a route, without sending: a UDP
// socket's connect (three system calls, no poller registration).
func routeTo(ip, source net.IP) error {
	family, sa, local := syscall.AF_INET, syscall.Sockaddr(nil), syscall.Sockaddr(nil)
	if ip4 := ip.To4(); ip4 != nil {
		a := &syscall.SockaddrInet4{Port: 9}
		copy(a.Addr[:], ip4)
		sa = a
		if s4 := source.To4(); s4 != nil {
			l := &syscall.SockaddrInet4{}
			copy(l.Addr[:], s4)
			local = l
		}
	} else {
		family = syscall.AF_INET6
		a := &syscall.SockaddrInet6{Port: 9}
		copy(a.Addr[:], ip.To16())
		sa = a
		if source != nil && source.To4() == nil {
			l := &syscall.SockaddrInet6{}
			copy(l.Addr[:], source.To16())
			local = l
		}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer syscall.Close(fd)
	if local != nil {
		if err := syscall.Bind(fd, local); err != nil {
			return os.NewSyscallError("bind", err)
		}
	}
	return os.NewSyscallError("connect", syscall.Connect(fd, sa))
}

var _ Prober = (*ICMP)(nil)
