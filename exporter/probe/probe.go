package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

// Prober speaks one protocol's dialogue with a target. Probe must return by
// ctx's deadline: every prober sets that deadline on its sockets. tr may be
// nil; when it is not, the prober records the dialogue in it.
type Prober interface {
	Probe(ctx context.Context, t Target, tr *Transcript) Result
}

// Target is one check of one host, resolved from the inventory: where to
// connect and how to talk.
type Target struct {
	// Check is the registry id, the `check` label.
	Check string
	// Host is the address to connect to: an IP address, or a DNS name that
	// the dialer resolves (the url check's host).
	Host string
	// Port is the TCP port; 0 for ICMP.
	Port int
	// TLS starts the dialogue with a TLS handshake (implicit TLS).
	TLS bool
	// StartTLS upgrades a plain SMTP, IMAP or POP3 dialogue.
	StartTLS bool
	// ServerName is the TLS server name (SNI) and the name the certificate
	// must carry.
	ServerName string
	// InsecureSkipVerify accepts any certificate (Plesk's self-signed panel);
	// the expiry is still reported.
	InsecureSkipVerify bool
	// URL is what HTTP checks request; its host is the Host header.
	URL *url.URL
	// BodyMatch, when set, must match the HTTP response body.
	BodyMatch *regexp.Regexp
	// MaxRedirects is how many redirects an HTTP check follows; 0 takes a
	// 3xx answer as it is.
	MaxRedirects int
}

// addr is host:port for dialing.
func (t Target) addr() string { return net.JoinHostPort(t.Host, itoa(t.Port)) }

// Result is the outcome of one probe.
type Result struct {
	Success bool
	// Reason says why a probe failed; empty on success.
	Reason Reason
	// Err is what went wrong, for logs and the debug transcript; it never
	// becomes a label value.
	Err error
	// Duration is the time the dialogue took, set by the runner.
	Duration time.Duration
	// TLSExpiry is the earliest NotAfter of the certificates the server
	// presented; zero when no TLS handshake got that far.
	TLSExpiry time.Time
	// Ping holds the ICMP statistics of a ping check.
	Ping *PingStats
}

// PingStats are the packet counts and round-trip time of an ICMP probe.
type PingStats struct {
	Sent, Received int
	// RTT is the average round-trip time of the replies.
	RTT time.Duration
}

// Loss is the share of echo requests that got no reply.
func (s PingStats) Loss() float64 {
	if s.Sent == 0 {
		return 1
	}
	return float64(s.Sent-s.Received) / float64(s.Sent)
}

// Reason is why a probe failed: a label value of mamori_probe_failure, from
// the fixed set Reasons returns.
type Reason string

// The failure reasons. Each probe reports every one of them: 1 for the
// reason it failed with, 0 for the others.
const (
	// ReasonRefused: the TCP connection was refused (nothing listens).
	ReasonRefused Reason = "refused"
	// ReasonTimeout: no answer within the scrape timeout (a silent or
	// overloaded server, a host that drops packets, 100% ICMP loss).
	ReasonTimeout Reason = "timeout"
	// ReasonUnreachable: no route to the host (the network says so at once).
	ReasonUnreachable Reason = "unreachable"
	// ReasonDNS: the target's name did not resolve.
	ReasonDNS Reason = "dns"
	// ReasonTLS: the TLS handshake failed, the certificate did not verify,
	// or STARTTLS was not offered or refused.
	ReasonTLS Reason = "tls"
	// ReasonBanner: the server's greeting was missing or not the protocol's
	// ready greeting (SMTP/FTP not 220, IMAP not * OK, POP3 not +OK, no
	// SSH-2.0 identification, not a MySQL v10 greeting).
	ReasonBanner Reason = "banner"
	// ReasonProtocol: a later step of the dialogue got an answer the
	// protocol does not allow (EHLO or CAPABILITY refused, a malformed
	// reply, the connection dropped mid-dialogue, too many redirects).
	ReasonProtocol Reason = "protocol"
	// ReasonHTTPStatus: the HTTP status was not 2xx or 3xx.
	ReasonHTTPStatus Reason = "http_status"
	// ReasonBodyMismatch: the HTTP body did not match the inventory's
	// body_match.
	ReasonBodyMismatch Reason = "body_mismatch"
	// ReasonBlocked: the server refused this prober at the greeting with an
	// error packet (MySQL 1129 host blocked, 1130 host not allowed, 1040 too
	// many connections).
	ReasonBlocked Reason = "blocked"
	// ReasonInternal: the prober itself could not run the probe (an ICMP
	// socket it is not allowed to open, a bad body regexp); the target may
	// be fine.
	ReasonInternal Reason = "internal"
)

