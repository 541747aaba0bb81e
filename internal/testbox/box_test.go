package testbox

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mamori-ops/mamori/internal/testenv"
)

// run is b.Run with a bound, failing the test on a transport error.
func sshRun(t *testing.T, b *Box, command string) (string, int, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t0 := time.Now()
	out, status, err := b.Run(ctx, command)
	if err != nil {
		t.Fatalf("ssh %q: %v", command, err)
	}
	return strings.TrimSpace(string(out)), status, time.Since(t0)
}

func httpClient(roots *x509.CertPool, serverName string, insecure bool) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			Proxy:           nil, // only the box, never a proxy
			TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName, InsecureSkipVerify: insecure},
		},
	}
}

func get(t *testing.T, c *http.Client, url string) (int, string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(body), nil
}

// TestBox is the customer server as the remediator sees it: SSH with a
// pinned host key, systemctl over SSH with real failures, HTTP(S) from the
// machine, fault injection inside, a host that stops answering, and nothing
// left once it is stopped.
func TestBox(t *testing.T) {
	testenv.RequireIntegration(t)
	b := StartT(t, Options{})
	t.Logf("timing: boot to SSH %s, boot to every unit started %s", b.Timings.SSH.Round(time.Millisecond), b.Timings.Booted.Round(time.Millisecond))
	if !strings.HasPrefix(b.Addr, "198.18.") || !strings.HasSuffix(b.Addr, ".2") || b.SSHPort != 22 {
		t.Fatalf("address %s:%d", b.Addr, b.SSHPort)
	}

	t.Run("ssh with the pinned host key", func(t *testing.T) {
		cfg, err := b.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		// A known_hosts naming another key for the box: the handshake fails.
		other, err := newSSHKeys("other")
		if err != nil {
			t.Fatal(err)
		}
		wrong := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(wrong, other.knownHosts(b.Addr, b.Name), 0o600); err != nil {
			t.Fatal(err)
		}
		if cfg.HostKeyCallback, err = knownhosts.New(wrong); err != nil {
			t.Fatal(err)
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(b.Addr, "22"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _, _, err = ssh.NewClientConn(conn, net.JoinHostPort(b.Addr, "22"), cfg)
		var keyErr *knownhosts.KeyError
		if !errors.As(err, &keyErr) || len(keyErr.Want) == 0 {
			t.Fatalf("handshake with the wrong known_hosts: %v, want a key mismatch", err)
		}
		out, status, _ := sshRun(t, b, "hostname; id -u")
		if out != b.Name+"\n0" || status != 0 {
			t.Fatalf("hostname, id: %q, status %d", out, status)
		}
	})

	t.Run("every service runs", func(t *testing.T) {
		units := DefaultUnits()
		out, status, _ := sshRun(t, b, "systemctl is-active "+strings.Join(units, " "))
		if status != 0 || strings.Count(out, "active") != len(units) || strings.Contains(out, "inactive") {
			t.Fatalf("systemctl is-active: status %d\n%s", status, out)
		}
		out, _, _ = sshRun(t, b, "ss -Hltn | awk '{print $4}' | sed 's/.*://' | sort -nu | tr '\\n' ' '")
		for _, port := range []string{"21", "22", "25", "80", "110", "143", "443", "465", "587", "993", "995", "3306", "8443"} {
			if !strings.Contains(" "+out+" ", " "+port+" ") {
				t.Errorf("nothing listens on %s: %s", port, out)
			}
		}
	})

	t.Run("submission with SASL", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		t.Cleanup(func() { _, _ = b.Exec(context.Background(), "postsuper", "-d", "ALL") })
		if err := b.MailAccount(ctx, "shop", "Shop-Passw0rd"); err != nil {
			t.Fatal(err)
		}
		if err := b.Submit(ctx, "shop", "not-the-password", "shop@"+b.Name, "someone@example.net", 1); err == nil || !strings.Contains(err.Error(), "535") {
			t.Fatalf("submission with a wrong password: %v, want 535", err)
		}
		if err := b.Submit(ctx, "shop", "Shop-Passw0rd", "shop@"+b.Name, "someone@example.net", 3); err != nil {
			t.Fatal(err)
		}
		// Queued (example.net has no route from the box), with the SASL
		// user the remediator's queue analysis reads.
		out, err := b.Exec(ctx, "postqueue", "-j")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var m struct {
				ID string `json:"queue_id"`
			}
			if json.Unmarshal([]byte(line), &m) == nil && m.ID != "" {
				ids = append(ids, m.ID)
			}
		}
		if len(ids) != 3 {
			t.Fatalf("postqueue -j: %d messages, want 3:\n%s", len(ids), out)
		}
		pc, err := b.Exec(ctx, "postcat", "-e", "-q", ids[0])
		if err != nil || !strings.Contains(string(pc), "named_attribute: sasl_username=shop") {
			t.Fatalf("postcat -e -q %s: %v\n%s", ids[0], err, pc)
		}
	})

	t.Run("restart apache2 over ssh", func(t *testing.T) {
		if out, status, _ := sshRun(t, b, "systemctl is-active apache2"); out != "active" || status != 0 {
			t.Fatalf("is-active: %q %d", out, status)
		}
		if _, status, _ := sshRun(t, b, "systemctl stop apache2"); status != 0 {
			t.Fatalf("stop: status %d", status)
		}
		if out, status, _ := sshRun(t, b, "systemctl is-active apache2"); out != "inactive" || status != 3 {
			t.Fatalf("is-active after stop: %q %d", out, status)
		}
		c := httpClient(nil, "", false)
		if _, _, err := get(t, c, "http://"+b.Addr+"/"); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("HTTP with apache2 stopped: %v, want connection refused", err)
		}
		out, status, took := sshRun(t, b, "systemctl restart apache2")
		t.Logf("timing: systemctl restart apache2 over SSH %s", took.Round(time.Millisecond))
		if status != 0 {
			t.Fatalf("restart: %q %d", out, status)
		}
		if out, status, _ := sshRun(t, b, "systemctl is-active apache2"); out != "active" || status != 0 {
			t.Fatalf("is-active after restart: %q %d", out, status)
		}
		code, body, err := get(t, c, "http://"+b.Addr+"/")
		if err != nil || code != 200 || body != "mamori testbox "+b.Name+"\n" {
			t.Fatalf("HTTP: %d %q %v", code, body, err)
		}
	})

	t.Run("https and the panel", func(t *testing.T) {
		pem, err := os.ReadFile(b.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		code, body, err := get(t, httpClient(roots, b.Name, false), "https://"+b.Addr+"/")
		if err != nil || code != 200 || !strings.Contains(body, "mamori testbox") {
			t.Fatalf("HTTPS 443, verified with the box's CA: %d %q %v", code, body, err)
		}
		if _, _, err := get(t, httpClient(roots, b.Name, false), "https://"+b.Addr+":8443/"); err == nil {
			t.Fatal("the panel's certificate verified; want a self-signed one")
		}
		code, body, err = get(t, httpClient(nil, "", true), "https://"+b.Addr+":8443/")
		if err != nil || code != 200 || body != "mamori testbox "+b.Name+" panel\n" {
			t.Fatalf("panel 8443: %d %q %v", code, body, err)
		}
		// The panel's process is sw-cp-serverd, not apache2.
		out, err := b.Exec(context.Background(), "pidof", "sw-cp-serverd")
		if err != nil || len(strings.Fields(string(out))) == 0 {
			t.Fatalf("pidof sw-cp-serverd: %q %v", out, err)
		}
	})

	t.Run("real failures", func(t *testing.T) {
		out, status, _ := sshRun(t, b, "systemctl restart nosuch")
		if status != 5 || !strings.Contains(out, "Unit nosuch.service not found.") {
			t.Fatalf("unknown unit: %q, status %d, want 5", out, status)
		}
		// A broken configuration: systemd's own message, status 1.
		if _, err := b.Exec(context.Background(), "sh", "-c", "echo 'NoSuchDirective on' > /etc/apache2/conf-enabled/broken.conf"); err != nil {
			t.Fatal(err)
		}
		out, status, _ = sshRun(t, b, "systemctl restart apache2")
		if status != 1 || !strings.Contains(out, "Job for apache2.service failed") {
			t.Fatalf("broken config: %q, status %d, want 1", out, status)
		}
		if _, err := b.Exec(context.Background(), "rm", "/etc/apache2/conf-enabled/broken.conf"); err != nil {
			t.Fatal(err)
		}
		if out, status, _ := sshRun(t, b, "systemctl restart apache2 && systemctl is-active apache2"); out != "active" || status != 0 {
			t.Fatalf("after repair: %q %d", out, status)
		}
	})

	t.Run("fault injection by PID inside", func(t *testing.T) {
		// The panel has no Restart=: killing its main process leaves it failed.
		out, err := b.Exec(context.Background(), "systemctl", "show", "--value", "-p", "MainPID", "sw-cp-server")
		if err != nil {
			t.Fatal(err)
		}
		pid := strings.TrimSpace(string(out))
		if n, _ := strconv.Atoi(pid); n <= 1 {
			t.Fatalf("MainPID %q", pid)
		}
		if _, err := b.Exec(context.Background(), "kill", "-KILL", pid); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			out, status, _ := sshRun(t, b, "systemctl is-active sw-cp-server")
			if out == "failed" && status == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after kill -9 of the panel: %q %d, want failed", out, status)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if out, status, _ := sshRun(t, b, "systemctl restart sw-cp-server && systemctl is-active sw-cp-server"); out != "active" || status != 0 {
			t.Fatalf("panel restart: %q %d", out, status)
		}
		// Exec fails with the command's status.
		_, err = b.Exec(context.Background(), "sh", "-c", "echo oops >&2; exit 3")
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(err.Error(), "oops") {
			t.Fatalf("failing Exec: %v", err)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		if err := b.Unreachable(true); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		_, err := net.DialTimeout("tcp", net.JoinHostPort(b.Addr, "22"), time.Second)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("dial an unreachable box: %v, want a timeout", err)
		}
		if el := time.Since(t0); el < 900*time.Millisecond || el > 3*time.Second {
			t.Fatalf("timed out after %s, want the 1 s dial timeout", el)
		}
		if err := b.Unreachable(true); err != nil { // idempotent
			t.Fatal(err)
		}
		if err := b.Unreachable(false); err != nil {
			t.Fatal(err)
		}
		if err := b.Unreachable(false); err != nil { // idempotent
			t.Fatal(err)
		}
		if out, status, _ := sshRun(t, b, "echo back"); out != "back" || status != 0 {
			t.Fatalf("after Unreachable(false): %q %d", out, status)
		}
	})

	t0 := time.Now()
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("timing: Stop %s (nspawn exited after %s)", time.Since(t0).Round(time.Millisecond), b.Timings.Stop.Round(time.Millisecond))
	if err := b.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	assertGone(t, b)
	if _, err := b.Exec(context.Background(), "true"); err == nil {
		t.Fatal("Exec after Stop succeeded")
	}
}

