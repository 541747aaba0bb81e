package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mamori-ops/mamori/deploy/demo/stack"
	"github.com/mamori-ops/mamori/internal/testenv"
)

// The swap scenario. The box shares the machine's kernel, so its
// /proc/meminfo (what the host role and free read) is the machine's: the
// fault is made on the machine. A swap file of its own is switched on, and
// a process of this test binary (swapHog), held in a memory cgroup of
// swapLimit, touches memory until swapTarget of all swap is in use.
const (
	swapFileSize = 128 << 20
	swapLimit    = 16 << 20
	swapTarget   = 0.75
	// swapHogMax bounds what the hog touches, whatever swap the machine has.
	swapHogMax = swapFileSize + 2*swapLimit
	// swapPrefix names the swap file's directory (in /var/tmp: /tmp may be a
	// tmpfs, which cannot hold swap) and the cgroup, with the test's PID.
	swapPrefix = "mamori-e2e-swap-"
	hogEnv     = "MAMORI_E2E_SWAP_HOG"
)

// TestMain lets this binary be the swap scenario's memory hog.
func TestMain(m *testing.M) {
	if procs := os.Getenv(hogEnv); procs != "" {
		os.Exit(swapHog(procs))
	}
	os.Exit(m.Run())
}

// swapHog joins the cgroup (its cgroup.procs file), touches memory 1 MiB
// at a time until swapTarget of the machine's swap is in use or it has
// touched swapHogMax, says "ready" with what it reached, and holds the
// memory until its standard input closes (the test ends or dies) or ten
// minutes have passed.
func swapHog(procs string) int {
	if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "join the cgroup:", err)
		return 1
	}
	var held [][]byte
	used := 0.0
	for len(held)<<20 < swapHogMax && used < swapTarget {
		chunk := make([]byte, 1<<20)
		for i := 0; i < len(chunk); i += 4096 {
			chunk[i] = 1 // a private page: swappable, not the shared zero page
		}
		held = append(held, chunk)
		if len(held)%4 == 0 {
			total, free, err := readSwap()
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			if total > 0 {
				used = float64(total-free) / float64(total)
			}
		}
	}
	fmt.Printf("ready %d MiB touched, %.0f%% of swap in use\n", len(held), 100*used)
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
	}
	runtime.KeepAlive(held)
	return 0
}

// readSwap reads SwapTotal and SwapFree (bytes) from /proc/meminfo.
func readSwap() (total, free int64, err error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	return parseSwap(string(b))
}

func parseSwap(meminfo string) (total, free int64, err error) {
	seen := 0
	for _, line := range strings.Split(meminfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || (f[0] != "SwapTotal:" && f[0] != "SwapFree:") {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("meminfo %s: %w", f[0], err)
		}
		if f[0] == "SwapTotal:" {
			total = kb << 10
		} else {
			free = kb << 10
		}
		seen++
	}
	if seen != 2 {
		return 0, 0, errors.New("meminfo: no SwapTotal and SwapFree")
	}
	return total, free, nil
}

// memoryCgroup is where a memory cgroup is made and the file that limits
// it: cgroup v1's memory hierarchy, or cgroup2 with the memory controller.
func memoryCgroup() (root, limitFile string, err error) {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
		return "/sys/fs/cgroup/memory", "memory.limit_in_bytes", nil
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control"); err == nil && slices.Contains(strings.Fields(string(b)), "memory") {
		return "/sys/fs/cgroup", "memory.max", nil
	}
	return "", "", errors.New("no memory cgroup controller (cgroup v1 /sys/fs/cgroup/memory, or cgroup2 with memory enabled)")
}

