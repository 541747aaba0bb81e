// Package stack runs the whole mamori loop on one machine, with real parts:
// a systemd customer server (internal/testbox) running the plus plan's
// services and mamori_exporter's host role, and outside it the prober
// (mamori_exporter's probe role), Prometheus, Alertmanager,
// mamori_remediator and postfix's smtp-sink, all configured from the
// repository's deploy/ files (the generated prometheus.yml and
// alertmanager.yml, the generated rules) with shorter intervals. `make demo`
// and the end-to-end suite (e2e/) both start it.
package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mamori-ops/mamori/internal/testbox"
	"github.com/mamori-ops/mamori/runbook"
)

// Options say where the stack's parts come from and listen.
type Options struct {
	// Root is the repository's root (deploy/, rules/).
	Root string
	// Dir holds everything the stack writes: configs, logs, TSDB, journal,
	// received mail. It is created if missing.
	Dir string
	// Exporter and Remediator are the built binaries (make build).
	Exporter, Remediator string
	// Prometheus and Alertmanager are Debian's binaries; empty looks them up.
	Prometheus, Alertmanager string
	// Listen addresses on the machine; empty picks free loopback ports.
	PrometheusAddr, AlertmanagerAddr, ProberAddr, RemediatorAddr, SMTPAddr string
	// Scrape and Eval are Prometheus's intervals (default 5 s each).
	Scrape, Eval time.Duration
	// GroupWait is Alertmanager's group_wait (default 1 s).
	GroupWait time.Duration
	// BoxName is the customer server's host name (default web1.acme.example).
	BoxName string
	// Log receives progress lines; nil discards them.
	Log func(format string, args ...any)
}

// Customer is the demo's only customer, on the plus plan, in Japanese.
const (
	Customer = "acme"
	Contact  = "ops@acme.example"
	Operator = "noc@mamori.example"
)

// The customer's mail account on the box, its password, and the password
// the customer agreed to have it reset to when it floods the mail queue.
const (
	MailAccount    = "shop"
	MailPassword   = "Shop-Passw0rd"
	AgreedPassword = "Agreed-Passw0rd"
)

// passwordTool is the box's mail password command, what the inventory's
// agreement runs (on a Plesk server, `mail --update NAME -passwd-stdin`):
// the account in argv, the new password on standard input.
const passwordTool = "/usr/local/sbin/mail-password"

const passwordToolScript = `#!/bin/sh
# mamori demo: sets the password of mail account $1 (a system user) to the
# line read from standard input.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 ACCOUNT <PASSWORD" >&2; exit 2; }
case $1 in
'' | -* | *[!a-z0-9._-]*) echo "$0: not a mail account name: $1" >&2; exit 2 ;;
esac
uid=$(id -u "$1") || exit 1
[ "$uid" -ge 1000 ] && [ "$uid" -lt 60000 ] || { echo "$0: $1 is not a mail account" >&2; exit 1; }
IFS= read -r pw || true
[ -n "$pw" ] || { echo "$0: no password on standard input" >&2; exit 1; }
printf '%s:%s\n' "$1" "$pw" | chpasswd
echo "password of $1 changed"
`

// Stack is a running loop.
type Stack struct {
	Box   *testbox.Box
	Opts  Options
	URLs  URLs
	Token string
	procs []*proc
	// console is the box's out-of-band console script.
	console string
}

