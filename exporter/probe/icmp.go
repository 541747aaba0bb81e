package probe

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ICMP pings a host with several echo requests (3, 1ms apart by default)
// and reports the loss and the average round-trip time. The probe succeeds
// when one request is answered. A host that answers none is a failure with
// reason timeout, after the last request's wait, never a hang; a send that
// the kernel refuses (no route, a "prohibit" route, a firewall reject) is
// unreachable at once.
//
// All ping probes share one ICMP socket per address family, opened at the
// first probe and read by one goroutine that hands each echo reply to the
// probe that owns its sequence number. A socket per probe cost a socket, a
// bind, a BPF filter (raw sockets see every ICMP packet of the host) and a
// close, and pro-bing's three goroutines and polling reads around it: a
// third of a ping probe's CPU, measured.
type ICMP struct {
	s      *settings
	v4, v6 pingSocket
}

// Probe implements Prober.
func (p *ICMP) Probe(ctx context.Context, t Target, tr *Transcript) Result {
	var r Result
	ip, err := resolve(ctx, t.Host)
	if err != nil {
		return r.fail(err)
	}
	count, interval := p.s.ICMPCount, p.s.ICMPInterval
	budget := interval*time.Duration(count-1) + p.s.ICMPWait
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl))
	}
	if budget <= 0 {
		return r.fail(failf(ReasonTimeout, "no time left to ping"))
	}
	ps := &p.v6
	if ip.To4() != nil {
		ps = &p.v4
	}
	if tr != nil {
		tr.Printf("ping %s: %d echo requests %s apart, privileged=%t, for at most %s", ip, count, interval,
			p.s.ICMPPrivileged, budget)
	}
	st, sendErr, err := ps.ping(ctx, p.s, ip, count, interval, budget, tr)
	if err != nil {
		return r.fail(err)
	}
	r.Ping = &st
	if tr != nil {
		tr.Printf("%d sent, %d received, average rtt %s", st.Sent, st.Received, st.RTT)
	}
	switch {
	case st.Received > 0:
		return r.ok()
	case sendErr != nil:
		tr.Printf("send failed: %v", sendErr)
		return r.fail(stageError(ReasonUnreachable, "send", sendErr))
	}
	return r.fail(failf(ReasonTimeout, "no echo reply to %d requests", st.Sent))
}

// pingSocket is the shared ICMP socket of one address family. Replies are
// matched by sequence number: a raw socket's echo requests carry the
// socket's random identifier, a datagram socket's the one the kernel gives
// it (and it delivers only those replies).
type pingSocket struct {
	mu      sync.Mutex
	conn    *icmp.PacketConn // nil until opened, or after a read error
	raw     bool
	id      int
	seq     uint16
	waiting map[uint16]*echo // by sequence number
}

// echo is one echo request in flight.
type echo struct {
	to      net.IP
	sent    time.Time
	replies chan<- time.Duration // the round-trip time, once
}

// open opens the socket if it is not; it returns the socket and whether
// it is raw.
func (ps *pingSocket) open(s *settings, v4 bool) (*icmp.PacketConn, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.conn != nil {
		return ps.conn, nil
	}
	network, address := "udp6", "::"
	if s.ICMPPrivileged {
		network = "ip6:ipv6-icmp"
	}
	if v4 {
		network, address = "udp4", "0.0.0.0"
		if s.ICMPPrivileged {
			network = "ip4:icmp"
		}
	}
	if s.source != nil {
		address = s.source.String()
	}
	conn, err := icmp.ListenPacket(network, address)
	if err != nil {
		return nil, &probeError{reason: ReasonInternal, err: fmt.Errorf("ICMP socket (privileged=%t): %w", s.ICMPPrivileged, err)}
	}
	ps.conn, ps.raw, ps.id = conn, s.ICMPPrivileged, rand.IntN(1<<16)
	ps.waiting = map[uint16]*echo{}
	go ps.read(conn, v4)
	return conn, nil
}

