package probe

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/internal/testenv"
	"github.com/mamori-ops/mamori/inventory"
)

// The jails configure-daemons.sh enables, their logs, and the filter each
// uses in its default mode (jail.conf: postfix runs mode "more").
var jails = []struct{ name, log, filter string }{
	{"sshd", "/var/log/auth.log", "sshd"},
	{"postfix", "/var/log/mail.log", "postfix[mode=more]"},
	{"dovecot", "/var/log/mail.log", "dovecot"},
}

// TestFail2banDoesNotBanTheProber probes every mail and SSH check of the
// real daemons 500 times in a row and proves that fail2ban's default jails
// counted none of it: the new log lines match none of their filters, and
// 127.0.0.1 is not banned. sshd never logs "Did not receive
// identification string".
func TestFail2banDoesNotBanTheProber(t *testing.T) {
	needDaemons(t)
	const rounds = 500
	for _, tool := range []string{"fail2ban-client", "fail2ban-regex"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Need(t, "%s (Debian's fail2ban)", tool)
		}
	}
	if exec.Command("pgrep", "-x", "rsyslogd").Run() != nil {
		testenv.Need(t, "rsyslogd running: fail2ban reads the logs it writes")
	}
	if _, err := os.Stat("/etc/fail2ban/jail.d/mamori-test.local"); err != nil {
		testenv.Need(t, "the test jails of configure-daemons.sh")
	}
	for _, j := range jails {
		if out, err := exec.Command("fail2ban-client", "status", j.name).CombinedOutput(); err != nil {
			testenv.Need(t, "fail2ban jail %s running: %v: %s", j.name, err, out)
		}
	}
	offsets := map[string]int64{}
	for _, j := range jails {
		offsets[j.log] = fileSize(t, j.log)
	}

	inv, err := inventory.LoadFile("testdata/inventory-daemons.yml")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := inv.Host("localhost")
	r, err := NewRunner(testConfig(t, "--probe.tls-ca-file="+testCA), nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	checks := []string{"smtp", "smtps", "imap", "imaps", "pop3", "pop3s", "ssh"}
	start := time.Now()
	var wg sync.WaitGroup
	for _, id := range checks {
		hc, ok := host.Check(id)
		if !ok {
			t.Fatalf("no check %s", id)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			failures := 0
			for i := 0; i < rounds; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				res := r.Check(ctx, Host{Name: host.Name, Address: host.Address}, hc, nil)
				cancel()
				if !res.Success {
					failures++
					if failures <= 3 {
						t.Errorf("%s probe %d: %s: %v", id, i, res.Reason, res.Err)
					}
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d probes of %v in %s", rounds*len(checks), checks, time.Since(start))

	// rsyslog writes mail.log asynchronously; fail2ban polls each second.
	time.Sleep(3 * time.Second)
	dir := t.TempDir()
	for _, j := range jails {
		lines := newLines(t, j.log, offsets[j.log])
		file := filepath.Join(dir, j.name+".log")
		if err := os.WriteFile(file, []byte(lines), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("fail2ban-regex", "--print-all-matched", file, j.filter).CombinedOutput()
		if err != nil {
			t.Fatalf("fail2ban-regex %s: %v\n%s", j.filter, err, out)
		}
		m := regexp.MustCompile(`Lines: (\d+) lines, \d+ ignored, (\d+) matched`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("fail2ban-regex %s: no summary\n%s", j.filter, out)
		}
		t.Logf("%s: %s new lines in %s, %s matched by %s", j.name, m[1], j.log, m[2], j.filter)
		if string(m[2]) != "0" {
			t.Errorf("filter %s counts the prober's sessions:\n%s", j.filter, out)
		}
		if j.name == "sshd" {
			if strings.Contains(lines, "Did not receive identification string") {
				t.Error(`sshd logged "Did not receive identification string"`)
			}
			if n := strings.Count(lines, "Received disconnect from 127.0.0.1"); n < rounds {
				t.Errorf("sshd logged %d polite disconnects, want %d", n, rounds)
			}
		}
		status := runCmd(t, "fail2ban-client", "status", j.name)
		if banned := regexp.MustCompile(`Banned IP list:\s*(.*)`).FindStringSubmatch(status); banned != nil &&
			strings.Contains(" "+banned[1]+" ", " 127.0.0.1 ") {
			t.Errorf("jail %s banned 127.0.0.1:\n%s", j.name, status)
		}
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		testenv.Need(t, "%s: %v (is rsyslogd running?)", path, err)
	}
	return fi.Size()
}

// newLines is what was appended to path after offset.
func newLines(t *testing.T, path string, offset int64) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Size() < offset {
		offset = 0 // rotated
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var _ = fmt.Sprint
