package host

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// makeProcTree writes a /proc with n processes, a tenth of them services
// of the target, the rest other programs, and the files the other host
// collectors read.
func makeProcTree(b *testing.B, n int) (procRoot, sysRoot string) {
	b.Helper()
	dir := b.TempDir()
	procRoot = filepath.Join(dir, "proc")
	names := []string{"apache2", "mariadbd", "dovecot", "sshd", "rsyslogd", "spamd", "fail2ban-server", "xinetd", "master", "qmgr"}
	for pid := 1; pid <= n; pid++ {
		comm := fmt.Sprintf("worker-%d", pid%37)
		cmd := "/usr/bin/" + comm
		if pid%10 == 0 {
			comm = names[(pid/10)%len(names)]
			cmd = "/usr/sbin/" + comm
			if comm == "master" {
				cmd = "/usr/lib/postfix/sbin/master"
			}
		}
		d := filepath.Join(procRoot, fmt.Sprint(pid))
		must(b, os.MkdirAll(d, 0o755))
		stat := fmt.Sprintf("%d (%s) S 1 %d %d 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 %d 10000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n", pid, comm, pid, pid, 1000+pid)
		must(b, os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644))
		must(b, os.WriteFile(filepath.Join(d, "cmdline"), []byte(cmd+"\x00-d\x00"), 0o644))
	}
	for _, f := range []string{"stat", "loadavg", "meminfo", "self/mountinfo"} {
		data, err := os.ReadFile(filepath.Join("testdata/proc", f))
		must(b, err)
		must(b, os.MkdirAll(filepath.Dir(filepath.Join(procRoot, f)), 0o755))
		must(b, os.WriteFile(filepath.Join(procRoot, f), data, 0o644))
	}
	return procRoot, "testdata/sys"
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkProcessScan1000 is process presence alone at 1,000 processes.
func BenchmarkProcessScan1000(b *testing.B) {
	procRoot, _ := makeProcTree(b, 1000)
	benchProcessScan(b, procRoot)
}

func benchProcessScan(b *testing.B, procRoot string) {
	c := newProcessCollector(procRoot, time.Now)
	t := fixtureTarget(b)
	ch := make(chan prometheus.Metric, 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.update(ch, t); err != nil {
			b.Fatal(err)
		}
		for len(ch) > 0 {
			<-ch
		}
	}
}

// makeSpool writes a Postfix spool holding n deferred messages, each a copy
// of a real queue file from the postfix package's fixture, spread over the
// sixteen hash directories as Postfix spreads them.
func makeSpool(b *testing.B, n int) string {
	b.Helper()
	real, err := os.ReadFile("postfix/testdata/spool/deferred/3/3AFF9C45B3")
	must(b, err)
	spool := filepath.Join(b.TempDir(), "spool")
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%X%09X", i%16, i)
		d := filepath.Join(spool, "deferred", id[:1])
		if i < 16 {
			must(b, os.MkdirAll(d, 0o700))
		}
		must(b, os.WriteFile(filepath.Join(d, id), real, 0o700))
	}
	for _, q := range []string{"maildrop", "incoming", "active", "hold"} {
		must(b, os.MkdirAll(filepath.Join(spool, q), 0o700))
	}
	// A directory changed within the last two seconds is listed again at
	// every scrape (its timestamp may hide a change); age them all, as on a
	// server whose queue is not changing, to measure the steady state.
	old := time.Now().Add(-time.Minute)
	must(b, filepath.WalkDir(spool, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chtimes(p, old, old)
		}
		return err
	}))
	return spool
}

// BenchmarkHostScrape is the whole host scrape, every collector, with
// 1,000 processes and 10,000 queued messages: the figure in the README.
func BenchmarkHostScrape(b *testing.B) {
	procRoot, sysRoot := makeProcTree(b, 1000)
	c := New(Options{ProcRoot: procRoot, SysRoot: sysRoot, SpoolDir: makeSpool(b, 10000), Statfs: fixtureStatfs}, fixtureTarget(b))
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err != nil { // the first scrape reads every queue file once
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProcessScanRealProc is process presence on this machine's own
// /proc, whose files the kernel formats on every read.
func BenchmarkProcessScanRealProc(b *testing.B) { benchProcessScan(b, "/proc") }
