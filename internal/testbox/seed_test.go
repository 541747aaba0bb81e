package testbox

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// machine is a tree with what a Debian machine with the box's services
// installed has, as far as buildPlan looks.
func machine() fstest.MapFS {
	m := fstest.MapFS{
		"usr/sbin/apache2":   {Data: []byte("\x7fELF apache2"), Mode: 0o755},
		"etc/init.d/xinetd":  {Data: []byte("#!/bin/sh\n"), Mode: 0o755},
		"usr/local/exporter": {Data: []byte("\x7fELF exporter"), Mode: 0o755},
	}
	for _, u := range []string{"apache2", "dovecot", "postfix", "mariadb", "ssh", "vsftpd", "rsyslog", "fail2ban", "spamd", "nftables", "foo@"} {
		m["lib/systemd/system/"+u+".service"] = &fstest.MapFile{Data: []byte("[Unit]\n")}
	}
	return m
}

func testConfig(o Options) boxConfig {
	return boxConfig{
		name: "web1.acme.example", addr: "198.18.7.2",
		authorizedKey: []byte("ssh-ed25519 AAAA test\n"), hostKey: []byte("HOSTKEY"), hostKeyPub: []byte("ssh-ed25519 BBBB\n"),
		machineID: "0123456789abcdef0123456789abcdef",
		tls:       boxTLS{caPEM: []byte("CA"), serverPEM: []byte("S"), serverKey: []byte("SK"), panelPEM: []byte("P"), panelKey: []byte("PK")},
		opts:      o,
	}
}

// entries indexes a plan's entries by path.
func entries(p *plan) map[string]entry {
	m := map[string]entry{}
	for _, e := range p.entries {
		m[e.path] = e
	}
	return m
}

