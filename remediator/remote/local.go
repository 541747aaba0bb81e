package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// Local runs the inventory's out-of-band commands (console, power cycle)
// where the remediator runs: argv as given, no shell, in a process group of
// its own that is killed whole when the timeout passes.
type Local struct {
	OutputLimit int
	// WaitDelay bounds how long a killed command's streams may stay open
	// (a child that inherited them).
	WaitDelay time.Duration
}

// Run runs cmd.Argv locally within cmd.Timeout.
func (l Local) Run(ctx context.Context, cmd Command) (Result, error) {
	res := Result{ExitCode: -1}
	if len(cmd.Argv) == 0 {
		return res, errors.New("empty out-of-band command")
	}
	limit := l.OutputLimit
	if limit <= 0 {
		limit = 64 << 10
	}
	if cmd.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmd.Timeout)
		defer cancel()
	}
	c := exec.CommandContext(ctx, cmd.Argv[0], cmd.Argv[1:]...)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = l.WaitDelay
	if c.WaitDelay <= 0 {
		c.WaitDelay = 5 * time.Second
	}
	out := &limitBuffer{limit: limit}
	c.Stdout, c.Stderr = out, out
	if cmd.Stdin != nil {
		c.Stdin = bytes.NewReader(cmd.Stdin)
	}
	start := time.Now()
	err := c.Run()
	res.Duration = time.Since(start)
	res.Output, res.Truncated = out.result()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s: %w", cmd.Name, ctx.Err())
	case err == nil:
		res.ExitCode = 0
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		res.ExitCode = exitErr.ExitCode()
	default:
		return res, fmt.Errorf("%s: %w", cmd.Name, err)
	}
	return res, nil
}
