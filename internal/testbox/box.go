package testbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options say what a box runs on top of the defaults.
type Options struct {
	// Name is the box's host name (and machine name): lowercase letters,
	// digits, dots and dashes. Empty: "boxX", after its address 198.18.X.2.
	// A leftover of a crashed run with the same name is removed first.
	Name string
	// Files are written into the box after its own configuration, so they
	// may replace any of it (an apache2 snippet, a broken config to test a
	// failing restart, an inventory for a Service).
	Files []File
	// Units are enabled on top of DefaultUnits ("nftables", "cron.service",
	// a unit written by Files). Without a type, ".service" is meant.
	Units []string
	// Mask are units masked on top of the default list (apt timers,
	// postgresql, prometheus, ...).
	Mask []string
	// Services are binaries of the machine copied into the box and run as
	// units of their own (mamori_exporter, built by `make build`).
	Services []Service
	// SSHOnly makes Start return as soon as sshd answers, without waiting
	// for the rest of the boot (apache2 may then still be starting).
	SSHOnly bool
	// AllowDegraded lets Start succeed when a unit failed during boot
	// (the box's own services never do; a test's broken Files may).
	AllowDegraded bool
	// Timeout bounds Start: boot, sshd and, unless SSHOnly, every unit.
	// Zero means 30 s.
	Timeout time.Duration
	// StopGrace is how long Stop waits for the box to power off cleanly
	// before it kills the box's processes. Zero means 10 s; negative, kill
	// at once (a box is thrown away, so nothing is lost).
	StopGrace time.Duration
}

// File is one file written into the box.
type File struct {
	Path string      // absolute, inside the box
	Data []byte      // content
	Mode fs.FileMode // permission bits; zero means 0644
}

// Service is a binary of the machine run as a systemd unit inside the box.
type Service struct {
	// Name is the unit's name ("mamori_exporter" → mamori_exporter.service).
	Name string
	// Binary is the executable's path on the machine; the box gets a copy in
	// /usr/local/bin, under the same base name.
	Binary string
	// Args are its command-line arguments (quoted for systemd: spaces, %
	// and $ are taken literally).
	Args []string
	// Env are NAME=value environment variables.
	Env []string
}

// Box is a booted systemd "customer server".
type Box struct {
	Name       string // host name
	Addr       string // the box's address, 198.18.X.2
	HostAddr   string // the machine's address on the box's link, 198.18.X.1
	SSHPort    int    // 22
	KnownHosts string // known_hosts file pinning the box's one host key (ed25519)
	KeyFile    string // root's private key (OpenSSH format, no passphrase)
	CAFile     string // CA that signed the box's certificate (443, 465, 25/587 STARTTLS, 993, 995)
	Dir        string // the box's directory on the machine (the files above, console.log)
	Console    string // the box's console output (systemd's boot messages)
	Netns      string // network namespace name (/run/netns/NAME)
	Leader     int    // PID, as the machine sees it, of the box's systemd
	Timings    Timings

	index       int
	veth        string
	grace       time.Duration
	cmd         *exec.Cmd
	done        chan struct{} // closed when nspawn has exited
	leaderAt    uint64
	bootedAt    time.Time
	state       *state
	stopOnce    sync.Once
	stopErr     error
	stopped     chan struct{}
	lastConsole string
	waitErrMu   sync.Mutex
	waitErr     error
}

// Timings measured by Start and Stop, from starting systemd-nspawn.
type Timings struct {
	SSH    time.Duration // sshd answered with a shell for root
	Booted time.Duration // every unit started (zero with SSHOnly)
	Stop   time.Duration // Stop's SIGTERM until nspawn exited
}

