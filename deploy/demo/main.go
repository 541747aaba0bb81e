// Command demo runs the whole mamori loop on this machine (as root):
//
//	demo up                 boot the customer server and start the monitoring side, in the background
//	demo fault --check=http break one thing on the customer server and time the recovery
//	demo status             print where to look
//	demo stop               stop everything; nothing of the demo is left
//
// `make demo`, `make demo-fault CHECK=http` and `make demo-stop` call it.
// The loop is deploy/demo/stack: everything it writes lives in --dir.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/mamori-ops/mamori/deploy/demo/stack"
)

func main() { os.Exit(run(os.Args[1:])) }

// state is what `up` leaves for `fault`, `status` and `stop`.
type state struct {
	PID       int            `json:"pid"`
	Dir       string         `json:"dir"`
	Box       string         `json:"box"`
	Addr      string         `json:"addr"`
	Leader    int            `json:"leader"`
	URLs      stack.URLs     `json:"urls"`
	PIDs      map[string]int `json:"pids"`
	StartedAt time.Time      `json:"started_at"`
	UpAfter   string         `json:"up_after"`
}

type flags struct {
	dir, root, exporter, remediator string
	prom, am, prober, remAddr, smtp string
	scrape, eval                    time.Duration
	check                           string
	wait                            time.Duration
	upTimeout                       time.Duration
	started                         time.Time
}

func run(args []string) int {
	app := kingpin.New("demo", "The whole mamori loop on this machine: a systemd customer server, Prometheus, Alertmanager, the prober, the remediator, an SMTP receiver.")
	f := &flags{}
	app.Flag("dir", "Where the demo keeps its state, configs, logs and received mail.").Default("/run/mamori-demo").StringVar(&f.dir)
	up := app.Command("up", "Start the demo in the background and print where to look.")
	up.Flag("root", "The repository's root.").Default(".").StringVar(&f.root)
	up.Flag("exporter", "mamori_exporter, built by make build.").Default("mamori_exporter").StringVar(&f.exporter)
	up.Flag("remediator", "mamori_remediator, built by make build.").Default("mamori_remediator").StringVar(&f.remediator)
	up.Flag("prometheus.listen-address", "").Default("127.0.0.1:9090").StringVar(&f.prom)
	up.Flag("alertmanager.listen-address", "").Default("127.0.0.1:9093").StringVar(&f.am)
	up.Flag("prober.listen-address", "").Default("127.0.0.1:9796").StringVar(&f.prober)
	up.Flag("remediator.listen-address", "").Default("127.0.0.1:9797").StringVar(&f.remAddr)
	up.Flag("smtp.listen-address", "The SMTP receiver (postfix's smtp-sink).").Default("127.0.0.1:2525").StringVar(&f.smtp)
	up.Flag("scrape-interval", "").Default("5s").DurationVar(&f.scrape)
	up.Flag("evaluation-interval", "").Default("5s").DurationVar(&f.eval)
	up.Flag("timeout", "How long up waits for everything to be ready.").Default("3m").DurationVar(&f.upTimeout)
	serve := app.Command("serve", "Run the demo in the foreground (what up runs in the background).").Hidden()
	serve.Flag("root", "").Default(".").StringVar(&f.root)
	serve.Flag("exporter", "").Default("mamori_exporter").StringVar(&f.exporter)
	serve.Flag("remediator", "").Default("mamori_remediator").StringVar(&f.remediator)
	serve.Flag("prometheus.listen-address", "").Default("127.0.0.1:9090").StringVar(&f.prom)
	serve.Flag("alertmanager.listen-address", "").Default("127.0.0.1:9093").StringVar(&f.am)
	serve.Flag("prober.listen-address", "").Default("127.0.0.1:9796").StringVar(&f.prober)
	serve.Flag("remediator.listen-address", "").Default("127.0.0.1:9797").StringVar(&f.remAddr)
	serve.Flag("smtp.listen-address", "").Default("127.0.0.1:2525").StringVar(&f.smtp)
	serve.Flag("scrape-interval", "").Default("5s").DurationVar(&f.scrape)
	serve.Flag("evaluation-interval", "").Default("5s").DurationVar(&f.eval)
	fault := app.Command("fault", "Stop a check's service on the customer server and time the loop: alert, restart, email.")
	fault.Flag("check", "The runbook check whose service to stop (http, imap, smtp, mysql, ...).").Default("http").StringVar(&f.check)
	fault.Flag("wait", "How long to wait for the service to be active again and the email to arrive.").Default("2m").DurationVar(&f.wait)
	status := app.Command("status", "Print where to look.")
	stop := app.Command("stop", "Stop the demo; nothing of it is left.")

	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 2
	}
	f.started = time.Now()
	switch cmd {
	case up.FullCommand():
		err = f.up()
	case serve.FullCommand():
		err = f.serve()
	case fault.FullCommand():
		err = f.fault()
	case status.FullCommand():
		var s *state
		if s, err = readState(f.dir); err == nil {
			printWhere(s)
		}
	case stop.FullCommand():
		err = f.stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	return 0
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

func readState(dir string) (*state, error) {
	raw, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("the demo is not running (make demo)")
	}
	if err != nil {
		return nil, err
	}
	s := &state{}
	return s, json.Unmarshal(raw, s)
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

// up runs `serve` detached (its own session, output in the log) and waits
// for its state file.
func (f *flags) up() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the demo boots a systemd container and a network namespace: run it as root")
	}
	if s, err := readState(f.dir); err == nil && alive(s.PID) {
		fmt.Println("The demo is already running.")
		printWhere(s)
		return nil
	}
	if err := os.MkdirAll(filepath.Join(f.dir, "logs"), 0o755); err != nil {
		return err
	}
	_ = os.Remove(statePath(f.dir))
	self, err := os.Executable()
	if err != nil {
		return err
	}
	root, _ := filepath.Abs(f.root)
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	logPath := filepath.Join(f.dir, "logs", "demo.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(self, "--dir="+f.dir, "serve", "--root="+root, "--exporter="+abs(f.exporter), "--remediator="+abs(f.remediator),
		"--prometheus.listen-address="+f.prom, "--alertmanager.listen-address="+f.am, "--prober.listen-address="+f.prober,
		"--remediator.listen-address="+f.remAddr, "--smtp.listen-address="+f.smtp,
		"--scrape-interval="+f.scrape.String(), "--evaluation-interval="+f.eval.String())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Printf("demo: starting in the background (pid %d, log %s)\n", cmd.Process.Pid, logPath)
	deadline := time.After(f.upTimeout)
	for {
		select {
		case err := <-exited:
			tail, _ := os.ReadFile(logPath)
			return fmt.Errorf("the demo stopped while starting (%v):\n%s", err, tail)
		case <-deadline:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return fmt.Errorf("not up after %s: see %s", f.upTimeout, logPath)
		case <-time.After(200 * time.Millisecond):
		}
		if s, err := readState(f.dir); err == nil {
			fmt.Printf("demo: up after %s (this command), the loop itself %s\n", time.Since(f.started).Round(100*time.Millisecond), s.UpAfter)
			printWhere(s)
			_ = cmd.Process.Release()
			return nil
		}
	}
}

