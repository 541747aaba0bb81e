package sshtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FakeHost is a managed server's tools as shell scripts, for the SSH
// server to run: systemctl, service, ps, journalctl, top, free, df, nproc,
// postqueue and postcat, over a state directory the test controls. Units
// are files: units/NAME holds the `ps` line of the unit's process,
// active/NAME exists while it runs. Every systemctl and service call is
// logged.
type FakeHost struct {
	Bin   string
	State string
}

// scripts are the fake tools, by name.
func scripts() map[string]string {
	return map[string]string{
		"systemctl": `#!/bin/sh
S="$MAMORI_FAKE_STATE"
echo "systemctl $*" >> "$S/log"
cmd="$1"; shift
last=""; for a in "$@"; do last="$a"; done
case "$cmd" in
is-active)
	if [ -e "$S/active/$last" ]; then echo active; exit 0; fi
	echo inactive; exit 3 ;;
restart)
	if [ ! -e "$S/units/$last" ]; then echo "Failed to restart $last.service: Unit $last.service not found." >&2; exit 5; fi
	if [ -e "$S/broken/$last" ]; then echo "Job for $last.service failed because the control process exited with error code." >&2; exit 1; fi
	cp "$S/units/$last" "$S/active/$last"
	echo "restart $last" >> "$S/restarts"
	if [ -e "$S/restart-delay" ]; then sleep "$(cat "$S/restart-delay")"; fi
	exit 0 ;;
status)
	if [ -e "$S/active/$last" ]; then printf '● %s.service\n     Active: active (running)\n' "$last"; exit 0; fi
	printf '○ %s.service\n     Active: inactive (dead)\n' "$last"; exit 3 ;;
reboot)
	touch "$S/rebooted"; exit 0 ;;
esac
echo "systemctl: unknown command $cmd" >&2; exit 1
`,
		"service": `#!/bin/sh
exec systemctl "$2" "$1"
`,
		"ps": `#!/bin/sh
S="$MAMORI_FAKE_STATE"
for f in "$S"/active/*; do [ -e "$f" ] && cat "$f"; done
printf 'Ss systemd /sbin/init\nZ apache2 [apache2] <defunct>\n'
exit 0
`,
		"journalctl": `#!/bin/sh
echo "Nov 26 06:00:00 web1 systemd[1]: $4.service: Main process exited, code=killed, status=9/KILL"
echo "Nov 26 06:00:00 web1 systemd[1]: $4.service: Failed with result 'signal'."
`,
		"top": `#!/bin/sh
S="$MAMORI_FAKE_STATE"
if [ -e "$S/top" ]; then cat "$S/top"; exit 0; fi
echo "top - 06:00:00 up 10 days,  1:00,  1 user,  load average: 0.50, 0.40, 0.30"
echo "Tasks: 100 total,   1 running,  99 sleeping,   0 stopped,   0 zombie"
`,
		"free": `#!/bin/sh
echo "               total        used        free      shared  buff/cache   available"
echo "Mem:            2000        1900          20           1          80          50"
echo "Swap:           1024         900         124"
`,
		"df": `#!/bin/sh
echo "Filesystem      Size  Used Avail Use% Mounted on"
echo "/dev/vda1        20G   19G  1.0G  95% /"
`,
		"nproc": `#!/bin/sh
S="$MAMORI_FAKE_STATE"
if [ -e "$S/nproc" ]; then cat "$S/nproc"; else echo 2; fi
`,
		"postqueue": `#!/bin/sh
S="$MAMORI_FAKE_STATE"
[ -e "$S/mailq" ] && cat "$S/mailq"
exit 0
`,
		"postcat": `#!/bin/sh
S="$MAMORI_FAKE_STATE"
for id; do :; done
if [ -e "$S/postcat/$id" ]; then cat "$S/postcat/$id"; exit 0; fi
echo "postcat: fatal: open queue file $id: No such file or directory" >&2; exit 1
`,
		"mailpasswd": `#!/bin/sh
S="$MAMORI_FAKE_STATE"
read -r pw
echo "$1 $pw" >> "$S/passwords"
`,
	}
}

// NewFakeHost writes the scripts and an empty state.
func NewFakeHost(t testing.TB) *FakeHost {
	t.Helper()
	dir := t.TempDir()
	f := &FakeHost{Bin: filepath.Join(dir, "bin"), State: filepath.Join(dir, "state")}
	for _, d := range []string{f.Bin, f.State, filepath.Join(f.State, "units"), filepath.Join(f.State, "active"),
		filepath.Join(f.State, "broken"), filepath.Join(f.State, "postcat")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range scripts() {
		if err := os.WriteFile(filepath.Join(f.Bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// Env is what the SSH server (and an out-of-band console) runs commands
// with.
func (f *FakeHost) Env() []string {
	return []string{"PATH=" + f.Bin + ":" + os.Getenv("PATH"), "MAMORI_FAKE_STATE=" + f.State}
}

// Console writes a local console command that runs its arguments on the
// fake host, for the inventory's out_of_band.console.
func (f *FakeHost) Console(t testing.TB) string {
	t.Helper()
	path := filepath.Join(filepath.Dir(f.Bin), "console")
	body := "#!/bin/sh\necho \"console $*\" >> '" + f.State + "/log'\nPATH='" + f.Bin + "':\"$PATH\" MAMORI_FAKE_STATE='" + f.State + "' exec \"$@\"\n"
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func (f *FakeHost) write(t testing.TB, rel, content string) {
	t.Helper()
	p := filepath.Join(f.State, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Unit declares a unit with the process line `ps` shows while it runs.
func (f *FakeHost) Unit(t testing.TB, name, psLine string, active bool) {
	t.Helper()
	f.write(t, "units/"+name, psLine+"\n")
	if active {
		f.write(t, "active/"+name, psLine+"\n")
	} else {
		_ = os.Remove(filepath.Join(f.State, "active", name))
	}
}

// Stop stops a unit, as a crash would.
func (f *FakeHost) Stop(name string) { _ = os.Remove(filepath.Join(f.State, "active", name)) }

// Break makes the unit's restart fail.
func (f *FakeHost) Break(t testing.TB, name string) { f.write(t, "broken/"+name, "") }

// Active reports whether a unit runs.
func (f *FakeHost) Active(name string) bool {
	_, err := os.Stat(filepath.Join(f.State, "active", name))
	return err == nil
}

// Set writes a state file (top, nproc, mailq, postcat/ID, restart-delay).
func (f *FakeHost) Set(t testing.TB, rel, content string) { f.write(t, rel, content) }

// Restarts lists the restarts systemctl performed, in order.
func (f *FakeHost) Restarts() []string { return f.lines("restarts") }

// Log lists the systemctl and console calls.
func (f *FakeHost) Log() []string { return f.lines("log") }

// Passwords lists "account password" lines the mail password tool got.
func (f *FakeHost) Passwords() []string { return f.lines("passwords") }

func (f *FakeHost) lines(rel string) []string {
	b, err := os.ReadFile(filepath.Join(f.State, rel))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}
