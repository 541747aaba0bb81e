package host

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// procTree is a writable /proc for tests of the process cache.
type procTree struct {
	t     *testing.T
	root  string
	btime int64
	now   time.Time
}

func newProcTree(t *testing.T) *procTree {
	p := &procTree{t: t, root: t.TempDir(), btime: 1764100000, now: time.Unix(1764200000, 0)}
	if err := os.WriteFile(filepath.Join(p.root, "stat"), fmt.Appendf(nil, "btime %d\n", p.btime), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// write (re)writes /proc/PID/stat; age is how long before now the
// process started.
func (p *procTree) write(pid int, comm string, state byte, age time.Duration) {
	d := filepath.Join(p.root, fmt.Sprint(pid))
	if err := os.MkdirAll(d, 0o755); err != nil {
		p.t.Fatal(err)
	}
	start := (p.now.Add(-age).Unix() - p.btime) * clockTicks
	stat := fmt.Sprintf("%d (%s) %c 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n", pid, comm, state, start)
	if err := os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// replace removes /proc/PID and makes it anew for another process, as the
// kernel does when a PID is reused.
func (p *procTree) replace(pid int, comm string) {
	d := filepath.Join(p.root, fmt.Sprint(pid))
	if err := os.RemoveAll(d); err != nil {
		p.t.Fatal(err)
	}
	p.write(pid, comm, 'S', time.Minute)
	// A distinct stamp, as a new procfs inode gets; ext4 may reuse the inode.
	if err := os.Chtimes(d, time.Unix(1, 0), time.Unix(1, 0)); err != nil {
		p.t.Fatal(err)
	}
}

func (p *procTree) httpdUp(c *processCollector) float64 {
	t := &Target{Services: []ServiceMatch{{Service: "httpd", Processes: []ProcessName{{Name: "apache2"}}}}}
	ch := make(chan prometheus.Metric, 10)
	if err := c.update(ch, t); err != nil {
		p.t.Fatal(err)
	}
	close(ch)
	return value(p.t, collectorOf(ch), "mamori_process_up", "httpd")
}

func TestProcessCacheSeesPIDReuse(t *testing.T) {
	p := newProcTree(t)
	p.write(500, "worker", 'S', time.Hour)
	c := newProcessCollector(p.root, func() time.Time { return p.now })
	if up := p.httpdUp(c); up != 0 {
		t.Fatalf("httpd up %v with only a worker", up)
	}
	p.replace(500, "apache2")
	if up := p.httpdUp(c); up != 1 {
		t.Fatal("a service process that reuses a cached PID was not seen")
	}
}

func TestProcessCacheSeesAYoungProcessExec(t *testing.T) {
	p := newProcTree(t)
	p.write(600, "sh", 'S', time.Second) // a wrapper that will exec the daemon
	c := newProcessCollector(p.root, func() time.Time { return p.now })
	if up := p.httpdUp(c); up != 0 {
		t.Fatal("sh counted as httpd")
	}
	p.write(600, "apache2", 'S', time.Second)
	if up := p.httpdUp(c); up != 1 {
		t.Fatal("a young process that exec'd into the service was not seen")
	}
}

func TestProcessCacheRereadsServiceProcesses(t *testing.T) {
	p := newProcTree(t)
	p.write(700, "apache2", 'S', time.Hour)
	c := newProcessCollector(p.root, func() time.Time { return p.now })
	if up := p.httpdUp(c); up != 1 {
		t.Fatal("apache2 not seen")
	}
	p.write(700, "apache2", 'Z', time.Hour) // died, not reaped yet
	if up := p.httpdUp(c); up != 0 {
		t.Fatal("a zombie service process still counts")
	}
	if err := os.RemoveAll(filepath.Join(p.root, "700")); err != nil {
		t.Fatal(err)
	}
	p.httpdUp(c)
	if len(c.cache) != 0 {
		t.Fatalf("cache keeps %d gone processes", len(c.cache))
	}
}

// collectorOf wraps collected metrics back into a collector for value().
type collectorOf chan prometheus.Metric

func (c collectorOf) Describe(chan<- *prometheus.Desc) {}
func (c collectorOf) Collect(ch chan<- prometheus.Metric) {
	for m := range c {
		ch <- m
	}
}

// ns makes /proc/PID/ns/pid point at namespace n, as the kernel shows it.
func (p *procTree) ns(pid int, n int) {
	d := filepath.Join(p.root, fmt.Sprint(pid), "ns")
	if err := os.MkdirAll(d, 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Symlink(fmt.Sprintf("pid:[%d]", n), filepath.Join(d, "pid")); err != nil {
		p.t.Fatal(err)
	}
}

// TestContainerProcessesAreNotTheHosts: an apache2 in a container (another
// PID namespace than the host's init) does not make the host's httpd up.
func TestContainerProcessesAreNotTheHosts(t *testing.T) {
	p := newProcTree(t)
	p.write(1, "systemd", 'S', time.Hour)
	p.ns(1, 4026531836)
	p.write(800, "apache2", 'S', time.Hour)
	p.ns(800, 4026532999)
	c := newProcessCollector(p.root, func() time.Time { return p.now })
	if up := p.httpdUp(c); up != 0 {
		t.Fatal("a container's apache2 counted as the host's")
	}
	p.write(801, "apache2", 'S', time.Hour)
	p.ns(801, 4026531836)
	if up := p.httpdUp(c); up != 1 {
		t.Fatal("the host's own apache2 not counted")
	}
}