// assertGone checks that nothing of the box is left on the machine. It
// holds the lock under which boxes are set up, and skips the name or the
// address when another test process's box has taken it since.
func assertGone(t *testing.T, b *Box) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := withLock(ctx, func() error { checkGone(ctx, t, b); return nil }); err != nil {
		t.Fatal(err)
	}
}

func checkGone(ctx context.Context, t *testing.T, b *Box) {
	t.Helper()
	nameTaken, indexTaken := false, false
	states, err := readStates()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if alive(s.Owner, s.OwnerStart) && s.Owner != os.Getpid() {
			nameTaken = nameTaken || s.Name == b.Name
			indexTaken = indexTaken || s.Index == b.index
		}
	}
	if nameTaken || indexTaken {
		t.Logf("another test process reuses name %v, address %v: not checked", nameTaken, indexTaken)
	}
	out, err := run(ctx, "ip", "netns", "list")
	if err != nil || (!nameTaken && hasField(string(out), 0, b.Netns)) {
		t.Errorf("namespace %s left: %s %v", b.Netns, out, err)
	}
	out, err = run(ctx, "ip", "-br", "link", "show")
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); err != nil || (!indexTaken && len(f) > 0 && strings.Split(f[0], "@")[0] == b.veth) {
			t.Errorf("veth %s left: %v\n%s", b.veth, err, out)
			break
		}
	}
	out, err = run(ctx, "ip", "-4", "route", "show", "table", "all")
	prefix := strings.TrimSuffix(b.Addr, "2")
	if err != nil || (!indexTaken && strings.Contains(string(out), prefix)) {
		t.Errorf("route to %s* left: %v\n%s", prefix, err, out)
	}
	if nameTaken {
		return
	}
	if out, err := os.ReadFile("/proc/self/mountinfo"); err != nil || hasField(string(out), 4, b.Dir+"/fs") || hasField(string(out), 4, "/run/netns/"+b.Netns) {
		t.Errorf("mount of the box left: %v", err)
	}
	if pid := b.cmd.Process.Pid; alive(pid, b.state.NSpawnBorn) {
		t.Errorf("systemd-nspawn (pid %d) still runs", pid)
	}
	if alive(b.Leader, b.leaderAt) {
		t.Errorf("the box's systemd (pid %d) still runs", b.Leader)
	}
	if out, err := exec.Command("pgrep", "-f", "--", "--network-namespace-path=/run/netns/"+b.Netns+" ").Output(); err == nil {
		t.Errorf("nspawn processes of the box left: %s", out)
	}
	for _, p := range append([]string{b.Dir, statePath(b.Name)}, b.state.Cgroups...) {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left: %v", p, err)
		}
	}
}