// URLs are where a person looks.
type URLs struct {
	Prometheus, Alertmanager, Prober, Remediator string
	MailDir                                      string
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start boots the box and starts every part, each one ready when Start
// returns. On error, what was started is stopped.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	s := &Stack{Opts: o, Token: "demo-webhook-token-" + fmt.Sprint(time.Now().UnixNano())}
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()
	// A fresh start: no mail, samples, silences or journal of a former run.
	for _, d := range []string{"mail", "tsdb", "alertmanager", "remediator.db", "remediator.db-wal", "remediator.db-shm"} {
		if err := os.RemoveAll(filepath.Join(o.Dir, d)); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"mail", "tsdb", "alertmanager", "logs"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// Copies of the binaries: `make build` may replace them meanwhile.
	for _, b := range []*string{&s.Opts.Exporter, &s.Opts.Remediator} {
		dst := filepath.Join(o.Dir, filepath.Base(*b))
		if err := copyFile(*b, dst, 0o755); err != nil {
			return nil, err
		}
		*b = dst
	}
	o = s.Opts

	// The customer server. Its inventory names its address, known only once
	// it is up: the box starts with a placeholder, then gets the real file.
	start := time.Now()
	placeholder, err := s.inventory("127.0.0.1", "/nonexistent", "/nonexistent", "/bin/false", "")
	if err != nil {
		return nil, err
	}
	// The host role runs as the operations guide installs it: the shipped,
	// hardened unit (deploy/systemd), its own user, its options in
	// /etc/default; enabled once that user exists.
	exporterBin, err := os.ReadFile(o.Exporter)
	if err != nil {
		return nil, err
	}
	exporterUnit, err := os.ReadFile(filepath.Join(o.Root, "deploy", "systemd", exporterUnitName))
	if err != nil {
		return nil, err
	}
	s.Box, err = testbox.Start(ctx, testbox.Options{
		Name:    o.BoxName,
		Timeout: 90 * time.Second,
		Files: []testbox.File{
			{Path: "/etc/mamori/inventory.yml", Data: []byte(placeholder)},
			{Path: "/usr/local/bin/mamori_exporter", Data: exporterBin, Mode: 0o755},
			{Path: "/etc/systemd/system/" + exporterUnitName, Data: exporterUnit},
			{Path: "/etc/default/mamori-exporter", Data: []byte("MAMORI_EXPORTER_ARGS=--host.name=" + o.BoxName + "\n")},
			// The customer's shop, the url check's page.
			{Path: "/var/www/html/shop/index.html", Data: []byte("<html><title>ACME shop</title><body>ACME shop</body></html>\n")},
			{Path: passwordTool, Data: []byte(passwordToolScript), Mode: 0o755},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("customer server: %w", err)
	}
	o.Log("customer server %s up at %s after %s (ssh %s, every unit %s)", s.Box.Name, s.Box.Addr,
		time.Since(start).Round(time.Millisecond), s.Box.Timings.SSH.Round(time.Millisecond), s.Box.Timings.Booted.Round(time.Millisecond))

	console := filepath.Join(o.Dir, "console")
	script := fmt.Sprintf("#!/bin/sh\n# The box's out-of-band console: runs the remote argv inside it.\nexec nsenter -t %d -m -u -i -n -p -- \"$@\"\n", s.Box.Leader)
	if err := os.WriteFile(console, []byte(script), 0o755); err != nil {
		return nil, err
	}
	s.console = console
	// The power command: a container cannot lose power; what a power cycle
	// does to a hung host's reachability is done instead: the runtime
	// firewall state (the drop rule of Box.Unreachable) is gone.
	power := filepath.Join(o.Dir, "power")
	script = fmt.Sprintf("#!/bin/sh\n# The box's out-of-band power command (simulated: see deploy/demo/stack).\nnsenter --net=/run/netns/%s nft flush ruleset\n", s.Box.Netns)
	if err := os.WriteFile(power, []byte(script), 0o755); err != nil {
		return nil, err
	}
	if err := s.writeInventory(""); err != nil {
		return nil, err
	}
	invPath := filepath.Join(o.Dir, "inventory.yml")
	for _, argv := range [][]string{
		{"useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "mamori-exporter"},
		{"systemctl", "enable", "--now", exporterUnitName},
	} {
		if out, err := s.Box.Exec(ctx, argv...); err != nil {
			return nil, fmt.Errorf("the box's exporter: %s: %w: %s", strings.Join(argv, " "), err, out)
		}
	}
	if err := waitHTTP(ctx, "http://"+net.JoinHostPort(s.Box.Addr, "9796")+"/metrics", 20*time.Second); err != nil {
		return nil, fmt.Errorf("the box's exporter (host role): %w", err)
	}

	// MariaDB answers a host it has no account for with error 1130 instead
	// of its greeting (the probe's reason "blocked"): as on a real server,
	// the monitoring side gets an account of its own, with no privileges.
	grant := fmt.Sprintf("CREATE USER IF NOT EXISTS 'mamori_probe'@'%s' IDENTIFIED BY '%s'", s.Box.HostAddr, s.Token)
	if out, err := s.Box.Exec(ctx, "mysql", "-e", grant); err != nil {
		return nil, fmt.Errorf("mariadb account for the prober: %w: %s", err, out)
	}
	if err := s.Box.MailAccount(ctx, MailAccount, MailPassword); err != nil {
		return nil, fmt.Errorf("the customer's mail account: %w", err)
	}

	// Configs, from deploy/ and rules/.
	tokenFile := filepath.Join(o.Dir, "remediator-webhook.token")
	if err := os.WriteFile(tokenFile, []byte(s.Token+"\n"), 0o600); err != nil {
		return nil, err
	}
	files, err := render(o, tokenFile)
	if err != nil {
		return nil, err
	}
	for name, data := range files {
		p := filepath.Join(o.Dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
	}

	steps := []struct {
		name  string
		bin   string
		args  []string
		ready string
	}{
		{"smtp-sink", "smtp-sink", []string{"-u", "root", "-d", filepath.Join(o.Dir, "mail") + "/%Y%m%d%H%M%S.", o.SMTPAddr, "64"}, ""},
		{"prober", o.Exporter, []string{"--config.file=" + invPath, "--host.name=" + o.BoxName, "--web.listen-address=" + o.ProberAddr,
			"--probe.tls-ca-file=" + s.Box.CAFile}, "http://" + o.ProberAddr + "/-/ready"},
		{"remediator", o.Remediator, []string{"--config.file=" + filepath.Join(o.Dir, "remediator.yml"), "--web.listen-address=" + o.RemediatorAddr,
			"--probe.tls-ca-file=" + s.Box.CAFile}, "http://" + o.RemediatorAddr + "/-/ready"},
		{"alertmanager", o.Alertmanager, []string{"--config.file=" + filepath.Join(o.Dir, "alertmanager.yml"),
			"--storage.path=" + filepath.Join(o.Dir, "alertmanager"), "--web.listen-address=" + o.AlertmanagerAddr,
			"--cluster.listen-address=", "--log.level=info"}, "http://" + o.AlertmanagerAddr + "/-/ready"},
		{"prometheus", o.Prometheus, []string{"--config.file=" + filepath.Join(o.Dir, "deploy", "prometheus.yml"),
			"--storage.tsdb.path=" + filepath.Join(o.Dir, "tsdb"), "--web.listen-address=" + o.PrometheusAddr, "--log.level=info"},
			"http://" + o.PrometheusAddr + "/-/ready"},
	}
	for _, st := range steps {
		p, err := s.spawn(st.name, st.bin, st.args...)
		if err != nil {
			return nil, err
		}
		if st.ready != "" {
			if err := waitHTTP(ctx, st.ready, 30*time.Second); err != nil {
				return nil, fmt.Errorf("%s: %w (log: %s)", p.name, err, s.LogPath(p.name))
			}
		}
	}
	if err := waitTCP(ctx, o.SMTPAddr, 10*time.Second); err != nil {
		return nil, fmt.Errorf("smtp-sink: %w", err)
	}
	s.URLs = URLs{
		Prometheus:   "http://" + o.PrometheusAddr,
		Alertmanager: "http://" + o.AlertmanagerAddr,
		Prober:       "http://" + o.ProberAddr,
		Remediator:   "http://" + o.RemediatorAddr,
		MailDir:      filepath.Join(o.Dir, "mail"),
	}
	o.Log("every part ready after %s", time.Since(start).Round(time.Millisecond))
	return s, nil
}

func (o *Options) defaults() error {
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	if o.Scrape == 0 {
		o.Scrape = 5 * time.Second
	}
	if o.Eval == 0 {
		o.Eval = 5 * time.Second
	}
	if o.GroupWait == 0 {
		o.GroupWait = time.Second
	}
	if o.BoxName == "" {
		o.BoxName = "web1.acme.example"
	}
	for _, b := range []struct {
		p    *string
		name string
	}{{&o.Prometheus, "prometheus"}, {&o.Alertmanager, "prometheus-alertmanager"}} {
		if *b.p != "" {
			continue
		}
		p, err := exec.LookPath(b.name)
		if err != nil {
			return fmt.Errorf("%s is not installed (scripts/setup-test.sh installs it): %w", b.name, err)
		}
		*b.p = p
	}
	if _, err := exec.LookPath("smtp-sink"); err != nil {
		return fmt.Errorf("postfix's smtp-sink is not installed: %w", err)
	}
	for _, a := range []*string{&o.PrometheusAddr, &o.AlertmanagerAddr, &o.ProberAddr, &o.RemediatorAddr, &o.SMTPAddr} {
		if *a == "" {
			free, err := freeLoopback()
			if err != nil {
				return err
			}
			*a = free
			continue
		}
		l, err := net.Listen("tcp", *a)
		if err != nil {
			return fmt.Errorf("%s is taken: %w", *a, err)
		}
		l.Close()
	}
	for _, b := range []string{o.Exporter, o.Remediator} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("binary missing (make build): %w", err)
		}
	}
	return os.MkdirAll(o.Dir, 0o755)
}

// writeInventory writes the inventory beside the monitoring side's parts
// and, the same file, into the box for the host role.
func (s *Stack) writeInventory(extra string) error {
	inv, err := s.inventory(s.Box.Addr, s.Box.KeyFile, s.Box.KnownHosts, s.console, extra)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.Opts.Dir, "inventory.yml"), []byte(inv), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/root/etc/mamori/inventory.yml", s.Box.Leader), []byte(inv), 0o644); err != nil {
		return fmt.Errorf("inventory into the box: %w", err)
	}
	return nil
}

// exporterUnitName is the host role's unit in deploy/systemd.
const exporterUnitName = "mamori-exporter.service"

// passwordFile holds the agreed password beside the remediator's copy of
// the inventory (relative to its directory). The exporters never read it:
// the box's copy of the inventory goes without.
const passwordFile = "acme-mail-password"

// SetChecks rewrites the inventory with extra per-check settings of the
// box (YAML lines under its checks:, e.g. "load: {thresholds: {alert: 1}}")
// and has every reader reload it: the box's exporter, the prober and the
// remediator (SIGHUP).
func (s *Stack) SetChecks(ctx context.Context, extra string) error {
	if err := s.writeInventory(extra); err != nil {
		return err
	}
	if out, err := s.Box.Exec(ctx, "systemctl", "reload", exporterUnitName); err != nil {
		return fmt.Errorf("reload the box's exporter: %w: %s", err, out)
	}
	for _, p := range s.procs {
		if p.name == "prober" || p.name == "remediator" {
			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				return fmt.Errorf("reload %s: %w", p.name, err)
			}
		}
	}
	return nil
}

