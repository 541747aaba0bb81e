package testbox

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// A plan is everything the box's overlay gets on top of the machine's own
// root, as data: the seed script (seedScript) applies it inside the box's
// private mount namespace, on the merged overlay, so that every change lands
// in the box's tmpfs and the machine's files are never touched. Building it
// is pure (the machine's tree is read through an fs.FS), so it is tested
// without root.
type plan struct {
	// remove: paths deleted (rm -rf) before the entries are unpacked. A
	// directory removed and then listed in entries comes back empty and
	// opaque: nothing of the machine's version shows through.
	remove []string
	// empty: directories whose whole content is deleted (the directory itself,
	// its owner and mode stay the machine's).
	empty []string
	// clearFiles: directories whose regular files are deleted, everywhere
	// beneath; subdirectories stay (log directories with their owners).
	clearFiles []string
	// entries: files, directories and symlinks unpacked (tar, existing
	// directories keep their metadata).
	entries []entry
	// postconf: argument lists for postconf, run with -c on the box's
	// /etc/postfix.
	postconf [][]string
}

// entry is one file, directory or symlink of the overlay.
type entry struct {
	path   string      // absolute path inside the box
	mode   fs.FileMode // permission bits, plus fs.ModeDir or fs.ModeSymlink
	data   []byte      // regular files
	target string      // symlinks
}

func (p *plan) file(name string, perm fs.FileMode, data []byte) {
	p.entries = append(p.entries, entry{path: name, mode: perm, data: data})
}

func (p *plan) text(name, text string) { p.file(name, 0o644, []byte(text)) }

func (p *plan) dir(name string, perm fs.FileMode) {
	p.entries = append(p.entries, entry{path: name, mode: fs.ModeDir | perm})
}

func (p *plan) symlink(name, target string) {
	p.entries = append(p.entries, entry{path: name, mode: fs.ModeSymlink | 0o777, target: target})
}

// check rejects paths the seed script must never see: relative ones, and
// ones that climb out of the root.
func (p *plan) check() error {
	var all []string
	all = append(all, p.remove...)
	all = append(all, p.empty...)
	all = append(all, p.clearFiles...)
	for _, e := range p.entries {
		all = append(all, e.path)
	}
	for _, name := range all {
		if !path.IsAbs(name) || path.Clean(name) != name || name == "/" {
			return fmt.Errorf("box path %q: want a clean absolute path below /", name)
		}
	}
	return nil
}

// tarball encodes the entries as a tar stream, parents before children, with
// the missing parent directories added (0755). Everything belongs to root.
func (p *plan) tarball() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	byPath := map[string]entry{}
	for _, e := range p.entries {
		byPath[e.path] = e // a later entry replaces an earlier one
	}
	for name := range byPath {
		for dir := path.Dir(name); dir != "/"; dir = path.Dir(dir) {
			if _, ok := byPath[dir]; !ok {
				byPath[dir] = entry{path: dir, mode: fs.ModeDir | 0o755}
			}
		}
	}
	names := make([]string, 0, len(byPath))
	for name := range byPath {
		names = append(names, name)
	}
	// Sorting by path puts every directory before what it holds.
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A minute old: some daemons wait until a freshly changed file settles.
	mtime := time.Now().Add(-time.Minute).Truncate(time.Second)
	for _, name := range names {
		e := byPath[name]
		h := &tar.Header{
			Name:    "." + name,
			Mode:    int64(e.mode.Perm()),
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		switch {
		case e.mode&fs.ModeDir != 0:
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case e.mode&fs.ModeSymlink != 0:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.target
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("tar %s: %w", name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// seedScript is the shell program run by `unshare --mount --propagation
// private`: it mounts the tmpfs and the overlay, applies the plan (its
// entries arrive on stdin as a tar stream) and execs systemd-nspawn, so the
// process the caller holds is nspawn itself. $1 is the mount point, $2 the
// network namespace's path; the rest are systemd-nspawn's options. The
// shell first moves itself (and so nspawn) into the box's cgroups.
func (p *plan) seedScript(tmpfsSize string, cgroups []string) string {
	var b strings.Builder
	b.WriteString(`set -eu
M=$1; NETNS=$2; shift 2
`)
	// Into the box's own cgroups first: nspawn keeps them (--keep-unit).
	for _, dir := range cgroups {
		fmt.Fprintf(&b, "echo $$ > %s\n", shellQuote(dir+"/cgroup.procs"))
	}
	b.WriteString(`mount -t tmpfs -o mode=0755,size=` + tmpfsSize + ` mamori-testbox "$M"
mkdir "$M/upper" "$M/work" "$M/root"
mount -t overlay -o lowerdir=/,upperdir="$M/upper",workdir="$M/work" mamori-testbox "$M/root"
R=$M/root
# Other network namespaces' mounts were copied into this mount namespace:
# drop them, or they would keep those namespaces alive as long as this box.
for n in /run/netns/*; do
	[ "$n" = "$NETNS" ] || umount -l "$n" 2>/dev/null || true
done
`)
	for _, name := range p.remove {
		fmt.Fprintf(&b, "rm -rf -- \"$R\"%s\n", shellQuote(name))
	}
	for _, name := range p.empty {
		fmt.Fprintf(&b, "[ ! -d \"$R\"%[1]s ] || find \"$R\"%[1]s -mindepth 1 -delete\n", shellQuote(name))
	}
	for _, name := range p.clearFiles {
		fmt.Fprintf(&b, "[ ! -d \"$R\"%[1]s ] || find \"$R\"%[1]s -type f -delete\n", shellQuote(name))
	}
	b.WriteString("tar -x -p --numeric-owner --no-overwrite-dir -C \"$R\" -f -\n")
	for _, args := range p.postconf {
		b.WriteString(`postconf -c "$R/etc/postfix"`)
		for _, a := range args {
			b.WriteString(" " + shellQuote(a))
		}
		b.WriteString("\n")
	}
	if len(p.postconf) > 0 {
		// Postfix reads a main.cf changed in the last two seconds only once it
		// has stayed unchanged that long (it dozes 300 ms at a time): at boot,
		// its systemd generator would hold everything up by ~2 s.
		b.WriteString("touch -c -d @$(($(date +%s) - 60)) \"$R/etc/postfix/main.cf\" \"$R/etc/postfix/master.cf\"\n")
	}
	b.WriteString("exec systemd-nspawn -D \"$R\" \"$@\" </dev/null\n")
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