// hasField reports whether a line of text has field i equal to s.
func hasField(text string, i int, s string) bool {
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) > i && f[i] == s {
			return true
		}
	}
	return false
}

// TestTwoBoxes: boxes run side by side, each on its own address; one's
// trouble is not the other's, and stopping one leaves the other alone (and
// its veth does not outlive it in the other's mount namespace).
func TestTwoBoxes(t *testing.T) {
	testenv.RequireIntegration(t)
	Require(t)
	boxes := make([]*Box, 2)
	errs := make(chan error, 2)
	for i := range boxes {
		go func() {
			b, err := Start(context.Background(), Options{})
			boxes[i] = b
			errs <- err
		}()
	}
	for range boxes {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for _, b := range boxes {
		if b != nil {
			t.Cleanup(func() { _ = b.Stop() })
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	a, b := boxes[0], boxes[1]
	if a.Addr == b.Addr || a.Name == b.Name {
		t.Fatalf("two boxes share %s/%s", a.Addr, a.Name)
	}
	// Each in a cgroup of its own: stopping a's apache2 leaves b's alone.
	for _, x := range boxes {
		cg, err := os.ReadFile("/proc/" + strconv.Itoa(x.Leader) + "/cgroup")
		if err != nil || !strings.Contains(string(cg), "/mamori-testbox-"+x.Name+"/payload") {
			t.Fatalf("%s's systemd is in cgroup %s (%v)", x.Name, cg, err)
		}
	}
	pidsB, _, _ := sshRun(t, b, "pidof apache2")
	if _, status, _ := sshRun(t, a, "systemctl stop apache2"); status != 0 {
		t.Fatalf("stop apache2 in %s: %d", a.Name, status)
	}
	if out, status, _ := sshRun(t, b, "systemctl is-active apache2; pidof apache2"); out != "active\n"+pidsB || status != 0 {
		t.Fatalf("%s's apache2 after %s's stopped: %q %d, want active with pids %s", b.Name, a.Name, out, status, pidsB)
	}
	if err := a.Unreachable(true); err != nil {
		t.Fatal(err)
	}
	if out, status, _ := sshRun(t, b, "hostname"); out != b.Name || status != 0 {
		t.Fatalf("%s while %s is unreachable: %q %d", b.Name, a.Name, out, status)
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, a)
	if out, status, _ := sshRun(t, b, "hostname"); out != b.Name || status != 0 {
		t.Fatalf("%s after %s stopped: %q %d", b.Name, a.Name, out, status)
	}
}

const helperEnv = "MAMORI_TESTBOX_HELPER"

// TestHelperCrashingOwner is not a test: TestCrashedRunIsCleanedUp runs the
// test binary with it as a process that starts a box and gets killed.
func TestHelperCrashingOwner(t *testing.T) {
	name := os.Getenv(helperEnv)
	if name == "" {
		t.Skip("helper process only")
	}
	b, err := Start(context.Background(), Options{Name: name, SSHOnly: true})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY", b.cmd.Process.Pid, b.state.NSpawnBorn, b.Leader, b.leaderAt)
	time.Sleep(60 * time.Second) // killed long before
	os.Exit(2)
}

// TestCrashedRunIsCleanedUp: a test process killed with its box running.
// Its nspawn powers the box off by itself (parent-death signal), and the
// next Start with the same name removes what is left (namespace, veth,
// state, directory) and boots; so does a Start that finds a namespace of
// its name with no state at all.
func TestCrashedRunIsCleanedUp(t *testing.T) {
	testenv.RequireIntegration(t)
	Require(t)
	name := fmt.Sprintf("crash-%d", os.Getpid()) // test processes may run side by side
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperCrashingOwner$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+name)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var nspawn, leader int
	var nspawnBorn, leaderBorn uint64
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "READY %d %d %d %d", &nspawn, &nspawnBorn, &leader, &leaderBorn); err == nil {
			break
		}
		if strings.HasPrefix(sc.Text(), "ERROR") {
			t.Fatal(sc.Text())
		}
	}
	if nspawn == 0 {
		t.Fatal("the helper did not start its box")
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	t0 := time.Now()
	if !waitGone(nspawn, nspawnBorn, 20*time.Second) {
		console, _ := os.ReadFile(filepath.Join(runDir, name, "console.log"))
		t.Errorf("systemd-nspawn (pid %d) outlived its test process; console:\n%s", nspawn, console)
	}
	t.Logf("nspawn powered the box off %s after its test process died", time.Since(t0).Round(time.Millisecond))
	if !waitGone(leader, leaderBorn, 5*time.Second) {
		t.Errorf("the box's systemd (pid %d) outlived nspawn", leader)
	}
	if _, err := os.Stat(statePath(name)); err != nil {
		t.Fatalf("the crashed run left no state: %v", err)
	}
	if _, err := os.Stat("/run/netns/" + netnsPrefix + name); err != nil {
		t.Fatalf("the crashed run left no namespace: %v", err)
	}

	b := StartT(t, Options{Name: name, SSHOnly: true})
	if out, status, _ := sshRun(t, b, "hostname"); out != name || status != 0 {
		t.Fatalf("box after a crashed run: %q %d", out, status)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, b)

	// A namespace of the name with no state file.
	if _, err := run(ctx, "ip", "netns", "add", netnsPrefix+name); err != nil {
		t.Fatal(err)
	}
	b = StartT(t, Options{Name: name, SSHOnly: true})
	if out, status, _ := sshRun(t, b, "hostname"); out != name || status != 0 {
		t.Fatalf("box over a stale namespace: %q %d", out, status)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, b)
}

// TestService runs a binary of the machine as a unit inside the box, as the
// end-to-end suite runs mamori_exporter.
func TestService(t *testing.T) {
	testenv.RequireIntegration(t)
	// A stand-in for the exporter: a python3 script (fail2ban brings
	// python3) serving its arguments on /metrics.
	script := filepath.Join(t.TempDir(), "mamori_fake_exporter")
	if err := os.WriteFile(script, []byte("#!/usr/bin/python3\n"+
		"import http.server, sys\n"+
		"class H(http.server.BaseHTTPRequestHandler):\n"+
		"    def do_GET(self):\n"+
		"        b = ('fake_up 1\\n# args: ' + ' '.join(sys.argv[2:]) + '\\n').encode()\n"+
		"        self.send_response(200); self.end_headers(); self.wfile.write(b)\n"+
		"http.server.HTTPServer(('', int(sys.argv[1])), H).serve_forever()\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := StartT(t, Options{Services: []Service{{Name: "fake_exporter", Binary: script, Args: []string{"9796", "a b", "100%"}}}})
	code, body, err := get(t, httpClient(nil, "", false), "http://"+b.Addr+":9796/metrics")
	if err != nil || code != 200 || body != "fake_up 1\n# args: a b 100%\n" {
		t.Fatalf("service in the box: %d %q %v", code, body, err)
	}
	if out, status, _ := sshRun(t, b, "systemctl is-enabled fake_exporter; systemctl is-active fake_exporter"); out != "enabled\nactive" || status != 0 {
		t.Fatalf("unit: %q %d", out, status)
	}
}

// TestDegradedBoot: a unit that fails at boot makes Start fail, naming it,
// and leaves nothing behind; with AllowDegraded the box boots with the unit
// failed, as a real server does.
func TestDegradedBoot(t *testing.T) {
	testenv.RequireIntegration(t)
	Require(t)
	broken := File{Path: "/etc/apache2/conf-enabled/broken.conf", Data: []byte("NoSuchDirective on\n")}
	name := fmt.Sprintf("degraded-%d", os.Getpid())
	t0 := time.Now()
	b, err := Start(context.Background(), Options{Name: name, Files: []File{broken}})
	t.Logf("failed Start returned after %s", time.Since(t0).Round(time.Millisecond))
	if err == nil {
		_ = b.Stop()
		t.Fatal("a box with a broken apache2 config booted without error")
	}
	if !strings.Contains(err.Error(), `system "degraded"`) || !strings.Contains(err.Error(), "apache2.service") {
		t.Fatalf("error %v, want degraded naming apache2.service", err)
	}
	if _, err := os.Stat(statePath(name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed Start left its state: %v", err)
	}
	if _, err := os.Stat("/run/netns/" + netnsPrefix + name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed Start left its namespace: %v", err)
	}

	b = StartT(t, Options{Name: name, Files: []File{broken}, AllowDegraded: true})
	if out, status, _ := sshRun(t, b, "systemctl is-active apache2"); out != "failed" || status != 3 {
		t.Fatalf("apache2 with a broken config: %q %d", out, status)
	}
	if out, status, _ := sshRun(t, b, "systemctl is-active ssh"); out != "active" || status != 0 {
		t.Fatalf("ssh: %q %d", out, status)
	}
}
