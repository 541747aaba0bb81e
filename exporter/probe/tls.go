package probe

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"
)

// TLS is the layer under HTTPS, SMTPS, IMAPS, POP3S and STARTTLS: the
// handshake, the certificate chain's verification against the name the
// inventory gives (server_name, else the host's name), and the earliest
// expiry of the certificates the server presents. The expiry is read before
// verification, so an expired or self-signed certificate still reports it.

// startTLS runs the TLS handshake over c and continues the dialogue over it.
func (c *conn) startTLS(ctx context.Context, t Target, s *settings, r *Result) error {
	if n := c.br.Buffered(); n > 0 {
		// A server that answers ahead of the handshake is broken or under
		// attack (STARTTLS command injection).
		return failf(ReasonProtocol, "server sent %d bytes ahead of the TLS handshake", n)
	}
	if c.tr != nil {
		c.tr.Printf("TLS handshake, server name %q", t.ServerName)
	}
	tc := tls.Client(c.raw, tlsConfig(t, s, r))
	if err := tc.HandshakeContext(ctx); err != nil {
		c.tr.Printf("TLS handshake failed: %v", err)
		if reason, ok := networkReason(err); ok && reason == ReasonTimeout {
			return &probeError{reason: reason, err: fmt.Errorf("TLS handshake: %w", err)}
		}
		return &probeError{reason: ReasonTLS, err: fmt.Errorf("TLS handshake: %w", err)}
	}
	if c.tr != nil {
		cs := tc.ConnectionState()
		c.tr.Printf("TLS %s, %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite))
		for i, cert := range cs.PeerCertificates {
			c.tr.Printf("certificate %d: subject %q, issuer %q, expires %s", i, cert.Subject.String(),
				cert.Issuer.String(), cert.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	c.c = tc
	c.br.Reset(tc)
	return nil
}

// tlsConfig asks for t's server name and verifies the chain itself, after
// recording the earliest expiry in r.
func tlsConfig(t Target, s *settings, r *Result) *tls.Config {
	return &tls.Config{
		ServerName: t.ServerName,
		// Classic key exchanges only: the probe carries no secret worth a
		// post-quantum key share, and ML-KEM's key generation was a quarter
		// of a handshake's CPU.
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384},
		// Verified below, in VerifyConnection, once the expiry is recorded.
		InsecureSkipVerify: true, //nolint:gosec
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server presented no certificate")
			}
			r.TLSExpiry = earliestExpiry(cs.PeerCertificates)
			if t.InsecureSkipVerify {
				return nil
			}
			return s.verified.verify(cs.PeerCertificates, t.ServerName, s.roots, time.Now())
		},
	}
}

// verifyCache remembers chains that verified for a name, so that a server
// presenting the same chain every scrape costs one hash, not a chain
// verification. The handshake still proves that the server holds the
// leaf's key; a chain is re-verified at the latest an hour later, and never
// past the earliest NotAfter. It is bounded, and belongs to one Runner (its
// roots).
type verifyCache struct {
	mu    sync.Mutex
	until map[[sha256.Size]byte]time.Time
}

const (
	verifyCacheTTL  = time.Hour
	verifyCacheSize = 4096
)

func (v *verifyCache) verify(certs []*x509.Certificate, name string, roots *x509.CertPool, now time.Time) error {
	h := sha256.New()
	h.Write([]byte(name))
	for _, c := range certs {
		h.Write([]byte{0})
		h.Write(c.Raw)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	v.mu.Lock()
	until, ok := v.until[key]
	v.mu.Unlock()
	if ok && now.Before(until) {
		return nil
	}
	if err := verifyChain(certs, name, roots); err != nil {
		return err
	}
	until = now.Add(verifyCacheTTL)
	for _, c := range certs {
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	v.mu.Lock()
	if v.until == nil || len(v.until) >= verifyCacheSize {
		v.until = make(map[[sha256.Size]byte]time.Time)
	}
	v.until[key] = until
	v.mu.Unlock()
	return nil
}

// verifyChain does what crypto/tls does when InsecureSkipVerify is off.
func verifyChain(certs []*x509.Certificate, name string, roots *x509.CertPool) error {
	opts := x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := certs[0].Verify(opts)
	return err
}

// earliestExpiry is the first NotAfter among certs.
func earliestExpiry(certs []*x509.Certificate) time.Time {
	var first time.Time
	for _, c := range certs {
		if first.IsZero() || c.NotAfter.Before(first) {
			first = c.NotAfter
		}
	}
	return first
}