// Reasons returns every failure reason, in a fixed order.
func Reasons() []Reason {
	return []Reason{ReasonRefused, ReasonTimeout, ReasonUnreachable, ReasonDNS, ReasonTLS, ReasonBanner,
		ReasonProtocol, ReasonHTTPStatus, ReasonBodyMismatch, ReasonBlocked, ReasonInternal}
}

// probeError is a failure with the reason it counts as.
type probeError struct {
	reason Reason
	err    error
}

func (e *probeError) Error() string { return string(e.reason) + ": " + e.err.Error() }
func (e *probeError) Unwrap() error { return e.err }

// failf is a failure of the given reason with a message.
func failf(reason Reason, format string, args ...any) error {
	return &probeError{reason: reason, err: fmt.Errorf(format, args...)}
}

// stageError attributes an I/O error to the dialogue's stage: what the
// network says (timeout, refused, unreachable, dns) wins, anything else
// (EOF, reset, a malformed answer) counts as the stage's reason.
func stageError(stage Reason, what string, err error) error {
	var pe *probeError
	if errors.As(err, &pe) {
		return err
	}
	r, ok := networkReason(err)
	if !ok {
		r = stage
	}
	return &probeError{reason: r, err: fmt.Errorf("%s: %w", what, err)}
}

// networkReason names the reasons the network itself gives.
func networkReason(err error) (Reason, bool) {
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return "", false
	case errors.As(err, &dnsErr):
		return ReasonDNS, true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.Canceled), errors.Is(err, syscall.ETIMEDOUT):
		return ReasonTimeout, true
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonRefused, true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EINVAL),
		errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.ENETDOWN):
		// EACCES/EPERM on connect: a "prohibit" route or a firewall reject;
		// EINVAL: a blackhole route.
		return ReasonUnreachable, true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout, true
	}
	return "", false
}

// reasonOf names the reason of a prober's error.
func reasonOf(err error) Reason {
	var pe *probeError
	if errors.As(err, &pe) {
		return pe.reason
	}
	if r, ok := networkReason(err); ok {
		return r
	}
	return ReasonProtocol
}

// fail records err as the result's failure and returns the result.
func (r Result) fail(err error) Result {
	r.Success = false
	r.Reason = reasonOf(err)
	r.Err = err
	return r
}

// ok marks the result successful and returns it.
func (r Result) ok() Result {
	r.Success = true
	r.Reason = ""
	r.Err = nil
	return r
}

func itoa(n int) string { return strconv.Itoa(n) }

// resolve returns host's address, IPv4 first; an IP address is returned as
// it is.
func resolve(ctx context.Context, host string) (net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip, nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsTimeout {
			return nil, &probeError{reason: ReasonDNS, err: err}
		}
		return nil, stageError(ReasonDNS, "resolve", err)
	}
	for _, a := range addrs {
		if a.IP.To4() != nil {
			return a.IP, nil
		}
	}
	if len(addrs) == 0 {
		return nil, failf(ReasonDNS, "%s has no address", host)
	}
	return addrs[0].IP, nil
}
