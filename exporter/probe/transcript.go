package probe

import (
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
)

// maxTranscript bounds one check's transcript.
const maxTranscript = 64 << 10

// Transcript records a probe's dialogue for `debug=true`: what was sent
// (">"), what was received ("<"), and what the prober did, each line with
// its time since the start. A nil *Transcript records nothing, so probers
// call it unconditionally. Nothing secret is ever sent by a probe, so
// nothing secret can appear in it.
type Transcript struct {
	mu        sync.Mutex
	start     time.Time
	b         strings.Builder
	truncated bool
}

// NewTranscript starts an empty transcript.
func NewTranscript() *Transcript { return &Transcript{start: time.Now()} }

// Printf records a note of the prober's own.
func (t *Transcript) Printf(format string, args ...any) {
	if t == nil {
		return
	}
	t.line("  ", fmt.Sprintf(format, args...))
}

// Sent records a line the prober wrote.
func (t *Transcript) Sent(s string) {
	if t == nil {
		return
	}
	t.line("> ", s)
}

// Received records a line the server wrote.
func (t *Transcript) Received(s string) {
	if t == nil {
		return
	}
	t.line("< ", s)
}

func (t *Transcript) line(dir, s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.truncated {
		return
	}
	if t.b.Len() > maxTranscript {
		t.truncated = true
		t.b.WriteString("  ... transcript truncated\n")
		return
	}
	fmt.Fprintf(&t.b, "%+8.3fs %s%s\n", time.Since(t.start).Seconds(), dir, printable(s))
}

// String returns the transcript so far.
func (t *Transcript) String() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}

// printable drops a line's CR LF and escapes other control characters, so a
// server cannot forge transcript lines.
func printable(s string) string {
	s = strings.TrimRight(s, "\r\n")
	clean := true
	for _, r := range s {
		if r != '\t' && (unicode.IsControl(r) || r == unicode.ReplacementChar) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteRune(r)
		case unicode.IsControl(r) || r == unicode.ReplacementChar:
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
