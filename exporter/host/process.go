package host

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// commLen is the kernel's limit on a process's comm (TASK_COMM_LEN - 1).
const commLen = 15

// clockTicks is USER_HZ, the unit of /proc/PID/stat's starttime; it is 100
// on every Linux architecture Prometheus exporters run on.
const clockTicks = 100

var (
	processUpDesc = prometheus.NewDesc(namespace+"_process_up",
		"1 when at least one live process of the service runs.", []string{"service"}, nil)
	processCountDesc = prometheus.NewDesc(namespace+"_processes",
		"Live processes of the service.", []string{"service"}, nil)
	processStartDesc = prometheus.NewDesc(namespace+"_process_start_time_seconds",
		"Start time of the service's oldest live process, in seconds since the epoch.", []string{"service"}, nil)
)

// settleAge is how long a process may still exec into another program
// (a wrapper script's `exec daemon`); younger processes are not cached.
const settleAge = 10 * time.Second

// processCollector reports process presence per canonical service. It reads
// /proc/PID/stat of every process it has not seen before and, only for
// processes whose comm could be a service's but needs confirming,
// /proc/PID/cmdline. Reading /proc/PID/stat costs about 7 µs here, mostly
// the kernel formatting it, so a process that is not a service is
// remembered and only stat(2)ed on later scrapes (about 1 µs).
type processCollector struct {
	procRoot string
	now      func() time.Time

	mu    sync.Mutex // one scan at a time: the cache is not shared
	cache map[string]*procEntry
	gen   uint64
}

// procEntry is what a scan learned of one /proc/PID.
type procEntry struct {
	id   procID
	comm string
	// settled means the process was older than settleAge when read: its
	// comm will not change by exec any more.
	settled bool
	gen     uint64
}

// procID tells one process from another that reuses its PID: the kernel
// makes a new /proc/PID inode for every process, stamped when made.
type procID struct {
	ino          uint64
	mtime, ctime unix.Timespec
}

func newProcessCollector(procRoot string, now func() time.Time) *processCollector {
	return &processCollector{procRoot: procRoot, now: now, cache: map[string]*procEntry{}}
}

// serviceState accumulates one service's processes during a scan.
type serviceState struct {
	count    int
	minStart uint64 // in clock ticks since boot
}

// matcher maps a comm to the services it may belong to.
type matcher map[string][]matchRule

type matchRule struct {
	service int    // index into Target.Services
	name    string // full process name
	pathHas string
}

func newMatcher(services []ServiceMatch) matcher {
	m := matcher{}
	for i, s := range services {
		for _, p := range s.Processes {
			key := p.Name
			if len(key) > commLen {
				key = key[:commLen]
			}
			m[key] = append(m[key], matchRule{service: i, name: p.Name, pathHas: p.PathHas})
		}
	}
	return m
}

// needsCmdline reports whether a rule can only be decided by argv[0]: the
// name was cut to fit comm, or a path fragment must be confirmed.
func (r matchRule) needsCmdline() bool { return len(r.name) > commLen || r.pathHas != "" }

// matchCmdline decides a rule on argv[0] (the NUL-terminated first field).
func (r matchRule) matchCmdline(cmdline []byte) bool {
	argv0 := cmdline
	if i := bytes.IndexByte(argv0, 0); i >= 0 {
		argv0 = argv0[:i]
	}
	if i := bytes.IndexByte(argv0, ' '); i >= 0 { // a title set by the daemon: "name: worker"
		argv0 = argv0[:i]
	}
	if r.pathHas != "" && !bytes.Contains(argv0, []byte(r.pathHas)) {
		return false
	}
	base := argv0
	if i := bytes.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	base = bytes.TrimSuffix(base, []byte(":"))
	return string(base) == r.name
}

func (c *processCollector) update(ch chan<- prometheus.Metric, t *Target) error {
	states := make([]serviceState, len(t.Services))
	if len(t.Services) == 0 {
		return nil
	}
	btime, err := readBootTime(c.procRoot)
	if err != nil {
		return err
	}
	if err := c.scan(newMatcher(t.Services), states, btime); err != nil {
		return err
	}
	boot := float64(btime)
	for i, s := range t.Services {
		st := states[i]
		up := 0.0
		if st.count > 0 {
			up = 1
			ch <- prometheus.MustNewConstMetric(processStartDesc, prometheus.GaugeValue,
				boot+float64(st.minStart)/clockTicks, s.Service)
		}
		ch <- prometheus.MustNewConstMetric(processUpDesc, prometheus.GaugeValue, up, s.Service)
		ch <- prometheus.MustNewConstMetric(processCountDesc, prometheus.GaugeValue, float64(st.count), s.Service)
	}
	return nil
}

