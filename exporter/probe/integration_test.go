package probe

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/internal/testenv"
	"github.com/mamori-ops/mamori/inventory"
	"github.com/mamori-ops/mamori/runbook"
)

// testCA is the CA configure-daemons.sh signs the daemons' certificate with.
const testCA = "/etc/ssl/mamori-test/ca.pem"

// needDaemons skips (fails under CI=true) unless the integration run is on
// and configure-daemons.sh has run.
func needDaemons(t *testing.T) {
	t.Helper()
	testenv.RequireIntegration(t)
	if os.Geteuid() != 0 {
		testenv.Need(t, "the probe integration tests run as root (ICMP, daemon logs)")
	}
	if _, err := os.Stat(testCA); err != nil {
		testenv.Need(t, "%s is missing: run scripts/setup-test.sh (it runs exporter/probe/testdata/configure-daemons.sh)", testCA)
	}
}

func daemonsHandler(t *testing.T, args ...string) (http.Handler, *inventory.Inventory) {
	t.Helper()
	inv, err := inventory.LoadFile("testdata/inventory-daemons.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, append([]string{"--probe.tls-ca-file=" + testCA}, args...)...)
	return NewHandler(cfg, func() *inventory.Inventory { return inv }, NewMetrics(nil), testLogger(t)), inv
}

// TestRealDaemons probes every outside check of a plus-plan host against
// the real Debian daemons: every one succeeds, every TLS check reports its
// certificate's expiry.
func TestRealDaemons(t *testing.T) {
	needDaemons(t)
	h, inv := daemonsHandler(t)
	host, _ := inv.Host("localhost")
	start := time.Now()
	code, body := get(t, h, "/probe?target=localhost", "10")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	t.Logf("all checks in %s", time.Since(start))
	mfs := metrics(t, body)
	n := 0
	for _, c := range host.CheckList() {
		if c.Kind != runbook.Probe {
			continue
		}
		n++
		port := ""
		if c.Protocol != runbook.ICMP {
			port = itoa(c.Port)
		}
		if c.ID == "url" {
			port = "80"
		}
		if v, ok := valueOf(mfs, "mamori_probe_success", "check", c.ID, "port", port); !ok || v != 1 {
			_, dbg := get(t, h, "/probe?target=localhost&debug=true&check="+c.ID, "10")
			t.Errorf("%s: mamori_probe_success = %v (present %t)\n%s", c.ID, v, ok, dbg)
		}
		tlsExpected := c.TLS || c.Override.StartTLS
		if _, ok := valueOf(mfs, "mamori_tls_cert_expiry_timestamp_seconds", "check", c.ID, "port", port); ok != tlsExpected {
			t.Errorf("%s: expiry reported %t, want %t", c.ID, ok, tlsExpected)
		}
	}
	if n != 14 {
		t.Errorf("probed %d outside checks, want the plus plan's 14", n)
	}
	promtoolCheck(t, body)
}

// promtoolCheck lints an exposition with Prometheus' own promtool.
func promtoolCheck(t *testing.T, body string) {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		testenv.Need(t, "promtool (Debian's prometheus package)")
	}
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestRealDaemonsFailures makes the real daemons fail the ways they fail
// without stopping them (other tests use them): wrong ports and wrong
// dialogues.
func TestRealDaemonsFailures(t *testing.T) {
	needDaemons(t)
	inv := parseInventory(t, `
customers:
  - name: local
    plan: plus
    contacts: [root@localhost]
    hosts:
      - name: localhost
        address: 127.0.0.1
        checks:
          https: {port: 80}           # TLS to a plain HTTP server
          plesk: {port: 443}          # the test CA is not trusted below
          smtp: {port: 110}           # dovecot's POP3 greeting
          imap: {port: 21}            # vsftpd's FTP greeting
          pop3: {port: 1}             # nothing listens
          ssh: {port: 143}            # dovecot's IMAP greeting
          ftp: {port: 22}             # sshd's identification
          mysql: {port: 80}           # apache answers nothing until asked
          url: {url: "http://localhost/no-such-page"}
          http: {body_match: "no such text"}
`)
	h := NewHandler(testConfig(t), func() *inventory.Inventory { return inv }, NewMetrics(nil), testLogger(t))
	code, body := get(t, h, "/probe?target=localhost&check=https&check=plesk&check=smtp&check=imap&check=pop3&check=ssh&check=ftp&check=mysql&check=url&check=http", "3")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	mfs := metrics(t, body)
	for _, w := range []struct{ check, port, reason string }{
		{"https", "80", "tls"},
		{"plesk", "443", "tls"},
		{"smtp", "110", "banner"},
		{"imap", "21", "banner"},
		{"pop3", "1", "refused"},
		{"ssh", "143", "banner"},
		{"ftp", "22", "banner"},
		{"mysql", "80", "timeout"},
		{"url", "80", "http_status"},
		{"http", "80", "body_mismatch"},
	} {
		if v, _ := valueOf(mfs, "mamori_probe_failure", "check", w.check, "port", w.port, "reason", w.reason); v != 1 {
			_, dbg := get(t, h, "/probe?debug=true&target=localhost&check="+w.check, "3")
			t.Errorf("%s: failure{reason=%q} = %v\n%s", w.check, w.reason, v, dbg)
		}
	}
	// The plesk probe failed verification but still read the expiry.
	if _, ok := valueOf(mfs, "mamori_tls_cert_expiry_timestamp_seconds", "check", "plesk", "port", "443"); !ok {
		t.Error("a certificate that does not verify still reports its expiry")
	}
}

func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestICMP pings 127.0.0.0/8 with raw sockets, and with datagram sockets
// where net.ipv4.ping_group_range lets this process (else reason internal).
func TestICMP(t *testing.T) {
	needDaemons(t)
	s := testSettings(t)
	for _, addr := range []string{"127.0.0.1", "127.0.0.77"} {
		res := probeOnce(t, s, runbook.ICMP, Target{Check: "ping", Host: addr}, 3*time.Second, "")
		if res.Ping == nil || res.Ping.Received != 3 || res.Ping.Loss() != 0 || res.Ping.RTT <= 0 {
			t.Errorf("%s: %+v", addr, res.Ping)
		}
	}
	// A datagram socket works where the kernel's range admits one of the
	// test's groups (what auto decides by), and is the prober's own failure
	// (internal) where it does not.
	raw, err := icmpPrivileged(ICMPSocketAuto)
	if err != nil {
		t.Fatal(err)
	}
	want := ReasonInternal
	if !raw {
		want = ""
	}
	probeOnce(t, testSettings(t, "--probe.icmp-socket=datagram"), runbook.ICMP, Target{Check: "ping", Host: "127.0.0.1"}, 3*time.Second, want)
}

// dropHost makes a network namespace whose address receives packets and
// never answers (its route back is a blackhole), as a host behind a
// dropping firewall does, and returns that address. Only 198.18.0.0/15 is
// used, behind ENV.md's guard route.
func dropHost(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		testenv.Need(t, "iproute2's ip command")
	}
	pid := os.Getpid()
	ns := fmt.Sprintf("mamori-probe-drop-%d", pid)
	host, peer := fmt.Sprintf("mpd%dh", pid%100000), fmt.Sprintf("mpd%dn", pid%100000)
	net3 := fmt.Sprintf("198.19.%d", 200+pid%50)
	// The guard route keeps 198.18.0.0/15 on this machine whatever happens;
	// it stays (other tests may rely on it).
	if out, err := exec.Command("ip", "route", "add", "unreachable", "198.18.0.0/15", "metric", "4000").CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "File exists") {
		t.Fatalf("guard route: %v: %s", err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", host).Run()
		_ = exec.Command("ip", "netns", "del", ns).Run()
	})
	runCmd(t, "ip", "netns", "add", ns)
	runCmd(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer)
	runCmd(t, "ip", "link", "set", peer, "netns", ns)
	runCmd(t, "ip", "addr", "add", net3+".1/30", "dev", host)
	runCmd(t, "ip", "link", "set", host, "up")
	runCmd(t, "ip", "-n", ns, "addr", "add", net3+".2/30", "dev", peer)
	runCmd(t, "ip", "-n", ns, "link", "set", peer, "up")
	runCmd(t, "ip", "-n", ns, "route", "add", "blackhole", net3+".1/32")
	// No ARP needed (nor answered): the peer's MAC is known.
	mac := strings.TrimSpace(runCmd(t, "ip", "netns", "exec", ns, "cat", "/sys/class/net/"+peer+"/address"))
	runCmd(t, "ip", "neigh", "replace", net3+".2", "lladdr", mac, "dev", host, "nud", "permanent")
	return net3 + ".2"
}

