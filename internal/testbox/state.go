package testbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runDir holds one state file per box (NAME.json), each box's directory
// (keys, known_hosts, console log, the tmpfs mount point) and the lock that
// serialises setting up and tearing down networks, across processes.
const runDir = "/run/mamori-testbox"

// state is what a later Start needs to clean up after a run that crashed.
type state struct {
	Name       string   `json:"name"`
	Index      int      `json:"index"`
	Netns      string   `json:"netns"`
	Veth       string   `json:"veth"`
	Dir        string   `json:"dir"`
	Owner      int      `json:"owner"` // the test process
	OwnerStart uint64   `json:"owner_start"`
	NSpawn     int      `json:"nspawn,omitempty"`
	NSpawnBorn uint64   `json:"nspawn_start,omitempty"`
	Leader     int      `json:"leader,omitempty"` // the box's systemd
	LeaderBorn uint64   `json:"leader_start,omitempty"`
	AddedGuard bool     `json:"added_guard,omitempty"`
	Cgroups    []string `json:"cgroups,omitempty"`
}

func statePath(name string) string { return filepath.Join(runDir, name+".json") }

func writeState(s *state) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := statePath(s.Name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(s.Name))
}

func readStates() ([]*state, error) {
	names, err := filepath.Glob(filepath.Join(runDir, "*.json"))
	if err != nil {
		return nil, err
	}
	var states []*state
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		s := &state{}
		if err := json.Unmarshal(b, s); err != nil || s.Name == "" {
			// Unreadable: nothing to clean by, but it must not block anything.
			_ = os.Remove(name)
			continue
		}
		states = append(states, s)
	}
	return states, nil
}

// procStart is a process's start time (clock ticks since boot): with the
// PID, it names a process for good, whatever PIDs get reused.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatStart(b)
}

// parseStatStart reads field 22 (starttime) of /proc/PID/stat; the command
// name (field 2) may hold spaces and parentheses, so fields are counted from
// the last ')'.
func parseStatStart(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, errors.New("short /proc stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// alive reports whether the process pid, started at start, still runs (a
// zombie counts as gone).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	st, err := parseStatStart(b)
	if err != nil || st != start {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// waitGone polls until the process is gone or d has passed.
func waitGone(pid int, start uint64, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for alive(pid, start) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// withLock runs fn holding the lock on runDir, waiting for it as long as ctx
// lets it.
func withLock(ctx context.Context, fn func() error) error {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(runDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the lock %s: %w", f.Name(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}

// reap removes what a crashed run left of a box: its processes (killed by
// PID, once the PID is proven to be the same process), its veth and
// namespace, its directory and state file.
func reap(ctx context.Context, s *state) error {
	if alive(s.Leader, s.LeaderBorn) {
		// Killing the box's init ends every process of its PID namespace.
		_ = syscall.Kill(s.Leader, syscall.SIGKILL)
		waitGone(s.Leader, s.LeaderBorn, 5*time.Second)
	}
	if alive(s.NSpawn, s.NSpawnBorn) {
		_ = syscall.Kill(s.NSpawn, syscall.SIGKILL)
		if !waitGone(s.NSpawn, s.NSpawnBorn, 5*time.Second) {
			return fmt.Errorf("stale box %s: nspawn (pid %d) does not exit", s.Name, s.NSpawn)
		}
	}
	err := errors.Join(teardownNet(ctx, s.Veth, s.Netns), removeCgroups(s.Cgroups))
	if s.Dir != "" && strings.HasPrefix(s.Dir, runDir+"/") {
		err = errors.Join(err, os.RemoveAll(s.Dir))
	}
	if err == nil {
		err = os.Remove(statePath(s.Name))
	}
	if err != nil {
		return fmt.Errorf("stale box %s: %w", s.Name, err)
	}
	return nil
}