// inventory is the demo's fleet: one customer on the plus plan, in
// Japanese, with one host, the box.
func (s *Stack) inventory(addr, key, knownHosts, console, extra string) (string, error) {
	pw := filepath.Join(s.Opts.Dir, passwordFile)
	if err := os.WriteFile(pw, []byte(AgreedPassword+"\n"), 0o600); err != nil {
		return "", err
	}
	return fmt.Sprintf(`# mamori demo inventory (deploy/demo/stack): the customer server booted by testbox.
customers:
  - name: %s
    plan: plus
    language: ja
    contacts: [%s]
    agreed:
      # A mail account flooding the queue gets the agreed password.
      mail_password_reset:
        password_file: %s
        command: [%s, "{account}"]
    hosts:
      - name: %s
        address: %s
        os_family: debian
        ssh:
          user: root
          key_file: %s
          known_hosts_file: %s
        out_of_band:
          console: [%s]
          power_cycle: [%s]
        checks:
          plesk: {insecure_skip_verify: true}
          ftp: {service: vsftpd}   # FTP runs standalone on the box
          url: {url: "http://%s/shop/", body_match: "ACME shop"}
%s`, Customer, Contact, passwordFile, passwordTool, s.Opts.BoxName, addr, key, knownHosts, console, filepath.Join(filepath.Dir(console), "power"), addr, indent(extra, "          ")), nil
}

