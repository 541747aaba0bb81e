package remote

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/remediator/internal/sshtest"
)

func endpoint(s *sshtest.Server) Endpoint {
	return Endpoint{Address: s.Host, Port: s.Port, User: "root", KeyFile: s.KeyFile, KnownHostsFile: s.KnownHosts}
}

func dial(t *testing.T, s *sshtest.Server) *Client {
	t.Helper()
	c, err := Dialer{KillAfter: time.Second, Grace: 2 * time.Second}.Dial(context.Background(), endpoint(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"apache2":                 "apache2",
		"":                        "''",
		"httpd; touch /tmp/pwned": `'httpd; touch /tmp/pwned'`,
		"it's":                    `'it'"'"'s'`,
		"$(reboot)":               `'$(reboot)'`,
		"user@example.com":        "user@example.com",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
	c := Command{Argv: []string{"systemctl", "restart", "apache2"}, Timeout: 60 * time.Second}
	if got, want := c.Line(5*time.Second), "timeout --kill-after=5s 60s systemctl restart apache2 2>&1"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
}

// TestQuotedArgumentsReachTheHostAsOneWord runs hostile strings through a
// real shell: each arrives as one argument, nothing else runs.
func TestQuotedArgumentsReachTheHostAsOneWord(t *testing.T) {
	dir := t.TempDir()
	pwned := filepath.Join(dir, "pwned")
	s := sshtest.Start(t, sshtest.Options{})
	c := dial(t, s)
	for _, arg := range []string{"x; touch " + pwned, "$(touch " + pwned + ")", "`touch " + pwned + "`", "a'b\"c\n d", "*"} {
		res, err := c.Run(context.Background(), Command{Name: "echo", Argv: []string{"printf", "%s", arg}, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Output) != arg || res.ExitCode != 0 {
			t.Errorf("printf %q printed %q (exit %d)", arg, res.Output, res.ExitCode)
		}
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("a quoted argument ran a command")
	}
}

func TestRunExitCodesStdinAndOutputLimit(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c, err := Dialer{OutputLimit: 10}.Dial(context.Background(), endpoint(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	res, err := c.Run(ctx, Command{Name: "false", Argv: []string{"sh", "-c", "echo no; exit 3"}, Timeout: 5 * time.Second})
	if err != nil || res.ExitCode != 3 || string(res.Output) != "no\n" {
		t.Fatalf("exit 3: %+v %v", res, err)
	}
	res, err = c.Run(ctx, Command{Name: "cat", Argv: []string{"cat"}, Stdin: []byte("secret-value\n"), Timeout: 5 * time.Second})
	if err != nil || res.ExitCode != 0 || string(res.Output) != "secret-val" || !res.Truncated {
		t.Fatalf("stdin, limit: %+v %v", res, err)
	}
	// One connection served every command.
	if n := s.Logins(); n != 1 {
		t.Fatalf("%d logins, want 1", n)
	}
}

// TestRemoteTimeout: a command that overruns is ended by timeout(1) on the
// host, with its status 124.
func TestRemoteTimeout(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c := dial(t, s)
	start := time.Now()
	res, err := c.Run(context.Background(), Command{Name: "sleep", Argv: []string{"sleep", "30"}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 124 || time.Since(start) > 5*time.Second {
		t.Fatalf("exit %d after %s", res.ExitCode, time.Since(start))
	}
}

// TestDetachedRestartReturns: a daemon that keeps its starter's streams
// open (dovecot's init script) does not hold a detached command's session.
func TestDetachedRestartReturns(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c := dial(t, s)
	daemon := []string{"sh", "-c", "echo starting; (sleep 20 &)"}
	start := time.Now()
	res, err := c.Run(context.Background(), Command{Name: "restart", Argv: daemon, Detach: true, Timeout: 10 * time.Second})
	if err != nil || res.ExitCode != 0 || string(res.Output) != "starting\n" {
		t.Fatalf("detached: %+v %v", res, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("detached restart took %s", d)
	}
	// Without Detach the same command holds the session until our own
	// limit gives up on it.
	c2, err := Dialer{KillAfter: time.Second, Grace: time.Second}.Dial(context.Background(), endpoint(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, err = c2.Run(context.Background(), Command{Name: "restart", Argv: daemon, Timeout: time.Second})
	if err == nil || !c2.Broken() {
		t.Fatalf("attached daemon: err %v, broken %v", err, c2.Broken())
	}
}

func TestHostKeyChangedAndUnknown(t *testing.T) {
	other := sshtest.NewHostKey(t)
	s := sshtest.Start(t, sshtest.Options{PinnedKey: other.PublicKey()})
	_, err := Dialer{}.Dial(context.Background(), endpoint(s))
	if !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("changed key: %v", err)
	}
	if len(s.Commands()) != 0 || s.Logins() != 0 {
		t.Fatal("a command ran or a login happened on a host with a changed key")
	}
	ep := endpoint(s)
	empty := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ep.KnownHostsFile = empty
	if _, err := (Dialer{}).Dial(context.Background(), ep); !errors.Is(err, ErrHostKeyUnknown) {
		t.Fatalf("unknown key: %v", err)
	}
}

// TestHandshakeDeadline: a server that accepts and says nothing.
func TestHandshakeDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s := sshtest.Start(t, sshtest.Options{})
	ep := endpoint(s)
	ep.Port = l.Addr().(*net.TCPAddr).Port
	// known_hosts pins the real server's port only; the silent one never
	// gets as far as showing a key.
	start := time.Now()
	_, err = Dialer{HandshakeTimeout: 300 * time.Millisecond}.Dial(context.Background(), ep)
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("silent server: %v after %s", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "handshake") {
		t.Fatalf("error %q does not name the handshake", err)
	}
}

func TestLocalRun(t *testing.T) {
	ctx := context.Background()
	res, err := Local{}.Run(ctx, Command{Name: "console", Argv: []string{"sh", "-c", `echo "$@"; exit 2`, "sh", "systemctl", "restart", "ssh"}, Timeout: 5 * time.Second})
	if err != nil || res.ExitCode != 2 || string(res.Output) != "systemctl restart ssh\n" {
		t.Fatalf("local: %+v %v", res, err)
	}
	start := time.Now()
	_, err = Local{WaitDelay: time.Second}.Run(ctx, Command{Name: "power_cycle", Argv: []string{"sh", "-c", "sleep 30 & sleep 30"}, Timeout: 300 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("local timeout: %v after %s", err, time.Since(start))
	}
	if _, err := (Local{}).Run(ctx, Command{Name: "x", Argv: []string{filepath.Join(t.TempDir(), "missing")}}); err == nil {
		t.Fatal("a missing command ran")
	}
}
