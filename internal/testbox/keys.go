package testbox

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshKeys are a box's SSH credentials: root's client key and the box's host
// key, fresh for every box.
type sshKeys struct {
	clientPEM     []byte // OpenSSH private key, for the KeyFile
	authorizedKey []byte // the client key as an authorized_keys line
	hostPEM       []byte
	hostPub       []byte // authorized_keys format
	hostKey       ssh.PublicKey
}

func newSSHKeys(name string) (*sshKeys, error) {
	k := &sshKeys{}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "mamori testbox "+name)
	if err != nil {
		return nil, err
	}
	k.clientPEM = pem.EncodeToMemory(block)
	cpub, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		return nil, err
	}
	k.authorizedKey = ssh.MarshalAuthorizedKey(cpub)

	hostPub, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if block, err = ssh.MarshalPrivateKey(hostPriv, "root@"+name); err != nil {
		return nil, err
	}
	k.hostPEM = pem.EncodeToMemory(block)
	if k.hostKey, err = ssh.NewPublicKey(hostPub); err != nil {
		return nil, err
	}
	k.hostPub = ssh.MarshalAuthorizedKey(k.hostKey)
	return k, nil
}

// knownHosts is the known_hosts file pinning the box's host key, under its
// address and its name.
func (k *sshKeys) knownHosts(addr, name string) []byte {
	return []byte(knownhosts.Line([]string{addr, name}, k.hostKey) + "\n")
}

// boxTLS holds a box's certificates, PEM encoded: a CA of its own and a
// server certificate it signed (for the box's name, its address, localhost),
// and a self-signed one for the panel.
type boxTLS struct {
	caPEM, serverPEM, serverKey, panelPEM, panelKey []byte
}

func newBoxTLS(name, addr string, now time.Time) (*boxTLS, error) {
	t := &boxTLS{}
	names := []string{name, "localhost"}
	ips := []net.IP{net.ParseIP(addr), net.ParseIP("127.0.0.1")}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "mamori testbox CA " + name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("box CA: %w", err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return nil, err
	}
	t.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	leaf := func(parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string) (certPEM, keyPEM []byte, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: cn},
			DNSNames:     names,
			IPAddresses:  ips,
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(30 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate %s: %w", cn, err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
	}
	if t.serverPEM, t.serverKey, err = leaf(ca, caKey, name); err != nil {
		return nil, err
	}
	if t.panelPEM, t.panelKey, err = leaf(nil, nil, name+" panel"); err != nil {
		return nil, err
	}
	return t, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// machineID is a fresh /etc/machine-id value.
func machineID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