func indent(text, prefix string) string {
	if text == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// spawn starts a daemon whose output goes to logs/NAME.log. It gets
// SIGTERM if this process dies.
func (s *Stack) spawn(name, bin string, args ...string) (*proc, error) {
	f, err := os.Create(s.LogPath(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.Opts.Dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	s.procs = append(s.procs, p)
	return p, nil
}

// LogPath is where a part's output goes.
func (s *Stack) LogPath(name string) string { return filepath.Join(s.Opts.Dir, "logs", name+".log") }

// PIDs lists the stack's processes on the machine (the box's are its own).
func (s *Stack) PIDs() map[string]int {
	m := map[string]int{}
	for _, p := range s.procs {
		m[p.name] = p.cmd.Process.Pid
	}
	return m
}

// Stop stops every part, newest first (SIGTERM, then SIGKILL after 10 s),
// then the box.
func (s *Stack) Stop() error {
	var errs []error
	for _, p := range slices.Backward(s.procs) {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
			errs = append(errs, fmt.Errorf("%s killed after 10s", p.name))
		}
	}
	s.procs = nil
	if s.Box != nil {
		if err := s.Box.Stop(); err != nil {
			errs = append(errs, err)
		}
		s.Box = nil
	}
	return errors.Join(errs...)
}

// UnitFor is the systemd unit, on the box (Debian), of a check's service.
func UnitFor(check string) (string, error) {
	c, ok := runbook.CheckByID(check)
	if !ok {
		return "", fmt.Errorf("no check %q in the runbook", check)
	}
	for _, sv := range runbook.Services() {
		if sv.Name == c.Service {
			if u := sv.Units[runbook.Debian]; u != "" {
				return strings.TrimSuffix(u, ".service"), nil
			}
		}
	}
	return "", fmt.Errorf("check %q has no service unit to stop", check)
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

func freeLoopback() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitHTTP(ctx context.Context, url string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v", url, limit, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func waitTCP(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
