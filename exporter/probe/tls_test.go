package probe

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"
)

// TestVerifyCache: a chain that verified is not verified again for the
// same name until its TTL or its earliest expiry; anything else is.
func TestVerifyCache(t *testing.T) {
	p := newPKI(t)
	pem, err := os.ReadFile(p.caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	leaf := parseLeaf(t, p.leaf)
	var v verifyCache
	now := time.Now()
	if err := v.verify(leaf, "localhost", roots, now); err != nil {
		t.Fatalf("first verification: %v", err)
	}
	empty := x509.NewCertPool()
	if err := v.verify(leaf, "localhost", empty, now.Add(time.Minute)); err != nil {
		t.Errorf("a cached chain was verified again: %v", err)
	}
	if err := v.verify(leaf, "other.example", empty, now); err == nil {
		t.Error("another name reused the cached verification")
	}
	if err := v.verify(leaf, "localhost", empty, now.Add(verifyCacheTTL+time.Second)); err == nil {
		t.Error("the cache outlived its TTL")
	}
	if err := v.verify(parseLeaf(t, p.selfSign), "localhost", roots, now); err == nil {
		t.Error("a self-signed chain verified")
	}
}

func parseLeaf(t *testing.T, c tls.Certificate) []*x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return []*x509.Certificate{cert}
}
