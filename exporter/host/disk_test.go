package host

import (
	"bufio"
	"bytes"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestDiskAgreesWithDf compares the real statfs path with df itself on
// every filesystem both list: same size, same available space, same Use%.
func TestDiskAgreesWithDf(t *testing.T) {
	df, err := exec.LookPath("df")
	if err != nil {
		t.Skip("no df on this machine")
	}
	out, err := exec.Command(df, "-P", "-B1").Output()
	if err != nil {
		t.Skipf("df failed: %v", err)
	}
	type row struct{ size, avail, pct float64 }
	want := map[string]row{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		size, _ := strconv.ParseFloat(f[1], 64)
		avail, _ := strconv.ParseFloat(f[3], 64)
		pct, _ := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		want[strings.Join(f[5:], " ")] = row{size, avail, pct}
	}

	c := newDiskCollector("/proc", statfs, 5*time.Second, log.NewNopLogger())
	ch := make(chan prometheus.Metric, 1000)
	if err := c.update(ch, &Target{}); err != nil {
		t.Fatal(err)
	}
	close(ch)
	got := map[string]*row{}
	for m := range ch {
		mp, v := labelAndValue(t, m, "mountpoint")
		r := got[mp]
		if r == nil {
			r = &row{}
			got[mp] = r
		}
		switch m.Desc() {
		case fsSizeDesc:
			r.size = v
		case fsAvailDesc:
			r.avail = v
		case fsUsedDesc:
			r.pct = math.Ceil(v * 100) // df rounds Use% up
		}
	}
	if _, ok := got["/"]; !ok {
		t.Fatalf("root filesystem not reported: %v", got)
	}
	compared := 0
	for mp, g := range got {
		w, ok := want[mp]
		if !ok {
			continue
		}
		compared++
		// Other processes write between the two reads: allow 64 MiB.
		if math.Abs(g.size-w.size) > 0 || math.Abs(g.avail-w.avail) > 64<<20 || math.Abs(g.pct-w.pct) > 1 {
			t.Errorf("%s: got size %.0f avail %.0f use %.0f%%, df says %.0f %.0f %.0f%%", mp, g.size, g.avail, g.pct, w.size, w.avail, w.pct)
		}
	}
	if compared == 0 {
		t.Fatal("no filesystem in common with df")
	}
}

// TestStuckMountDoesNotHangTheScrape uses a statfs that blocks, as one on a
// dead NFS server does: the scrape ends at the timeout, reports the failure,
// and the next scrape skips the mount at once.
func TestStuckMountDoesNotHangTheScrape(t *testing.T) {
	release := make(chan struct{})
	var calls sync.WaitGroup
	blocking := func(path string) (FSStats, error) {
		if path == "/home" {
			calls.Add(1)
			defer calls.Done()
			<-release
		}
		return fixtureStatfs(path)
	}
	c := newDiskCollector("testdata/proc", blocking, 100*time.Millisecond, log.NewNopLogger())
	for i, limit := range []time.Duration{2 * time.Second, 50 * time.Millisecond} {
		ch := make(chan prometheus.Metric, 100)
		start := time.Now()
		err := c.update(ch, &Target{})
		took := time.Since(start)
		close(ch)
		if took > limit {
			t.Errorf("scrape %d took %v", i, took)
		}
		if err == nil || !strings.Contains(err.Error(), "/home") {
			t.Errorf("scrape %d: error %v does not name the stuck mount", i, err)
		}
		n := 0
		for range ch {
			n++
		}
		if n != 6 { // three metrics for each of the two healthy mounts
			t.Errorf("scrape %d: %d metrics, want 6", i, n)
		}
	}
	close(release)
	calls.Wait()
	ch := make(chan prometheus.Metric, 100)
	if err := c.update(ch, &Target{}); err != nil {
		t.Errorf("after the mount answered again: %v", err)
	}
}

func TestRealFilesystemsSkipsPseudoAndDuplicates(t *testing.T) {
	ms := realFilesystems([]mount{
		{device: "1:1", mountpoint: "/srv/bind", fstype: "ext4"},
		{device: "1:1", mountpoint: "/", fstype: "ext4"},
		{device: "0:1", mountpoint: "/proc", fstype: "proc"},
		{device: "0:2", mountpoint: "/dev/shm", fstype: "tmpfs"},
		{device: "0:3", mountpoint: "/var/lib/docker/overlay2/x/merged", fstype: "overlay"},
		{device: "0:4", mountpoint: "/", fstype: "overlay"}, // a container's root is real
	})
	var got []string
	for _, m := range ms {
		got = append(got, m.device+" "+m.mountpoint)
	}
	if strings.Join(got, ",") != "1:1 /,0:4 /" {
		t.Fatalf("got %v", got)
	}
}

func labelAndValue(t *testing.T, m prometheus.Metric, label string) (string, float64) {
	t.Helper()
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	for _, l := range pb.GetLabel() {
		if l.GetName() == label {
			return l.GetValue(), pb.GetGauge().GetValue()
		}
	}
	t.Fatalf("no label %s", label)
	return "", 0
}
