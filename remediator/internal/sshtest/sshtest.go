// Package sshtest is an in-process SSH server for the remediator's tests
// (github.com/gliderlabs/ssh): its own host key pinned in a known_hosts
// file, a client key, and every command run by /bin/sh as a real host would,
// with a PATH the test chooses (see FakeHost) and a log of what ran.
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	gliderssh "github.com/gliderlabs/ssh"
	"github.com/skeema/knownhosts"
	gossh "golang.org/x/crypto/ssh"
)

// Options shape a Server.
type Options struct {
	// Env is added to the environment of every command (PATH=..., state).
	Env []string
	// PinnedKey, when set, is the key written to known_hosts instead of
	// the server's own: the server then presents a changed key.
	PinnedKey gossh.PublicKey
	// Addr to listen on; default 127.0.0.1:0.
	Addr string
	// Up, when set, is asked at every connection: false drops it before the
	// handshake, as a host whose sshd is stopped (but whose port is still
	// reached) would.
	Up func() bool
}

// Server is a running SSH server.
type Server struct {
	Host       string
	Port       int
	KnownHosts string
	KeyFile    string
	HostKey    gossh.Signer

	srv      *gliderssh.Server
	mu       sync.Mutex
	commands []string
	logins   int
}

// NewHostKey makes an ed25519 host key.
func NewHostKey(t testing.TB) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Start runs a server until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	dir := t.TempDir()
	s := &Server{HostKey: NewHostKey(t)}

	// The client's key, accepted by the server and nothing else.
	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	s.KeyFile = filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(s.KeyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	clientSigner, err := gossh.NewSignerFromKey(clientPriv)
	if err != nil {
		t.Fatal(err)
	}
	clientPub := clientSigner.PublicKey()

	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(l.Addr().String())
	s.Host = host
	s.Port, _ = strconv.Atoi(port)

	pinned := o.PinnedKey
	if pinned == nil {
		pinned = s.HostKey.PublicKey()
	}
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(l.Addr().String())}, pinned)
	if err := os.WriteFile(s.KnownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	s.srv = &gliderssh.Server{
		Handler: func(sess gliderssh.Session) { s.exec(sess, o.Env) },
		PublicKeyHandler: func(_ gliderssh.Context, key gliderssh.PublicKey) bool {
			ok := gliderssh.KeysEqual(key, clientPub)
			if ok {
				s.mu.Lock()
				s.logins++
				s.mu.Unlock()
			}
			return ok
		},
	}
	if o.Up != nil {
		s.srv.ConnCallback = func(_ gliderssh.Context, c net.Conn) net.Conn {
			if !o.Up() {
				c.Close()
				return nil
			}
			return c
		}
	}
	s.srv.AddHostKey(s.HostKey)
	go func() { _ = s.srv.Serve(l) }()
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *Server) exec(sess gliderssh.Session, env []string) {
	raw := sess.RawCommand()
	s.mu.Lock()
	s.commands = append(s.commands, raw)
	s.mu.Unlock()
	cmd := exec.CommandContext(sess.Context(), "/bin/sh", "-c", raw)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = sess, sess, sess.Stderr()
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		_ = sess.Exit(0)
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		_ = sess.Exit(exitErr.ExitCode())
	default:
		_ = sess.Exit(255)
	}
}

// Commands returns the command lines run so far.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// Logins counts successful authentications.
func (s *Server) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// Close stops the server; connections end.
func (s *Server) Close() { s.srv.Close() }
