package testbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Every box gets a cgroup of its own, in each hierarchy systemd uses (the
// cgroup2 one and, on a hybrid machine, the v1 name=systemd one), created
// below the test process's cgroup. nspawn with --keep-unit puts the box
// into "payload" below its own cgroup: without this, every box started from
// the same cgroup would share one payload, and the systemd of each would
// manage the other's apache2.service cgroup.

// cgroupDirs lists the box's cgroup directories, one per hierarchy.
func cgroupDirs(name string) ([]string, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	dirs := parseCgroupDirs(string(self), string(mounts), "mamori-testbox-"+name)
	if len(dirs) == 0 {
		return nil, errors.New("no cgroup2 or name=systemd hierarchy mounted: systemd-nspawn cannot run")
	}
	return dirs, nil
}

// parseCgroupDirs joins, for the cgroup2 hierarchy and the v1 name=systemd
// one, where it is mounted (mountinfo), the process's path in it
// (/proc/self/cgroup) and leaf.
func parseCgroupDirs(selfCgroup, mountinfo, leaf string) []string {
	paths := map[string]string{} // "cgroup2" or "name=systemd" → the process's path
	for _, line := range strings.Split(selfCgroup, "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case f[0] == "0" && f[1] == "":
			paths["cgroup2"] = f[2]
		case strings.Contains(","+f[1]+",", ",name=systemd,"):
			paths["name=systemd"] = f[2]
		}
	}
	var dirs []string
	seen := map[string]bool{}
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		root, mnt := f[3], f[4]
		var kind string
		switch {
		case g[0] == "cgroup2":
			kind = "cgroup2"
		case g[0] == "cgroup" && strings.Contains(","+g[2]+",", ",name=systemd,"):
			kind = "name=systemd"
		default:
			continue
		}
		p, ok := paths[kind]
		if !ok || seen[kind] {
			continue
		}
		seen[kind] = true
		rel := p
		if root != "/" {
			rel = strings.TrimPrefix(p, root)
		}
		dirs = append(dirs, path.Join(mnt, rel, leaf))
	}
	return dirs
}

// removeCgroups removes the box's cgroups and what the box's systemd made
// below them, deepest first. A cgroup with a process left cannot be removed:
// it is retried for a while, then reported.
func removeCgroups(dirs []string) error {
	var errs []error
	for _, dir := range dirs {
		if !strings.Contains(dir, "/mamori-testbox-") {
			continue // never anything else
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			err := rmTree(dir)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("cgroup %s: %w", dir, err))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

// rmTree removes a cgroup directory tree: only directories can be removed
// there (rmdir), the files inside go with them.
func rmTree(dir string) error {
	var subdirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			subdirs = append(subdirs, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	sort.Slice(subdirs, func(i, j int) bool { return len(subdirs[i]) > len(subdirs[j]) })
	for _, d := range subdirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
