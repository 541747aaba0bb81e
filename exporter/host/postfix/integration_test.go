package postfix

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/internal/testenv"
)

// testSettings are the main.cf values the tests need, put back afterwards:
// defer_transports keeps every message queued (qmgr defers what these
// transports would deliver, ENV.md), and in_flow_delay 0 stops pickup from
// pausing up to a second per message while qmgr lags, which on a loaded
// machine can stretch 250 messages past the test's minute.
var testSettings = [][2]string{
	{"defer_transports", "smtp, relay, local, error, virtual, lmtp"},
	{"in_flow_delay", "0s"},
}

// realPostfix prepares the real Postfix for a test: installed, root,
// deferring every delivery, running. It returns the queue directory.
// What it changed is put back at the end of the test.
func realPostfix(t *testing.T) string {
	t.Helper()
	testenv.RequireIntegration(t)
	for _, cmd := range []string{"postfix", "postconf", "postsuper", "postqueue", "sendmail", "service"} {
		if sbin(cmd) == "" {
			testenv.Need(t, "postfix is not installed (no %s): apt-get install postfix", cmd)
		}
	}
	if os.Geteuid() != 0 {
		testenv.Need(t, "the Postfix integration test configures and starts postfix: run as root")
	}
	spool := strings.TrimSpace(run(t, "postconf", "-h", "queue_directory"))
	running := exec.Command(sbin("postfix"), "status").Run() == nil

	// restore maps a changed setting to its main.cf line ("" for none: it
	// was Postfix's default, and postconf -X takes the test's line out).
	restore := map[string]string{}
	for _, kv := range testSettings {
		if strings.TrimSpace(run(t, "postconf", "-h", kv[0])) != kv[1] {
			restore[kv[0]] = strings.TrimSpace(run(t, "postconf", "-n", kv[0]))
		}
	}
	if len(restore) > 0 {
		t.Cleanup(func() {
			for name, line := range restore {
				if line == "" {
					run(t, "postconf", "-X", name)
				} else {
					run(t, "postconf", "-e", line)
				}
			}
			if exec.Command(sbin("postfix"), "status").Run() == nil {
				run(t, "postfix", "reload")
			}
		})
		for _, kv := range testSettings {
			if _, ok := restore[kv[0]]; ok {
				run(t, "postconf", "-e", kv[0]+" = "+kv[1])
			}
		}
		if running {
			run(t, "postfix", "reload")
		}
	}
	if !running {
		if out, err := exec.Command(sbin("service"), "postfix", "start").CombinedOutput(); err != nil {
			testenv.Need(t, "postfix does not start: %v\n%s", err, out)
		}
		t.Cleanup(func() { exec.Command(sbin("service"), "postfix", "stop").Run() })
		waitFor(t, 15*time.Second, "postfix status", func() bool {
			return exec.Command(sbin("postfix"), "status").Run() == nil
		})
	}
	return spool
}

// TestIntegrationRealPostfix queues 250 messages with the real sendmail;
// qmgr defers them all. The scanner, polled while Postfix moves the files
// from maildrop to incoming, active and deferred, must end with 250
// deferred messages, and a cold scan must agree, with the arrival time
// postqueue reports for the oldest.
func TestIntegrationRealPostfix(t *testing.T) {
	spool := realPostfix(t)
	run(t, "postsuper", "-d", "ALL") // start from an empty queue
	t.Cleanup(func() { run(t, "postsuper", "-d", "ALL") })

	const n = 250
	start := time.Now()
	sendMessages(t, n)
	sent := time.Now()

	warm := NewSpool(spool)
	var st Stats
	waitFor(t, 60*time.Second, fmt.Sprintf("%d deferred messages", n), func() bool {
		var err error
		if st, err = warm.Scan(time.Now()); err != nil {
			t.Fatal(err)
		}
		return st.Messages["deferred"] == n
	})
	checkStats(t, "polled scan", st, counts(0, 0, 0, n, 0), st.Oldest)

	t0 := time.Now()
	cold, err := NewSpool(spool).Scan(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cold scan of %d real queue files: %v", n, time.Since(t0))
	checkStats(t, "cold scan", cold, counts(0, 0, 0, n, 0), st.Oldest)

	if cold.Oldest.Before(start.Add(-time.Second)) || cold.Oldest.After(sent) {
		t.Errorf("oldest arrival %v is not between the first sendmail (%v) and the last (%v)", cold.Oldest, start, sent)
	}
	arrivals := postqueueArrivals(t)
	if len(arrivals) != n {
		t.Errorf("postqueue -j lists %d messages, want %d", len(arrivals), n)
	}
	first := int64(1 << 62)
	for _, a := range arrivals {
		first = min(first, a)
	}
	if cold.Oldest.Unix() != first {
		t.Errorf("oldest arrival %d, postqueue says %d", cold.Oldest.Unix(), first)
	}

	// What the scanner must not use: qmgr sets a deferred file's mtime to
	// its next delivery attempt.
	later := 0
	err = filepath.WalkDir(filepath.Join(spool, "deferred"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if fi, err := d.Info(); err == nil && fi.ModTime().After(time.Now()) {
			later++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d deferred files have an mtime in the future (their next retry)", later, n)
	if later == 0 {
		t.Error("no deferred file has its mtime at the next retry: has Postfix changed?")
	}
}

// TestIntegrationRealSpoolAsNobody scans the real spool as a user that may
// not read it, to check the message an operator sees.
func TestIntegrationRealSpoolAsNobody(t *testing.T) {
	spool := realPostfix(t)
	want := "read postfix queue maildrop: open " + spool + "/maildrop: permission denied" +
		" (the exporter needs read access to the spool: run as root or with CAP_DAC_READ_SEARCH)"
	runAsNobody(t, "TestScanPermissionDenied", spool, want)
}

// sendMessages submits n messages with sendmail, eight at a time.
func sendMessages(t *testing.T, n int) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make(chan error, n)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			rcpt := fmt.Sprintf("rcpt%d@example.com", i)
			cmd := exec.Command(sbin("sendmail"), "-f", "mamori-itest@ci.example.test", rcpt)
			cmd.Stdin = strings.NewReader(fmt.Sprintf("To: %s\nSubject: mamori queue test %d\n\nqueued by the postfix integration test\n", rcpt, i))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("sendmail %s: %v: %s", rcpt, err, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// postqueueArrivals returns the arrival_time of every message of postqueue -j.
func postqueueArrivals(t *testing.T) []int64 {
	t.Helper()
	var arrivals []int64
	sc := bufio.NewScanner(bytes.NewReader([]byte(run(t, "postqueue", "-j"))))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m struct {
			ArrivalTime int64 `json:"arrival_time"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("postqueue -j: %v: %s", err, sc.Bytes())
		}
		arrivals = append(arrivals, m.ArrivalTime)
	}
	return arrivals
}

// sbin finds a Postfix command, also where root's PATH may not reach.
func sbin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; fileExists(p) {
		return p
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(sbin(name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// waitFor polls cond every 100 ms until it holds, failing the test after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
