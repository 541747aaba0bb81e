package listen

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/exporter-toolkit/web"
)

func flags(systemd bool, addrs ...string) *web.FlagConfig {
	return &web.FlagConfig{WebSystemdSocket: &systemd, WebListenAddresses: &addrs}
}

func TestAddresses(t *testing.T) {
	ls, err := Listeners(flags(false, "127.0.0.1:0", "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 {
		t.Fatalf("%d listeners, want 2", len(ls))
	}
	for _, l := range ls {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Errorf("%s: %v", l.Addr(), err)
		} else {
			c.Close()
		}
		l.Close()
	}
	if _, err := Listeners(flags(false, "127.0.0.1:0", "127.0.0.1:nope")); err == nil || !strings.HasPrefix(err.Error(), "listen: ") {
		t.Errorf("a bad address: %v", err)
	}
}

// TestSystemdSocket passes a listening socket to a child process the way
// systemd does (fd 3, LISTEN_FDS, LISTEN_PID set to the child's own pid by
// the shell that execs it): --web.systemd-socket must serve on it.
func TestSystemdSocket(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0"`, os.Args[0])
	cmd.Env = append(os.Environ(), "MAMORI_LISTEN_CHILD=1")
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if want := "serving on " + l.Addr().String(); !strings.Contains(string(out), want) {
		t.Errorf("child said %q, want %q", out, want)
	}

	// Without a socket from systemd, the flag is an error, not a silent
	// fallback to --web.listen-address.
	t.Setenv("LISTEN_FDS", "")
	if _, err := Listeners(flags(true, "127.0.0.1:0")); err == nil || !strings.Contains(err.Error(), "systemd passed no socket") {
		t.Errorf("no socket from systemd: %v", err)
	}
}

// TestMain runs TestSystemdSocket's child when asked to: it serves on what
// systemd passed and says where.
func TestMain(m *testing.M) {
	if os.Getenv("MAMORI_LISTEN_CHILD") != "1" {
		os.Exit(m.Run())
	}
	ls, err := Listeners(flags(true))
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	for _, l := range ls {
		os.Stdout.WriteString("serving on " + l.Addr().String() + "\n")
	}
	os.Exit(0)
}
