package testbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Exec runs argv inside the box, in every namespace of its systemd (mount,
// UTS, IPC, network, PID) through nsenter, and returns its standard output.
// It is for test setup and fault injection: `kill -9 PID` with a PID read
// inside the box (`pidof apache2`), never a process killed by name from
// the machine. A failure (exit status included, see exec.ExitError) carries
// the standard error. The command is killed with its process group when ctx
// ends; without a deadline, it gets two minutes.
func (b *Box) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("exec: no command")
	}
	select {
	case <-b.stopped:
		return nil, fmt.Errorf("box %s: stopped", b.Name)
	default:
	}
	if b.Leader == 0 {
		return nil, fmt.Errorf("box %s: not booted", b.Name)
	}
	// Never enter a PID that another process may have taken since.
	if !alive(b.Leader, b.leaderAt) {
		return nil, fmt.Errorf("box %s: its systemd (pid %d) is gone", b.Name, b.Leader)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
	}
	args := append([]string{"-t", strconv.Itoa(b.Leader), "-m", "-u", "-i", "-n", "-p", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = boxEnv
	cmd.Dir = "/"
	// nsenter forks to enter the PID namespace: kill the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("box %s: %s: %w: %s", b.Name, strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