func TestPlanEnablesTheServicesAndMasksTheRest(t *testing.T) {
	p, err := buildPlan(testConfig(Options{Units: []string{"nftables", "foo@bar.service"}, Mask: []string{"cron"}}), machine())
	if err != nil {
		t.Fatal(err)
	}
	e := entries(p)
	for unit, target := range map[string]string{
		"apache2.service":      "/lib/systemd/system/apache2.service",
		"sw-cp-server.service": "/etc/systemd/system/sw-cp-server.service",
		"spamd.service":        "/lib/systemd/system/spamd.service",
		"nftables.service":     "/lib/systemd/system/nftables.service",
		"foo@bar.service":      "/lib/systemd/system/foo@.service",
	} {
		got := e["/etc/systemd/system/multi-user.target.wants/"+unit]
		if got.mode&fs.ModeSymlink == 0 || got.target != target {
			t.Errorf("%s: wants link %+v, want a symlink to %s", unit, got, target)
		}
	}
	// xinetd has only a SysV script: rc links, which systemd's generator reads.
	for _, level := range []string{"2", "3", "4", "5"} {
		if got := e["/etc/rc"+level+".d/S01xinetd"]; got.target != "../init.d/xinetd" {
			t.Errorf("rc%s.d link for xinetd: %+v", level, got)
		}
	}
	for _, u := range []string{"apt-daily.timer", "postgresql.service", "prometheus.service", "cron.service"} {
		if got := e["/etc/systemd/system/"+u]; got.target != "/dev/null" {
			t.Errorf("%s not masked: %+v", u, got)
		}
	}
	if got := e["/etc/resolv.conf"]; !strings.Contains(string(got.data), "options timeout:1 attempts:1") || strings.Contains(string(got.data), "nameserver") {
		t.Errorf("resolv.conf %q", got.data)
	}
	if got := string(e["/etc/hosts"].data); !strings.Contains(got, "127.0.1.1\tweb1.acme.example web1\n") {
		t.Errorf("hosts %q", got)
	}
	if got := e["/root/.ssh/authorized_keys"]; got.mode.Perm() != 0o600 || string(got.data) != "ssh-ed25519 AAAA test\n" {
		t.Errorf("authorized_keys %+v", got)
	}
	if got := e["/etc/ssh/ssh_host_ed25519_key"]; got.mode.Perm() != 0o600 {
		t.Errorf("host key mode %v", got.mode)
	}
	if got := e[panelBinary]; string(got.data) != "\x7fELF apache2" || got.mode.Perm() != 0o755 {
		t.Errorf("panel binary %+v", got)
	}
	for _, want := range []string{"/usr/sbin/policy-rc.d", "/etc/apache2/sites-enabled", "/etc/ssh/ssh_host_rsa_key"} {
		if !contains(p.remove, want) {
			t.Errorf("%s not removed: %q", want, p.remove)
		}
	}
	if !contains(p.empty, "/var/lib/mysql") || !contains(p.empty, "/var/spool/postfix/deferred") || !contains(p.clearFiles, "/var/log") {
		t.Errorf("empty %q, clearFiles %q", p.empty, p.clearFiles)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestPlanServicesAndFiles(t *testing.T) {
	p, err := buildPlan(testConfig(Options{
		Services: []Service{{Name: "mamori_exporter", Binary: "/usr/local/exporter",
			Args: []string{"--web.listen-address=:9796", "--log.format", "a b", "100%", "$HOME"}, Env: []string{"A=b c"}}},
		Files: []File{
			{Path: "/etc/mamori/inventory.yml", Data: []byte("customers: []\n")},
			{Path: "/etc/apache2/ports.conf", Data: []byte("Listen 80\n"), Mode: 0o640},
			{Path: "/etc/systemd/system/extra.service", Data: []byte("[Unit]\n")},
		},
		Units: []string{"extra"},
	}), machine())
	if err != nil {
		t.Fatal(err)
	}
	e := entries(p)
	if got := e["/usr/local/bin/exporter"]; string(got.data) != "\x7fELF exporter" || got.mode.Perm() != 0o755 {
		t.Errorf("binary %+v", got)
	}
	unit := string(e["/etc/systemd/system/mamori_exporter.service"].data)
	for _, want := range []string{
		`ExecStart=/usr/local/bin/exporter --web.listen-address=:9796 --log.format "a b" 100%% $$HOME` + "\n",
		`Environment="A=b c"` + "\n",
		"WantedBy=multi-user.target\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if got := e["/etc/systemd/system/multi-user.target.wants/mamori_exporter.service"]; got.target != "/etc/systemd/system/mamori_exporter.service" {
		t.Errorf("exporter not enabled: %+v", got)
	}
	if got := e["/etc/systemd/system/multi-user.target.wants/extra.service"]; got.target != "/etc/systemd/system/extra.service" {
		t.Errorf("unit from Files not enabled: %+v", got)
	}
	if got := e["/etc/mamori/inventory.yml"]; got.mode.Perm() != 0o644 {
		t.Errorf("default mode %v", got.mode)
	}
	// A file of the test replaces the box's own: the tarball keeps the last.
	tb, err := p.tarball()
	if err != nil {
		t.Fatal(err)
	}
	if got := untar(t, tb)["./etc/apache2/ports.conf"]; got.data != "Listen 80\n" || got.mode != 0o640 {
		t.Errorf("ports.conf %+v", got)
	}
}

func TestPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Units: []string{"nosuch"}}, "unit nosuch.service: no unit file or init script on this machine"},
		{Options{Files: []File{{Path: "etc/x"}}}, `file "etc/x": want a clean absolute path`},
		{Options{Files: []File{{Path: "/etc/../x"}}}, `file "/etc/../x": want a clean absolute path`},
		{Options{Services: []Service{{Name: "x", Binary: "relative"}}}, `service "x": want a name and an absolute binary path`},
		{Options{Services: []Service{{Name: "x", Binary: "/nosuch"}}}, "service x: open nosuch: file does not exist"},
	} {
		_, err := buildPlan(testConfig(tc.o), machine())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.o, err, tc.want)
		}
	}
	m := machine()
	delete(m, "usr/sbin/apache2")
	if _, err := buildPlan(testConfig(Options{}), m); err == nil || !strings.Contains(err.Error(), "the panel needs apache2") {
		t.Errorf("without apache2: %v", err)
	}
}

type tarEntry struct {
	typ    byte
	mode   int64
	data   string
	target string
}

