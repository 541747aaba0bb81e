package probe

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/runbook"
)

// In-process servers for what real daemons rarely do: odd greetings, slow
// or silent servers, broken TLS.

// serve runs handle for each connection to a fresh listener on 127.0.0.1
// and returns its port. The listener closes, and handlers are waited for,
// when the test ends.
func serve(t testing.TB, handle func(t testing.TB, c net.Conn)) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				handle(t, c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return l.Addr().(*net.TCPAddr).Port
}

// closedPort returns a port nothing listens on.
func closedPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// silent accepts and never answers; it returns when the client hangs up.
func silent(_ testing.TB, c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// step is one move of a scripted server: wait, send, expect a line from
// the client (prefix match, CRLF required), or start TLS.
type step struct {
	delay  time.Duration
	send   string
	expect string
	tls    *tls.Config
	raw    func(t testing.TB, c net.Conn, r *bufio.Reader) // anything else
	hangUp bool
}

func send(s string) step            { return step{send: s} }
func expect(prefix string) step     { return step{expect: prefix} }
func wait(d time.Duration) step     { return step{delay: d} }
func startTLS(cfg *tls.Config) step { return step{tls: cfg} }

// hangUp closes the connection from the server's side.
var hangUp = step{hangUp: true}

// scripted plays steps on each connection, then closes it, as servers do
// after QUIT, LOGOUT or an SSH disconnect.
func scripted(steps ...step) func(t testing.TB, c net.Conn) {
	return func(t testing.TB, c net.Conn) {
		r := bufio.NewReader(c)
		var conn net.Conn = c
		for _, s := range steps {
			switch {
			case s.delay > 0:
				time.Sleep(s.delay)
			case s.send != "":
				if _, err := io.WriteString(conn, s.send); err != nil {
					return
				}
			case s.expect != "":
				line, err := r.ReadString('\n')
				if err != nil {
					t.Errorf("server expected %q: %v", s.expect, err)
					return
				}
				if !strings.HasSuffix(line, "\r\n") {
					t.Errorf("client line %q does not end with CRLF", line)
				}
				if !strings.HasPrefix(line, s.expect) {
					t.Errorf("client sent %q, want %q", line, s.expect)
					return
				}
			case s.tls != nil:
				tc := tls.Server(c, s.tls)
				if err := tc.Handshake(); err != nil {
					return
				}
				conn, r = tc, bufio.NewReader(tc)
			case s.raw != nil:
				s.raw(t, conn, r)
			case s.hangUp:
				conn.Close()
				return
			}
		}
		conn.Close()
	}
}

// pki is a test CA and certificates it signed for localhost and 127.0.0.1.
type pki struct {
	caFile   string // the CA as PEM, for --probe.tls-ca-file
	leaf     tls.Certificate
	expired  tls.Certificate
	selfSign tls.Certificate
	notAfter time.Time
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := &pki{notAfter: time.Now().Add(2 * time.Hour).Truncate(time.Second)}
	p.leaf = leafCert(t, ca, caKey, time.Now().Add(-time.Hour), p.notAfter)
	p.expired = leafCert(t, ca, caKey, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	p.selfSign = leafCert(t, nil, nil, time.Now().Add(-time.Hour), p.notAfter)
	p.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// leafCert is a server certificate for localhost and 127.0.0.1, signed by
// ca, or self-signed when ca is nil.
func leafCert(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, from, until time.Time) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: from, NotAfter: until, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	parent, signer := ca, caKey
	if ca == nil {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func serverTLS(c tls.Certificate) *tls.Config { return &tls.Config{Certificates: []tls.Certificate{c}} }

// probeOnce runs the prober of proto against t within timeout and logs the
// transcript when the outcome is not want ("" for success).
func probeOnce(t testing.TB, s *settings, proto runbook.Protocol, tg Target, timeout time.Duration, want Reason) Result {
	t.Helper()
	r := &Runner{s: s, probers: newProbers(s)}
	tr := NewTranscript()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res := r.run(ctx, tg, proto, tr)
	if res.Reason != want || res.Success != (want == "") {
		t.Errorf("%s: success=%t reason=%q err=%v, want reason %q\n%s", tg.Check, res.Success, res.Reason, res.Err, want, tr)
	}
	return res
}

// local is a target on 127.0.0.1.
func local(check string, port int) Target {
	return Target{Check: check, Host: "127.0.0.1", Port: port, ServerName: "localhost"}
}