var validName = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,48}[a-z0-9])?$`)

// Start boots a box and waits until root can log in over SSH and, unless
// o.SSHOnly, every unit has started. Everything is bounded by o.Timeout.
// On error nothing of the box is left.
func Start(ctx context.Context, o Options) (_ *Box, err error) {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.StopGrace == 0 {
		o.StopGrace = 10 * time.Second
	}
	if o.Name != "" && !validName.MatchString(o.Name) {
		return nil, fmt.Errorf("box name %q: want lowercase letters, digits, dots and dashes", o.Name)
	}
	if err := checkTools(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	b := &Box{SSHPort: 22, grace: o.StopGrace, done: make(chan struct{}), stopped: make(chan struct{})}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Stop())
		}
	}()
	if err := withLock(ctx, func() error { return b.allocate(ctx, o.Name) }); err != nil {
		return nil, err
	}

	keys, err := newSSHKeys(b.Name)
	if err != nil {
		return nil, err
	}
	tls, err := newBoxTLS(b.Name, b.Addr, time.Now())
	if err != nil {
		return nil, err
	}
	b.KeyFile = filepath.Join(b.Dir, "id_ed25519")
	b.KnownHosts = filepath.Join(b.Dir, "known_hosts")
	b.CAFile = filepath.Join(b.Dir, "ca.pem")
	b.Console = filepath.Join(b.Dir, "console.log")
	for name, data := range map[string][]byte{b.KeyFile: keys.clientPEM, b.KnownHosts: keys.knownHosts(b.Addr, b.Name), b.CAFile: tls.caPEM} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return nil, err
		}
	}
	p, err := buildPlan(boxConfig{
		name: b.Name, addr: b.Addr,
		authorizedKey: keys.authorizedKey, hostKey: keys.hostPEM, hostKeyPub: keys.hostPub,
		machineID: machineID(), tls: *tls, opts: o,
	}, os.DirFS("/"))
	if err != nil {
		return nil, err
	}
	tarball, err := p.tarball()
	if err != nil {
		return nil, err
	}
	if err := b.boot(p, tarball); err != nil {
		return nil, err
	}
	if err := b.waitSSH(ctx); err != nil {
		return nil, err
	}
	if !o.SSHOnly {
		if err := b.waitBooted(ctx, o.AllowDegraded); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// checkTools reports the first program a box needs that is missing.
func checkTools() error {
	for _, t := range []struct{ cmd, pkg string }{
		{"systemd-nspawn", "systemd-container"}, {"ip", "iproute2"}, {"nft", "nftables"},
		{"nsenter", "util-linux"}, {"unshare", "util-linux"}, {"tar", "tar"}, {"postconf", "postfix"},
	} {
		if _, err := exec.LookPath(t.cmd); err != nil {
			return fmt.Errorf("testbox needs %s (apt-get install %s): %w", t.cmd, t.pkg, err)
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("testbox needs root")
	}
	return nil
}

// allocate, holding the lock: clean up after crashed runs, pick the box's
// address, make its network. Stop undoes exactly what it made.
func (b *Box) allocate(ctx context.Context, name string) error {
	states, err := readStates()
	if err != nil {
		return err
	}
	taken := map[int]bool{}
	inheritGuard := false
	for _, s := range states {
		if alive(s.Owner, s.OwnerStart) {
			if s.Name == name {
				return fmt.Errorf("box %s is already running (test process %d)", name, s.Owner)
			}
			taken[s.Index] = true
			continue
		}
		if err := reap(ctx, s); err != nil {
			return err
		}
		inheritGuard = inheritGuard || s.AddedGuard
	}
	x, err := freeIndex(ctx, taken)
	if err != nil {
		return err
	}
	if name == "" {
		name = "box" + strconv.Itoa(x)
	}
	netns := netnsPrefix + name
	// A namespace of that name without a state file: a crash between
	// writing one and the other, or an older version. It is ours by name.
	if err := teardownNet(ctx, "", netns); err != nil {
		return err
	}
	added, err := ensureGuard(ctx)
	if err != nil {
		return err
	}
	cgroups, err := cgroupDirs(name)
	if err != nil {
		return err
	}
	owner := os.Getpid()
	ownerStart, err := procStart(owner)
	if err != nil {
		return err
	}
	b.Name, b.index = name, x
	b.HostAddr, b.Addr = boxAddrs(x)
	b.Dir = filepath.Join(runDir, name)
	b.state = &state{
		Name: name, Index: x, Netns: netns, Veth: vethName(x), Dir: b.Dir,
		Owner: owner, OwnerStart: ownerStart, AddedGuard: added || inheritGuard,
		Cgroups: cgroups,
	}
	// The state file first: whatever happens next, a later run cleans it up.
	if err := writeState(b.state); err != nil {
		return err
	}
	if err := os.RemoveAll(b.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(b.Dir, "fs"), 0o700); err != nil {
		return err
	}
	if err := removeCgroups(cgroups); err != nil { // a leftover of an older version
		return err
	}
	for _, dir := range cgroups {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("box cgroup: %w", err)
		}
	}
	b.Netns, b.veth = netns, vethName(x)
	return setupNet(ctx, x, netns)
}

// boot starts `unshare ... sh -c SEED ... exec systemd-nspawn`. The process
// is started from a goroutine that keeps its OS thread for the box's
// lifetime: Pdeathsig fires when that thread ends, so if the test process
// dies, nspawn gets SIGTERM and powers the box off.
func (b *Box) boot(p *plan, tarball []byte) error {
	console, err := os.OpenFile(b.Console, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	args := []string{"--mount", "--propagation", "private", "--",
		"/bin/sh", "-c", p.seedScript("2g", b.state.Cgroups), "mamori-testbox-seed",
		filepath.Join(b.Dir, "fs"), "/run/netns/" + b.Netns,
		"-q", "--register=no", "--keep-unit", "-M", b.Name,
		"--network-namespace-path=/run/netns/" + b.Netns,
		"--console=passive", "--resolv-conf=off", "--link-journal=no", "-b"}
	cmd := exec.Command("unshare", args...)
	cmd.Stdin = bytes.NewReader(tarball)
	cmd.Stdout, cmd.Stderr = console, console
	cmd.Env = boxEnv
	// Its own process group: a Ctrl-C meant for `go test` reaches the box
	// through Stop, not directly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with nspawn
		defer console.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			close(b.done)
			return
		}
		started <- nil
		err := cmd.Wait()
		b.waitErrMu.Lock()
		b.waitErr = err
		b.waitErrMu.Unlock()
		close(b.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start systemd-nspawn: %w", err)
	}
	b.cmd, b.bootedAt = cmd, time.Now()
	b.state.NSpawn = cmd.Process.Pid
	b.state.NSpawnBorn, _ = procStart(cmd.Process.Pid)
	return writeState(b.state)
}

var boxEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"}

// waitSSH waits for the box's systemd to appear, then for sshd to let root
// in with the test's key.
func (b *Box) waitSSH(ctx context.Context) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		select {
		case <-b.done:
			return fmt.Errorf("box %s: systemd-nspawn exited (%v) before sshd answered:\n%s", b.Name, b.exitErr(), b.consoleTail(30))
		case <-ctx.Done():
			return fmt.Errorf("box %s: sshd did not answer within the timeout (last: %v):\n%s", b.Name, lastErr, b.consoleTail(30))
		case <-tick.C:
		}
		if b.Leader == 0 {
			if pid := findLeader(b.cmd.Process.Pid); pid > 0 {
				b.Leader = pid
				b.leaderAt, _ = procStart(pid)
				b.state.Leader, b.state.LeaderBorn = pid, b.leaderAt
				if err := writeState(b.state); err != nil {
					return err
				}
			}
			continue
		}
		c, err := net.DialTimeout("tcp", b.sshAddr(), 250*time.Millisecond)
		if err != nil {
			lastErr = err
			continue
		}
		c.Close()
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, status, err := b.Run(actx, "true")
		cancel()
		if err == nil && status == 0 {
			b.Timings.SSH = time.Since(b.bootedAt)
			return nil
		}
		lastErr = fmt.Errorf("ssh: status %d: %w", status, err)
	}
}

// waitBooted waits for `systemctl is-system-running --wait`: running, or
// degraded when allowed.
func (b *Box) waitBooted(ctx context.Context, allowDegraded bool) error {
	out, _ := b.Exec(ctx, "systemctl", "is-system-running", "--wait")
	st := strings.TrimSpace(string(out))
	if st == "running" || (st == "degraded" && allowDegraded) {
		b.Timings.Booted = time.Since(b.bootedAt)
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("box %s: boot did not finish within the timeout (%q)", b.Name, st)
	}
	failed, _ := b.Exec(context.Background(), "systemctl", "--failed", "--no-legend", "--plain")
	return fmt.Errorf("box %s: system %q; failed units:\n%s", b.Name, st, failed)
}

// findLeader finds the box's systemd: the child of nspawn named systemd.
func findLeader(nspawn int) int {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(nspawn) + "/task/*/children")
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if comm, err := os.ReadFile("/proc/" + f + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "systemd" {
				return pid
			}
		}
	}
	return 0
}

func (b *Box) sshAddr() string { return net.JoinHostPort(b.Addr, strconv.Itoa(b.SSHPort)) }

func (b *Box) exitErr() error {
	b.waitErrMu.Lock()
	defer b.waitErrMu.Unlock()
	return b.waitErr
}

// consoleTail is the end of the box's console log, for error messages.
func (b *Box) consoleTail(lines int) string {
	data, err := os.ReadFile(b.Console)
	if err != nil {
		return b.lastConsole
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// Stop powers the box off (SIGTERM to nspawn, which asks the box's systemd
// to shut down), kills what is left after the grace period, and removes the
// veth, the namespace, the box's directory, its state file and, when this
// box added it and nothing else lies in 198.18.0.0/15, the guard route. The
// mounts lived in the box's private mount namespace and end with it. Stop
// is idempotent and bounded (grace + about 15 s).
func (b *Box) Stop() error {
	b.stopOnce.Do(func() {
		b.stopErr = b.stop()
		close(b.stopped)
	})
	return b.stopErr
}

func (b *Box) stop() error {
	var errs []error
	if b.cmd != nil {
		t0 := time.Now()
		if b.grace > 0 {
			_ = b.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-b.done:
			case <-time.After(b.grace):
			}
		}
		select {
		case <-b.done:
		default:
			// Killing the box's init ends every process of its PID namespace;
			// nspawn follows.
			if alive(b.Leader, b.leaderAt) {
				_ = syscall.Kill(b.Leader, syscall.SIGKILL)
			}
			select {
			case <-b.done:
			case <-time.After(5 * time.Second):
				_ = b.cmd.Process.Kill()
				select {
				case <-b.done:
				case <-time.After(5 * time.Second):
					errs = append(errs, fmt.Errorf("box %s: systemd-nspawn (pid %d) does not exit", b.Name, b.cmd.Process.Pid))
				}
			}
		}
		b.Timings.Stop = time.Since(t0)
		if alive(b.Leader, b.leaderAt) {
			_ = syscall.Kill(b.Leader, syscall.SIGKILL)
			if !waitGone(b.Leader, b.leaderAt, 5*time.Second) {
				errs = append(errs, fmt.Errorf("box %s: its systemd (pid %d) does not exit", b.Name, b.Leader))
			}
		}
	}
	if b.state == nil {
		return errors.Join(errs...) // nothing was allocated
	}
	errs = append(errs, removeCgroups(b.state.Cgroups))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	errs = append(errs, withLock(ctx, func() error {
		var errs []error
		errs = append(errs, teardownNet(ctx, b.veth, b.Netns))
		if b.state.AddedGuard {
			errs = append(errs, removeGuard(ctx))
		}
		b.lastConsole = b.consoleTail(40) // for the test's log, once the file is gone
		if err := os.RemoveAll(b.Dir); err != nil {
			errs = append(errs, err)
		}
		if err := os.Remove(statePath(b.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}))
	return errors.Join(errs...)
}