// serve starts the stack, writes the state file, and stops everything on
// SIGTERM or SIGINT.
func (f *flags) serve() error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	logf := func(format string, args ...any) {
		fmt.Printf("%s %s\n", time.Now().UTC().Format(time.TimeOnly), fmt.Sprintf(format, args...))
	}
	st, err := stack.Start(ctx, stack.Options{
		Root: f.root, Dir: f.dir, Exporter: f.exporter, Remediator: f.remediator,
		PrometheusAddr: f.prom, AlertmanagerAddr: f.am, ProberAddr: f.prober, RemediatorAddr: f.remAddr, SMTPAddr: f.smtp,
		Scrape: f.scrape, Eval: f.eval, Log: logf,
	})
	if err != nil {
		return err
	}
	s := &state{PID: os.Getpid(), Dir: f.dir, Box: st.Box.Name, Addr: st.Box.Addr, Leader: st.Box.Leader, URLs: st.URLs,
		PIDs: st.PIDs(), StartedAt: f.started, UpAfter: time.Since(f.started).Round(100 * time.Millisecond).String()}
	raw, _ := json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(statePath(f.dir)+".tmp", raw, 0o644); err != nil {
		_ = st.Stop()
		return err
	}
	if err := os.Rename(statePath(f.dir)+".tmp", statePath(f.dir)); err != nil {
		_ = st.Stop()
		return err
	}
	logf("up; state in %s", statePath(f.dir))
	<-ctx.Done()
	logf("stopping")
	err = st.Stop()
	_ = os.Remove(statePath(f.dir))
	logf("stopped (%v)", err)
	return err
}

