package host

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

var (
	fsLabels    = []string{"mountpoint", "device", "fstype"}
	fsSizeDesc  = prometheus.NewDesc(namespace+"_filesystem_size_bytes", "Filesystem size, as df shows it.", fsLabels, nil)
	fsAvailDesc = prometheus.NewDesc(namespace+"_filesystem_avail_bytes",
		"Space available to unprivileged users, as df shows it.", fsLabels, nil)
	fsUsedDesc = prometheus.NewDesc(namespace+"_filesystem_used_ratio",
		"Share of the filesystem in use, computed as df computes Use%: used / (used + available).", fsLabels, nil)
)

// FSStats are the statfs(2) fields df uses.
type FSStats struct {
	Blocks, Bfree, Bavail uint64
	Bsize                 uint64 // fragment size when the filesystem has one
}

func statfs(path string) (FSStats, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(path, &s); err != nil {
		return FSStats{}, err
	}
	bsize := uint64(s.Frsize)
	if bsize == 0 {
		bsize = uint64(s.Bsize)
	}
	return FSStats{Blocks: s.Blocks, Bfree: s.Bfree, Bavail: s.Bavail, Bsize: bsize}, nil
}

// diskCollector reports every real filesystem. statfs on a dead NFS server
// blocks in the kernel, so each call runs in its own goroutine with a
// deadline; a mount that missed it is skipped until its call returns.
type diskCollector struct {
	procRoot string
	statfs   func(string) (FSStats, error)
	timeout  time.Duration
	logger   log.Logger

	mu    sync.Mutex
	stuck map[string]bool
}

func newDiskCollector(procRoot string, statfs func(string) (FSStats, error), timeout time.Duration, logger log.Logger) *diskCollector {
	return &diskCollector{procRoot: procRoot, statfs: statfs, timeout: timeout, logger: logger, stuck: map[string]bool{}}
}

// mount is one line of /proc/self/mountinfo.
type mount struct {
	device     string // major:minor
	mountpoint string
	fstype     string
	source     string
}

type statResult struct {
	m     mount
	stats FSStats
	err   error
}

func (c *diskCollector) update(ch chan<- prometheus.Metric, _ *Target) error {
	f, err := os.Open(filepath.Join(c.procRoot, "self/mountinfo"))
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	mounts, err := parseMountinfo(f)
	f.Close()
	if err != nil {
		return err
	}
	mounts = realFilesystems(mounts)

	results := make(chan statResult, len(mounts))
	var skipped []string
	started := 0
	for _, m := range mounts {
		if c.isStuck(m.mountpoint) {
			skipped = append(skipped, m.mountpoint)
			continue
		}
		started++
		go func() {
			s, err := c.statfs(m.mountpoint)
			c.setStuck(m.mountpoint, false)
			results <- statResult{m: m, stats: s, err: err}
		}()
	}
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	var errs []error
	pending := map[string]bool{}
	for _, m := range mounts {
		pending[m.mountpoint] = true
	}
	for i := 0; i < started; i++ {
		select {
		case r := <-results:
			delete(pending, r.m.mountpoint)
			if r.err != nil {
				errs = append(errs, fmt.Errorf("statfs %s: %w", r.m.mountpoint, r.err))
				continue
			}
			emitFilesystem(ch, r.m, r.stats)
		case <-timer.C:
			for mp := range pending {
				if !slices.Contains(skipped, mp) {
					c.setStuck(mp, true)
					level.Warn(c.logger).Log("msg", "statfs did not return in time; skipping the mount until it does", "mountpoint", mp, "timeout", c.timeout)
					skipped = append(skipped, mp)
				}
			}
			i = started
		}
	}
	if len(skipped) > 0 {
		sort.Strings(skipped)
		errs = append(errs, fmt.Errorf("mounts not answering statfs: %s", strings.Join(skipped, ", ")))
	}
	return errors.Join(errs...)
}

func emitFilesystem(ch chan<- prometheus.Metric, m mount, s FSStats) {
	size := float64(s.Blocks * s.Bsize)
	avail := float64(s.Bavail * s.Bsize)
	used := float64((s.Blocks - s.Bfree) * s.Bsize)
	ratio := 0.0
	if used+avail > 0 {
		ratio = used / (used + avail)
	}
	ch <- prometheus.MustNewConstMetric(fsSizeDesc, prometheus.GaugeValue, size, m.mountpoint, m.source, m.fstype)
	ch <- prometheus.MustNewConstMetric(fsAvailDesc, prometheus.GaugeValue, avail, m.mountpoint, m.source, m.fstype)
	ch <- prometheus.MustNewConstMetric(fsUsedDesc, prometheus.GaugeValue, ratio, m.mountpoint, m.source, m.fstype)
}

func (c *diskCollector) isStuck(mp string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stuck[mp]
}

func (c *diskCollector) setStuck(mp string, v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v {
		c.stuck[mp] = true
	} else {
		delete(c.stuck, mp)
	}
}

// parseMountinfo reads /proc/self/mountinfo: "ID PARENT MAJ:MIN ROOT
// MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS".
func parseMountinfo(r interface{ Read([]byte) (int, error) }) ([]mount, error) {
	var out []mount
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || sep+2 >= len(f) {
			return nil, fmt.Errorf("parse mountinfo: malformed line %q", sc.Text())
		}
		out = append(out, mount{
			device:     f[2],
			mountpoint: unescapeMount(f[4]),
			fstype:     f[sep+1],
			source:     unescapeMount(f[sep+2]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse mountinfo: %w", err)
	}
	return out, nil
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return true
}

// pseudoFS are filesystem types that hold no disk space of the host.
var pseudoFS = map[string]bool{
	"autofs": true, "binfmt_misc": true, "bpf": true, "cgroup": true, "cgroup2": true,
	"configfs": true, "debugfs": true, "devpts": true, "devtmpfs": true, "efivarfs": true,
	"fusectl": true, "hugetlbfs": true, "mqueue": true, "nsfs": true, "proc": true,
	"pstore": true, "ramfs": true, "rpc_pipefs": true, "securityfs": true, "selinuxfs": true,
	"sysfs": true, "tracefs": true, "tmpfs": true, "squashfs": true, "iso9660": true,
	"nfsd": true, "fuse.lxcfs": true, "fuse.gvfsd-fuse": true, "fuse.portal": true,
}

// pseudoMountPrefixes are trees that only hold the kernel's and container
// runtimes' mounts.
var pseudoMountPrefixes = []string{"/proc/", "/sys/", "/dev/", "/run/", "/var/lib/docker/", "/var/lib/containers/", "/snap/"}

// realFilesystems keeps what df would list as disks: no pseudo filesystems,
// and each device once, under its shortest mountpoint (bind mounts repeat it).
func realFilesystems(ms []mount) []mount {
	best := map[string]int{}
	var out []mount
	for _, m := range ms {
		if pseudoFS[m.fstype] || hasAnyPrefix(m.mountpoint+"/", pseudoMountPrefixes) {
			continue
		}
		if i, ok := best[m.device]; ok {
			if len(m.mountpoint) < len(out[i].mountpoint) {
				out[i] = m
			}
			continue
		}
		best[m.device] = len(out)
		out = append(out, m)
	}
	return out
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

var _ collector = (*diskCollector)(nil)