// scan walks /proc once. It reuses one buffer and one path slice for every
// process: at a thousand processes the allocations would otherwise count.
func (c *processCollector) scan(m matcher, states []serviceState, btime uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	dir, err := os.Open(c.procRoot)
	if err != nil {
		return fmt.Errorf("read processes: %w", err)
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read processes: %w", err)
	}
	dirfd := int(dir.Fd())
	c.gen++
	// A process that started before this tick is settled.
	settledBefore := uint64(max(c.now().Add(-settleAge).Unix()-int64(btime), 0)) * clockTicks
	// Containers' processes are visible in the host's /proc: a service runs
	// on the host only in the PID namespace of the host's init.
	nsBuf := make([]byte, 64)
	hostNS := string(pidNamespace(dirfd, "1", nsBuf))
	buf := make([]byte, 4096)
	path := make([]byte, 0, 32)
	var st unix.Stat_t
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // the process ended while we read /proc
		}
		id := procID{ino: st.Ino, mtime: st.Mtim, ctime: st.Ctim}
		e := c.cache[name]
		if e != nil && e.id == id && e.settled && len(m[e.comm]) == 0 {
			e.gen = c.gen
			continue // a known process that is no service's
		}
		path = append(path[:0], name...)
		n := len(path)
		stat, err := readSmall(dirfd, append(path, "/stat"...), buf)
		if err != nil {
			continue
		}
		comm, state, start, ok := parseStat(stat)
		if !ok {
			continue
		}
		base := commBase(comm)
		if e == nil || e.comm != string(base) {
			e = &procEntry{comm: string(base)}
			c.cache[name] = e
		}
		e.id, e.settled, e.gen = id, start < settledBefore, c.gen
		if state == 'Z' || state == 'X' {
			continue // zombies linger until reaped and are not the service
		}
		rules := m[e.comm]
		if len(rules) == 0 {
			continue
		}
		if hostNS != "" && string(pidNamespace(dirfd, name, nsBuf)) != hostNS {
			continue // a container's process, not the host's service
		}
		var cmdline []byte
		var matched uint64 // bit i: service i already counted for this process
		for _, r := range rules {
			if r.service < 64 && matched&(1<<r.service) != 0 {
				continue
			}
			if r.needsCmdline() {
				if cmdline == nil {
					// buf held stat; everything needed from it is copied.
					cl, err := readSmall(dirfd, append(path[:n], "/cmdline"...), buf)
					if err != nil {
						break
					}
					cmdline = cl
				}
				if !r.matchCmdline(cmdline) {
					continue
				}
			}
			if r.service < 64 {
				matched |= 1 << r.service
			}
			st := &states[r.service]
			if st.count == 0 || start < st.minStart {
				st.minStart = start
			}
			st.count++
		}
	}
	for pid, e := range c.cache {
		if e.gen != c.gen {
			delete(c.cache, pid) // the process is gone
		}
	}
	return nil
}

// pidNamespace reads /proc/PID/ns/pid ("pid:[4026531836]"); nil when it
// cannot be read (a fixture tree, or no ptrace access to the process),
// and then no process is told apart by namespace.
func pidNamespace(dirfd int, pid string, buf []byte) []byte {
	n, err := unix.Readlinkat(dirfd, pid+"/ns/pid", buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// commBase reduces a comm to the name it stands for: a daemon that sets its
// title ("spamd child", "/usr/sbin/spamd") keeps its name in the first word.
func commBase(comm []byte) []byte {
	if i := bytes.IndexByte(comm, ' '); i >= 0 {
		comm = comm[:i]
	}
	if i := bytes.LastIndexByte(comm, '/'); i >= 0 && i < len(comm)-1 {
		comm = comm[i+1:]
	}
	return bytes.TrimSuffix(comm, []byte(":"))
}

// parseStat reads comm, state and starttime from /proc/PID/stat. comm may
// hold spaces and parentheses, so it ends at the last ')'.
func parseStat(b []byte) (comm []byte, state byte, start uint64, ok bool) {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open || closing+3 >= len(b) {
		return nil, 0, 0, false
	}
	comm = b[open+1 : closing]
	rest := b[closing+2:]
	state = rest[0]
	// starttime is field 22; rest starts at field 3 (state).
	field := 3
	for i := 0; i < len(rest); i++ {
		if rest[i] != ' ' {
			continue
		}
		field++
		if field == 22 {
			j := i + 1
			k := j
			for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
				k++
			}
			v, err := strconv.ParseUint(string(rest[j:k]), 10, 64)
			return comm, state, v, err == nil
		}
	}
	return nil, 0, 0, false
}

// readSmall reads a small file below dirfd into buf with raw system calls:
// openat on a short relative path, one read (procfs returns a whole stat or
// cmdline at once), close. At a thousand processes the system calls are
// the scrape's whole cost, so none is spared.
func readSmall(dirfd int, path []byte, buf []byte) ([]byte, error) {
	fd, err := unix.Openat(dirfd, string(path), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		n += m
		if m == 0 || n < len(buf) {
			break // a short read is the end of a procfs file
		}
	}
	return buf[:n], nil
}

// readBootTime reads btime from /proc/stat.
func readBootTime(procRoot string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "stat"))
	if err != nil {
		return 0, fmt.Errorf("read boot time: %w", err)
	}
	return parseBootTime(b)
}

func parseBootTime(b []byte) (uint64, error) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			return strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		}
	}
	return 0, errors.New("no btime line in /proc/stat")
}

var _ collector = (*processCollector)(nil)
