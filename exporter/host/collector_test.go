package host

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/mamori-ops/mamori/internal/testenv"
	"github.com/mamori-ops/mamori/inventory"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fixtureStatfs stands in for statfs(2) on the fixture's mountpoints, which
// do not exist on the test machine; the real call is tested against df in
// TestDiskAgreesWithDf.
func fixtureStatfs(path string) (FSStats, error) {
	switch path {
	case "/":
		return FSStats{Blocks: 1000, Bfree: 400, Bavail: 350, Bsize: 4096}, nil
	case "/var/www":
		return FSStats{Blocks: 2000, Bfree: 2000, Bavail: 2000, Bsize: 1024}, nil
	case "/home":
		return FSStats{Blocks: 100, Bfree: 5, Bavail: 0, Bsize: 4096}, nil
	}
	return FSStats{}, os.ErrNotExist
}

const fixtureInventory = `customers:
  - name: acme
    plan: plus
    contacts: [ops@acme.example]
    hosts:
      - name: box
        address: 127.0.0.1
        os_family: debian
        checks:
          url: {url: "http://127.0.0.1/"}
          mailq: {thresholds: {alert: 201}}
          load: {thresholds: {restart: 6}}
`

func fixtureTarget(t testing.TB) *Target {
	t.Helper()
	inv, err := inventory.Parse([]byte(fixtureInventory), "fixture.yml")
	if err != nil {
		t.Fatal(err)
	}
	h, _ := inv.Host("box")
	return TargetFor(h)
}

func fixtureCollector(t testing.TB, spool string) *Collector {
	t.Helper()
	return New(Options{
		ProcRoot: "testdata/proc",
		SysRoot:  "testdata/sys",
		SpoolDir: spool,
		Statfs:   fixtureStatfs,
		Now:      func() time.Time { return time.Unix(1795680000, 0) },
	}, fixtureTarget(t))
}

// TestGolden compares the whole host exposition (less durations, which
// vary) with testdata/host.golden; run with -update to rewrite it.
func TestGolden(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(fixtureCollector(t, "postfix/testdata/spool"))
	got := gatherText(t, reg, "mamori_collector_duration_seconds")
	golden := filepath.Join("testdata", "host.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("host exposition differs from %s (run go test -update):\n%s", golden, got)
	}
}

// TestPromtoolCheckMetrics runs promtool's linter over the full output.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Need(t, "promtool not installed (Debian package prometheus)")
		return
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(fixtureCollector(t, t.TempDir()))
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(gatherText(t, reg))
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestProcessPresence(t *testing.T) {
	c := fixtureCollector(t, t.TempDir())
	for _, tc := range []struct {
		service string
		up      float64
		count   float64
		why     string
	}{
		{"httpd", 1, 2, "apache2 under its Debian name; the zombie is skipped"},
		{"mariadb", 1, 1, "mariadbd alias"},
		{"postfix", 1, 1, "master only where argv[0] is Postfix's"},
		{"sshd", 1, 1, "a daemon that retitles its argv keeps its comm"},
		{"spamd", 1, 2, "'spamd child' and '/usr/sbin/spamd' titles"},
		{"fail2ban", 1, 1, "a script: comm is the script's name, 15 characters"},
		{"rsyslog", 1, 1, "rsyslogd"},
		{"dovecot", 1, 1, "imap-login is not the dovecot master"},
		{"xinetd", 0, 0, "absent: 0 from the first scrape, not missing"},
		{"sw-cp-server", 0, 0, "absent"},
	} {
		up := value(t, c, "mamori_process_up", tc.service)
		n := value(t, c, "mamori_processes", tc.service)
		if up != tc.up || n != tc.count {
			t.Errorf("%s: up %v count %v, want %v %v (%s)", tc.service, up, n, tc.up, tc.count, tc.why)
		}
	}
}

func TestOldestProcessStartTime(t *testing.T) {
	c := fixtureCollector(t, t.TempDir())
	// btime 1764100000 + 5000 ticks / 100: the zombie's earlier start is ignored.
	if got := value(t, c, "mamori_process_start_time_seconds", "httpd"); got != 1764100050 {
		t.Errorf("httpd start = %v", got)
	}
}

func TestParseStat(t *testing.T) {
	comm, state, start, ok := parseStat([]byte("42 (a) b) c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 19 20\n"))
	if !ok || string(comm) != "a) b) c" || state != 'S' || start != 777 {
		t.Fatalf("got %q %c %d %v", comm, state, start, ok)
	}
	for _, bad := range []string{"", "42 (x", "42 x) S", "42 (x) S 1 2"} {
		if _, _, _, ok := parseStat([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string]int{"0": 1, "0-3": 4, "0-1,3\n": 3, "0,2,4-7": 6} {
		if got, err := parseCPUList(in); err != nil || got != want {
			t.Errorf("%q: %d %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "a", "3-1", "0-x"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseLoad(t *testing.T) {
	if l, err := parseLoad("0.52 1.25 2.00 2/345 12345\n"); err != nil || l != [3]float64{0.52, 1.25, 2} {
		t.Fatalf("%v %v", l, err)
	}
	if _, err := parseLoad("0.1 x"); err == nil {
		t.Fatal("short line accepted")
	}
}

func TestParseMountinfo(t *testing.T) {
	ms, err := parseMountinfo(strings.NewReader("27 21 254:16 /backup /srv/with\\040space rw shared:4 master:2 - xfs /dev/vdb rw\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].mountpoint != "/srv/with space" || ms[0].fstype != "xfs" || ms[0].source != "/dev/vdb" || ms[0].device != "254:16" {
		t.Fatalf("%+v", ms)
	}
	if _, err := parseMountinfo(strings.NewReader("1 2 3\n")); err == nil {
		t.Fatal("malformed line accepted")
	}
}

func TestCollectorFailureIsReported(t *testing.T) {
	c := New(Options{ProcRoot: t.TempDir(), SysRoot: t.TempDir(), SpoolDir: t.TempDir()}, fixtureTarget(t))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	out := string(gatherText(t, reg, "mamori_collector_duration_seconds"))
	for _, want := range []string{
		`mamori_collector_success{collector="load"} 0`,
		`mamori_collector_success{collector="swap"} 0`,
		`mamori_collector_success{collector="disk"} 0`,
		`mamori_collector_success{collector="threshold"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
}

// value collects c and returns the series of name with that service label,
// failing when it is missing.
func value(t *testing.T, c prometheus.Collector, name, service string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "service" && l.GetValue() == service {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{service=%q}", name, service)
	return 0
}

func gatherText(t testing.TB, g prometheus.Gatherer, exclude ...string) []byte {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		skip := false
		for _, e := range exclude {
			skip = skip || mf.GetName() == e
		}
		if !skip {
			if err := enc.Encode(mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b.Bytes()
}