// fillSwap switches a swap file on and pushes the hog into it. Everything
// is undone at the test's cleanup, failed or not: the hog killed, the
// swap file switched off and removed, the cgroup removed.
func fillSwap(t *testing.T, e *env) {
	t.Helper()
	sweepSwap(t)
	root, limitFile, err := memoryCgroup()
	if err != nil {
		testenv.Need(t, "%v", err)
	}
	dir, err := os.MkdirTemp("/var/tmp", fmt.Sprintf("%s%d-", swapPrefix, os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeSwap(t, dir) })
	file := filepath.Join(dir, "swap")
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Fallocate(int(f.Fd()), 0, 0, swapFileSize)
	f.Close()
	if err != nil {
		t.Fatalf("fallocate %s: %v", file, err)
	}
	if out, err := exec.Command("mkswap", file).CombinedOutput(); err != nil {
		t.Fatalf("mkswap: %v: %s", err, out)
	}
	if out, err := exec.Command("swapon", file).CombinedOutput(); err != nil {
		testenv.Need(t, "swapon %s refused: %v: %s", file, err, out)
	}

	cg := filepath.Join(root, fmt.Sprintf("%s%d", swapPrefix, os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroup(t, cg) })
	if err := os.WriteFile(filepath.Join(cg, limitFile), []byte(strconv.Itoa(swapLimit)), 0o644); err != nil {
		t.Fatal(err)
	}
	// v1: swap this cgroup out whatever the machine's vm.swappiness.
	_ = os.WriteFile(filepath.Join(cg, "memory.swappiness"), []byte("100"), 0o644)

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hog := exec.Command(self)
	hog.Env = append(os.Environ(), hogEnv+"="+filepath.Join(cg, "cgroup.procs"))
	hog.Stderr = os.Stderr
	hog.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := hog.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := hog.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hog.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = hog.Process.Kill()
		_ = hog.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
	}()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "ready") {
			t.Fatalf("the memory hog ended before it was ready: %q", line)
		}
		t.Logf("memory hog: %s", line)
	case <-time.After(time.Minute):
		t.Fatal("the memory hog is not ready after a minute")
	}
	total, free, err := readSwap()
	if err != nil {
		t.Fatal(err)
	}
	if used := float64(total-free) / float64(total); used <= 0.6 {
		t.Fatalf("only %.0f%% of swap in use (%d of %d MiB): not clearly over the threshold", 100*used, (total-free)>>20, total>>20)
	}
}

// removeSwap switches the swap file off and removes its directory.
func removeSwap(t *testing.T, dir string) {
	t.Helper()
	file := filepath.Join(dir, "swap")
	if swapActive(file) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "swapoff", file).CombinedOutput(); err != nil {
			t.Errorf("swapoff %s: %v: %s", file, err, out)
			return // a swap file in use is not removed
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("remove the swap file: %v", err)
	}
}

// removeCgroup removes the hog's cgroup, once its killed task has left it.
func removeCgroup(t *testing.T, dir string) {
	t.Helper()
	var err error
	for range 50 {
		if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("remove cgroup %s: %v", dir, err)
}

// swapActive reports whether /proc/swaps lists file.
func swapActive(file string) bool {
	b, _ := os.ReadFile("/proc/swaps")
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 && f[0] == file {
			return true
		}
	}
	return false
}

// leftoverRE is a swap directory or cgroup a run left, with its PID.
var leftoverRE = regexp.MustCompile(`^` + swapPrefix + `(\d+)(-\w+)?$`)

// sweepSwap removes what a crashed run of this suite left (its swap file,
// still on, and its cgroup): those whose test process is gone.
func sweepSwap(t *testing.T) {
	t.Helper()
	dead := func(name string) bool {
		m := leftoverRE.FindStringSubmatch(name)
		if m == nil {
			return false
		}
		pid, _ := strconv.Atoi(m[1])
		return syscall.Kill(pid, 0) == syscall.ESRCH
	}
	dirs, _ := filepath.Glob("/var/tmp/" + swapPrefix + "*")
	for _, d := range dirs {
		if dead(filepath.Base(d)) {
			t.Logf("removing a crashed run's swap file %s", d)
			removeSwap(t, d)
		}
	}
	if root, _, err := memoryCgroup(); err == nil {
		cgs, _ := filepath.Glob(filepath.Join(root, swapPrefix+"*"))
		for _, cg := range cgs {
			if dead(filepath.Base(cg)) {
				removeCgroup(t, cg)
			}
		}
	}
}

// swapInMail checks that the free output in the email shows the fault:
// more of swap in use than the alert's threshold.
func swapInMail(t *testing.T, _ *env, mail *stack.Mail) {
	t.Helper()
	for _, line := range strings.Split(mail.Text, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "Swap:" {
			continue
		}
		total, err1 := strconv.ParseFloat(f[1], 64)
		used, err2 := strconv.ParseFloat(f[2], 64)
		if err1 != nil || err2 != nil || total == 0 || used/total <= 0.5 {
			t.Errorf("free in the email: %q, want more than 50%% of swap used", line)
		}
		return
	}
	t.Errorf("no Swap: line of free in the email:\n%s", mail.Text)
}