// stop sends SIGTERM to serve and waits until it has stopped everything.
func (f *flags) stop() error {
	s, err := readState(f.dir)
	if err != nil {
		fmt.Println("demo: not running")
		return nil
	}
	if alive(s.PID) {
		_ = syscall.Kill(s.PID, syscall.SIGTERM)
		deadline := time.Now().Add(90 * time.Second)
		for alive(s.PID) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if alive(s.PID) {
			return fmt.Errorf("the demo (pid %d) did not stop within 90s: see %s/logs/demo.log", s.PID, f.dir)
		}
	}
	// What a killed demo could leave: its daemons (each got SIGTERM through
	// its parent-death signal; make sure), the box's namespace and veth.
	for name, pid := range s.PIDs {
		if alive(pid) && strings.Contains(cmdline(pid), f.dir) {
			fmt.Printf("demo: %s (pid %d) still running: killing it\n", name, pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = os.Remove(statePath(f.dir))
	fmt.Printf("demo: stopped after %s; %s keeps its logs and mail (rm -rf it at will)\n", time.Since(f.started).Round(100*time.Millisecond), f.dir)
	return nil
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}

func printWhere(s *state) {
	fmt.Printf(`
  customer server   %s at %s (systemd; shell: nsenter -t %d -m -u -i -n -p -- bash)
  Prometheus        %s/alerts
  Alertmanager      %s
  prober            %s/probe?target=%s
  remediator        %s/   (status page; JSON: /api/v1/incidents)
  received mail     %s/   (smtp-sink; one file per message)
  logs              %s/logs/

  make demo-fault CHECK=http   stops apache2 on the customer server and times the loop
  make demo-stop               stops everything
`, s.Box, s.Addr, s.Leader, s.URLs.Prometheus, s.URLs.Alertmanager, s.URLs.Prober, s.Box, s.URLs.Remediator, s.URLs.MailDir, s.Dir)
}

// inBox runs argv inside the customer server.
func inBox(s *state, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"-t", fmt.Sprint(s.Leader), "-m", "-u", "-i", "-n", "-p", "--"}, argv...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// fault stops the check's unit in the box, then waits for it to be active
// again and for the customer's email, and prints both times.
func (f *flags) fault() error {
	s, err := readState(f.dir)
	if err != nil {
		return err
	}
	unit, err := stack.UnitFor(f.check)
	if err != nil {
		return err
	}
	before, _ := stack.Mails(s.URLs.MailDir)
	seen := map[string]bool{}
	for _, m := range before {
		seen[m.File] = true
	}
	t0 := time.Now()
	if out, err := inBox(s, "systemctl", "stop", unit); err != nil {
		return fmt.Errorf("systemctl stop %s: %w: %s", unit, err, out)
	}
	fmt.Printf("demo: %s stopped on %s at %s; waiting up to %s\n", unit, s.Box, t0.UTC().Format(time.TimeOnly), f.wait)
	var activeAfter time.Duration
	var email *stack.Mail
	deadline := t0.Add(f.wait)
	for time.Now().Before(deadline) && (activeAfter == 0 || email == nil) {
		time.Sleep(200 * time.Millisecond)
		if activeAfter == 0 {
			if out, _ := inBox(s, "systemctl", "is-active", unit); out == "active" {
				activeAfter = time.Since(t0)
				fmt.Printf("demo: %s active again after %s\n", unit, activeAfter.Round(100*time.Millisecond))
			}
		}
		if email == nil {
			mails, _ := stack.Mails(s.URLs.MailDir)
			for i := range mails {
				if !seen[mails[i].File] && mails[i].To == stack.Contact {
					email = &mails[i]
					fmt.Printf("demo: email to %s after %s: %s\n%s\n", email.To, email.Received.Sub(t0).Round(100*time.Millisecond),
						email.Subject, indent(email.Text))
					break
				}
			}
		}
	}
	fmt.Printf("demo: status page %s/\n", s.URLs.Remediator)
	if activeAfter == 0 {
		return fmt.Errorf("%s not active again within %s", unit, f.wait)
	}
	if email == nil {
		return fmt.Errorf("no email to %s within %s", stack.Contact, f.wait)
	}
	return nil
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = "    " + lines[i]
	}
	return strings.Join(lines, "\n")
}
