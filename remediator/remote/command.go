// Package remote runs the ladders' commands: over SSH on the managed host
// (ssh.go), and out-of-band where the remediator runs (local.go). Commands
// are argv vectors rendered from the runbook's templates with inventory
// values; this package quotes every element for the remote shell and bounds
// every command on the remote side too (`timeout --kill-after`), because a
// signal sent over an SSH channel is ignored for root logins.
package remote

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Command is one command to run.
type Command struct {
	// Name is the runbook template's name, for the journal.
	Name string
	Argv []string
	// Stdin is written to the command's standard input (an agreed password);
	// nil gives it an empty input. It never appears in Line.
	Stdin []byte
	// Detach runs the command with its standard streams on a temporary file
	// instead of the SSH channel, then prints that file: a daemon that keeps
	// its starter's streams open (dovecot's init script) cannot hold the
	// session open. Restarts are detached.
	Detach bool
	// Timeout bounds the command on the remote side and here.
	Timeout time.Duration
}

// Result is what a command did.
type Result struct {
	// ExitCode is the command's status; -1 when unknown (killed without a
	// status, connection lost).
	ExitCode  int
	Output    []byte
	Truncated bool
	Duration  time.Duration
}

// safeChars need no quoting in a POSIX shell word.
func safe(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)
}

// Quote makes s one word of a POSIX shell command line, whatever it holds.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if strings.IndexFunc(s, func(r rune) bool { return !safe(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// Join quotes and joins an argv for display or a shell.
func Join(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// seconds renders a duration for timeout(1), rounded up to whole seconds.
func seconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Sprintf("%ds", s)
}

// Line is the shell line sent to the host: the quoted argv under
// timeout(1), its stderr merged into stdout, detached when asked.
func (c Command) Line(killAfter time.Duration) string {
	run := Join(c.Argv)
	if c.Timeout > 0 {
		run = "timeout --kill-after=" + seconds(killAfter) + " " + seconds(c.Timeout) + " " + run
	}
	if c.Detach {
		return `f=$(mktemp) || exit 125; ` + run + ` </dev/null >"$f" 2>&1; rc=$?; cat "$f"; rm -f "$f"; exit $rc`
	}
	return run + " 2>&1"
}

// limitBuffer keeps the first limit bytes written to it, from several
// writers at once.
type limitBuffer struct {
	mu        sync.Mutex
	buf       []byte
	limit     int
	truncated bool
}

func (b *limitBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.limit - len(b.buf)
	if room < len(p) {
		b.truncated = true
		if room > 0 {
			b.buf = append(b.buf, p[:room]...)
		}
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *limitBuffer) result() ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...), b.truncated
}