func untar(t *testing.T, b []byte) map[string]tarEntry {
	t.Helper()
	out := map[string]tarEntry{}
	var order []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: owner %d:%d", h.Name, h.Uid, h.Gid)
		}
		if time.Since(h.ModTime) < 50*time.Second {
			t.Errorf("%s: modified %s, want a minute ago", h.Name, h.ModTime)
		}
		out[h.Name] = tarEntry{h.Typeflag, h.Mode, string(data), h.Linkname}
		order = append(order, h.Name)
	}
	// Parents come first.
	seen := map[string]bool{}
	for _, name := range order {
		if i := strings.LastIndex(strings.TrimSuffix(name, "/"), "/"); i > 1 && !seen[name[:i+1]] {
			t.Errorf("%s before its directory", name)
		}
		seen[name] = true
	}
	return out
}

func TestTarball(t *testing.T) {
	p := &plan{}
	p.dir("/root/.ssh", 0o700)
	p.file("/root/.ssh/authorized_keys", 0o600, []byte("key\n"))
	p.symlink("/etc/systemd/system/x.timer", "/dev/null")
	p.text("/a/b/c/d.conf", "x")
	tb, err := p.tarball()
	if err != nil {
		t.Fatal(err)
	}
	got := untar(t, tb)
	for name, want := range map[string]tarEntry{
		"./root/.ssh/":                 {tar.TypeDir, 0o700, "", ""},
		"./root/.ssh/authorized_keys":  {tar.TypeReg, 0o600, "key\n", ""},
		"./etc/systemd/system/x.timer": {tar.TypeSymlink, 0o777, "", "/dev/null"},
		"./a/b/c/":                     {tar.TypeDir, 0o755, "", ""},
		"./a/b/c/d.conf":               {tar.TypeReg, 0o644, "x", ""},
		"./etc/systemd/":               {tar.TypeDir, 0o755, "", ""},
		"./root/":                      {tar.TypeDir, 0o755, "", ""}, // existing: --no-overwrite-dir keeps the machine's
		"./etc/systemd/system/":        {tar.TypeDir, 0o755, "", ""},
		"./etc/":                       {tar.TypeDir, 0o755, "", ""},
		"./a/":                         {tar.TypeDir, 0o755, "", ""},
		"./a/b/":                       {tar.TypeDir, 0o755, "", ""},
	} {
		if got[name] != want {
			t.Errorf("%s: %+v, want %+v", name, got[name], want)
		}
	}
	for _, bad := range []string{"relative", "/a/../b", "/", "/a/"} {
		p := &plan{}
		p.text(bad, "")
		if _, err := p.tarball(); err == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
}

func TestSeedScript(t *testing.T) {
	p := &plan{remove: []string{"/etc/it's"}, empty: []string{"/var/lib/mysql"}, clearFiles: []string{"/var/log"},
		postconf: [][]string{{"-e", "myhostname = box1"}}}
	s := p.seedScript("1g", []string{"/sys/fs/cgroup/unified/mamori-testbox-x"})
	for _, want := range []string{
		"echo $$ > '/sys/fs/cgroup/unified/mamori-testbox-x/cgroup.procs'\n",
		"mount -t tmpfs -o mode=0755,size=1g mamori-testbox \"$M\"\n",
		"lowerdir=/,upperdir=\"$M/upper\"",
		`rm -rf -- "$R"'/etc/it'\''s'` + "\n",
		`find "$R"'/var/lib/mysql' -mindepth 1 -delete` + "\n",
		`find "$R"'/var/log' -type f -delete` + "\n",
		"tar -x -p --numeric-owner --no-overwrite-dir -C \"$R\" -f -\n",
		`postconf -c "$R/etc/postfix" '-e' 'myhostname = box1'` + "\n",
		`touch -c -d @$(($(date +%s) - 60)) "$R/etc/postfix/main.cf"`,
		"exec systemd-nspawn -D \"$R\" \"$@\" </dev/null\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	// Removal comes before unpacking, unpacking before postconf.
	if !(strings.Index(s, "rm -rf") < strings.Index(s, "tar -x") && strings.Index(s, "tar -x") < strings.Index(s, "postconf -c")) {
		t.Errorf("order:\n%s", s)
	}
}

func TestSystemdQuote(t *testing.T) {
	for in, want := range map[string]string{
		"--flag=x":    "--flag=x",
		"a b":         `"a b"`,
		"100%":        "100%%",
		"$HOME":       "$$HOME",
		`say "hi"`:    `"say \"hi\""`,
		"":            `""`,
		`back\slash`:  `"back\\slash"`,
		"semi;colon":  `"semi;colon"`,
		"tab\there":   `"tab\there"`,
		"it's":        `"it's"`,
		"/usr/bin/xy": "/usr/bin/xy",
	} {
		if got := systemdQuote(in); got != want {
			t.Errorf("systemdQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestUnitName(t *testing.T) {
	for in, want := range map[string]string{
		"apache2": "apache2.service", "ssh.socket": "ssh.socket", "apt-daily.timer": "apt-daily.timer",
		"foo@bar": "foo@bar.service", "web1.example": "web1.example.service",
	} {
		if got := unitName(in); got != want {
			t.Errorf("unitName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseStatStart(t *testing.T) {
	stat := "1234 (a) (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100"
	got, err := parseStatStart([]byte(stat))
	if err != nil || got != 987654 {
		t.Errorf("got %d, %v", got, err)
	}
	if _, err := parseStatStart([]byte("1 (x) S 1")); err == nil {
		t.Error("short stat accepted")
	}
}

func TestUsedIndexes(t *testing.T) {
	text := `2: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0
7: mbox3    inet 198.18.3.1/30 scope global mbox3
unreachable 198.18.0.0/15 metric 4000
198.18.12.0/30 dev mbox12 proto kernel scope link src 198.18.12.1
198.19.200.0/30 dev mpd1h proto kernel scope link src 198.19.200.1
local 198.18.40.1 dev mbox40 table local proto kernel scope host src 198.18.40.1`
	got := usedIndexes(text)
	for _, x := range []int{0, 3, 12, 40} {
		if !got[x] {
			t.Errorf("%d not seen as used: %v", x, got)
		}
	}
	if len(got) != 4 {
		t.Errorf("used %v", got)
	}
}

func TestIsGuard(t *testing.T) {
	for line, want := range map[string]bool{
		"unreachable 198.18.0.0/15 metric 4000": true,
		"blackhole 198.18.0.0/15":               true,
		"198.18.0.0/15 via 192.0.2.1 dev eth0":  false,
		"":                                      false,
	} {
		if got := isGuard(line); got != want {
			t.Errorf("isGuard(%q) = %v", line, got)
		}
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"box1": true, "web1.acme.example": true, "a": true,
		"": false, "Box": false, "-x": false, "x-": false, "a b": false, "a/b": false, strings.Repeat("a", 51): false,
	} {
		if got := validName.MatchString(name); got != want {
			t.Errorf("validName(%q) = %v", name, got)
		}
	}
}

func TestParseCgroupDirs(t *testing.T) {
	hybrid := `9:name=systemd:/
8:pids:/
4:memory:/process_api/b4eb
0::/`
	mounts := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`
	got := parseCgroupDirs(hybrid, mounts, "mamori-testbox-b")
	want := []string{"/sys/fs/cgroup/systemd/mamori-testbox-b", "/sys/fs/cgroup/unified/mamori-testbox-b"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("hybrid: %q, want %q", got, want)
	}
	// A systemd laptop: pure cgroup2, the test in a session scope.
	got = parseCgroupDirs("0::/user.slice/user-1000.slice/session-2.scope\n",
		"30 22 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n", "mamori-testbox-b")
	if len(got) != 1 || got[0] != "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope/mamori-testbox-b" {
		t.Errorf("cgroup2: %q", got)
	}
	// Inside a cgroup namespace whose root is not the hierarchy's.
	got = parseCgroupDirs("0::/a/b\n", "30 22 0:26 /a /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "x")
	if len(got) != 1 || got[0] != "/sys/fs/cgroup/b/x" {
		t.Errorf("namespaced: %q", got)
	}
}
