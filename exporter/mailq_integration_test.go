package exporter

import (
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/internal/testenv"
)

// TestRealPostfixQueue holds 250 messages in the real Postfix's deferred
// queue: sum(mamori_mailq_messages) reads 250 and the mailq threshold 200,
// or 201 where the inventory says so.
func TestRealPostfixQueue(t *testing.T) {
	testenv.RequireIntegration(t)
	if os.Geteuid() != 0 {
		testenv.Need(t, "run as root: the test reconfigures Postfix")
	}
	if _, err := exec.LookPath("postconf"); err != nil {
		testenv.Need(t, "postfix not installed")
	}
	run(t, "postsuper", "-d", "ALL")
	// Every transport defers: the mail stays queued, as on a server whose
	// relay is down.
	run(t, "postconf", "-e", "defer_transports = smtp, relay, local, error, virtual, lmtp")
	t.Cleanup(func() {
		run(t, "postsuper", "-d", "ALL")
		run(t, "postconf", "-X", "defer_transports")
		run(t, "postfix", "reload")
	})
	run(t, "postfix", "reload")

	const n = 250
	sendMessages(t, n)

	path := filepath.Join(t.TempDir(), "inventory.yml")
	writeFile(t, path, plusInventory)
	r := start(t, Options{ConfigFile: path, HostName: "testhost", SpoolDir: "/var/spool/postfix"})
	deadline := time.Now().Add(60 * time.Second)
	var sum, deferred float64
	for {
		got := r.scrape(t)
		sum, deferred = 0, 0
		for _, s := range got["mamori_mailq_messages"] {
			sum += float64(s.Value)
			if s.Metric["queue"] == "deferred" {
				deferred = float64(s.Value)
			}
		}
		if deferred == n || time.Now().After(deadline) {
			if got := thresholdOf(got, "mailq"); got != 200 {
				t.Errorf("mailq threshold %v, want 200", got)
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if sum != n || deferred != n {
		t.Fatalf("sum(mamori_mailq_messages) = %v, deferred %v; want %d held in deferred", sum, deferred, n)
	}

	writeFile(t, path, plusInventory+"          mailq: {thresholds: {alert: 201}}\n")
	if err := r.app.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := thresholdOf(r.scrape(t), "mailq"); got != 201 {
		t.Errorf("mailq threshold after reload %v, want 201", got)
	}
}

// sendMessages submits n messages over one SMTP session to the local
// Postfix.
func sendMessages(t *testing.T, n int) {
	t.Helper()
	c, err := smtp.Dial("127.0.0.1:25")
	if err != nil {
		testenv.Need(t, "postfix does not answer on 127.0.0.1:25: %v", err)
	}
	defer c.Close()
	for i := 0; i < n; i++ {
		if err := c.Mail("flood@example.test"); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt("root@localhost"); err != nil { // local delivery, deferred too
			t.Fatal(err)
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "Subject: queued %d\r\n\r\nheld in the deferred queue by the test\r\n", i)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