// TestHostThatDropsPackets: every check of a host that drops packets fails
// with reason timeout, and the scrape is answered inside its timeout.
func TestHostThatDropsPackets(t *testing.T) {
	needDaemons(t)
	addr := dropHost(t)
	inv := parseInventory(t, fmt.Sprintf(`
customers:
  - name: c
    plan: plus
    contacts: [a@b.example]
    hosts:
      - name: dropped
        address: %s
        checks:
          url: {url: "http://%[1]s/"}
`, addr))
	h := NewHandler(testConfig(t), func() *inventory.Inventory { return inv }, nil, testLogger(t))
	start := time.Now()
	code, body := get(t, h, "/probe?target=dropped", "2")
	el := time.Since(start)
	if code != http.StatusOK || el > 2*time.Second || el < 1400*time.Millisecond {
		t.Fatalf("status %d after %s, want 200 within the 2s scrape timeout", code, el)
	}
	mfs := metrics(t, body)
	n := 0
	for _, m := range mfs["mamori_probe_success"].GetMetric() {
		n++
		check, port := m.GetLabel()[0].GetValue(), m.GetLabel()[1].GetValue()
		if v, _ := valueOf(mfs, "mamori_probe_failure", "check", check, "port", port, "reason", "timeout"); v != 1 || m.GetGauge().GetValue() != 0 {
			t.Errorf("%s: success %v, timeout %v", check, m.GetGauge().GetValue(), v)
		}
	}
	if n != 14 {
		t.Errorf("%d checks, want 14", n)
	}
	if v, ok := valueOf(mfs, "mamori_probe_icmp_packet_loss_ratio", "check", "ping", "port", ""); !ok || v != 1 {
		t.Errorf("ping loss %v", v)
	}
}