// read hands the replies on conn to the probes waiting for them, until conn
// fails; the next probe then opens a new socket.
func (ps *pingSocket) read(conn *icmp.PacketConn, v4 bool) {
	proto, reply := ipv6.ICMPTypeEchoReply.Protocol(), icmp.Type(ipv6.ICMPTypeEchoReply)
	if v4 {
		proto, reply = ipv4.ICMPTypeEchoReply.Protocol(), ipv4.ICMPTypeEchoReply
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			ps.mu.Lock()
			if ps.conn == conn {
				ps.conn = nil
			}
			ps.mu.Unlock()
			_ = conn.Close()
			return
		}
		got := time.Now()
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != reply {
			continue // a raw socket sees every ICMP message
		}
		body, ok := m.Body.(*icmp.Echo)
		if !ok {
			continue
		}
		ps.mu.Lock()
		e := ps.waiting[uint16(body.Seq)]
		if e != nil && (!ps.raw || body.ID == ps.id) && addrIP(from).Equal(e.to) {
			delete(ps.waiting, uint16(body.Seq))
			e.replies <- got.Sub(e.sent)
		}
		ps.mu.Unlock()
	}
}

// ping sends count echo requests to ip, interval apart, and collects the
// replies for at most budget. A send error ends it.
func (ps *pingSocket) ping(ctx context.Context, s *settings, ip net.IP, count int, interval, budget time.Duration, tr *Transcript) (st PingStats, sendErr, err error) {
	v4 := ip.To4() != nil
	conn, err := ps.open(s, v4)
	if err != nil {
		return st, nil, err
	}
	typ, dst := icmp.Type(ipv6.ICMPTypeEchoRequest), net.Addr(&net.UDPAddr{IP: ip})
	if v4 {
		typ = ipv4.ICMPTypeEcho
	}
	if ps.raw {
		dst = &net.IPAddr{IP: ip}
	}
	replies := make(chan time.Duration, count)
	seqs := make([]uint16, 0, count)
	defer func() { ps.forget(seqs, replies) }()
	end := time.NewTimer(budget)
	defer end.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var rtt time.Duration
	defer func() {
		if st.Received > 0 {
			st.RTT = rtt / time.Duration(st.Received)
		}
	}()
	send := func() error {
		seq, err := ps.send(conn, typ, dst, ip, replies)
		if err != nil {
			return err
		}
		seqs = append(seqs, seq)
		st.Sent++
		if tr != nil {
			tr.Sent(fmt.Sprintf("echo request seq=%d", seq))
		}
		return nil
	}
	if err := send(); err != nil {
		return st, err, nil
	}
	for st.Received < count {
		var next <-chan time.Time
		if st.Sent < count {
			next = tick.C
		}
		select {
		case d := <-replies:
			st.Received++
			rtt += d
			if tr != nil {
				tr.Received(fmt.Sprintf("echo reply rtt=%s", d))
			}
		case <-next:
			if err := send(); err != nil {
				return st, err, nil
			}
		case <-end.C:
			return st, nil, nil
		case <-ctx.Done():
			return st, nil, nil
		}
	}
	return st, nil, nil
}

// send writes one echo request, registered under a free sequence number.
func (ps *pingSocket) send(conn *icmp.PacketConn, typ icmp.Type, dst net.Addr, ip net.IP, replies chan<- time.Duration) (uint16, error) {
	ps.mu.Lock()
	seq := ps.seq
	for ps.waiting[seq] != nil { // still in flight 65,536 requests later
		seq++
	}
	ps.seq = seq + 1
	id := ps.id
	ps.mu.Unlock()
	b, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: int(seq), Data: []byte("mamori_probe")}}).Marshal(nil)
	if err != nil {
		return seq, err
	}
	ps.mu.Lock()
	ps.waiting[seq] = &echo{to: ip, sent: time.Now(), replies: replies}
	ps.mu.Unlock()
	_, err = conn.WriteTo(b, dst)
	return seq, err
}

// forget unregisters a probe's requests that got no reply.
func (ps *pingSocket) forget(seqs []uint16, replies chan<- time.Duration) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, q := range seqs {
		if e := ps.waiting[q]; e != nil && e.replies == replies {
			delete(ps.waiting, q)
		}
	}
}

// addrIP is the IP address of a raw or datagram ICMP peer.
func addrIP(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.IPAddr:
		return a.IP
	case *net.UDPAddr:
		return a.IP
	}
	return nil
}

var _ Prober = (*ICMP)(nil)