// TestMySQLNeverBlocksTheProber: against the real MariaDB with
// max_connect_errors lowered to 3, probes that hang up after the greeting
// get the prober's address blocked (error 1129, reason blocked), and probes
// that log in as the probe account and quit (the default) never do. The
// probes come from their own addresses in 127.0.0.0/8: MariaDB exempts
// 127.0.0.1 from its host cache.
func TestMySQLNeverBlocksTheProber(t *testing.T) {
	needDaemons(t)
	if _, err := exec.LookPath("mysql"); err != nil {
		testenv.Need(t, "the mysql client")
	}
	sql := func(q string) string {
		t.Helper()
		return strings.TrimSpace(runCmd(t, "mysql", "-N", "-B", "-e", q))
	}
	if sql("SELECT COUNT(*) FROM mysql.user WHERE user = 'mamori_probe'") == "0" {
		testenv.Need(t, "the mamori_probe account (configure-daemons.sh)")
	}
	saved := sql("SELECT @@global.max_connect_errors")
	sql("SET GLOBAL max_connect_errors = 3; FLUSH HOSTS")
	t.Cleanup(func() { sql("SET GLOBAL max_connect_errors = " + saved + "; FLUSH HOSTS") })

	target := Target{Check: "mysql", Host: "127.0.0.1", Port: 3306}
	probe := func(source, user string) Result {
		s := testSettings(t, "--probe.source-address="+source, "--probe.mysql-user="+user)
		r := &Runner{s: s, probers: newProbers(s)}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return r.run(ctx, target, runbook.MySQL, nil)
	}
	var rude []Reason
	for i := 0; i < 6; i++ {
		rude = append(rude, probe("127.0.0.91", "").Reason)
	}
	if rude[0] != "" || rude[5] != ReasonBlocked {
		t.Errorf("hanging up after the greeting: reasons %q, want success and then %q (error 1129)", rude, ReasonBlocked)
	}
	for i := 0; i < 20; i++ {
		if res := probe("127.0.0.92", "mamori_probe"); !res.Success {
			t.Fatalf("polite probe %d: %s: %v", i, res.Reason, res.Err)
		}
	}
}
