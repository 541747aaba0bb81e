package testbox

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// DefaultUnits are the units every box enables: the Debian services of a
// customer server, and sw-cp-server, the Plesk-like panel on 8443.
func DefaultUnits() []string { return slices.Clone(defaultUnits) }

var defaultUnits = []string{
	"apache2.service", "sw-cp-server.service", "dovecot.service", "postfix.service",
	"mariadb.service", "ssh.service", "vsftpd.service", "xinetd.service",
	"rsyslog.service", "fail2ban.service", "spamd.service",
}

// maskedUnits make no sense in a throwaway box (timers that would run in the
// middle of a test, daemons of the machine itself, hardware).
var maskedUnits = []string{
	"apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer",
	"e2scrub_reap.service", "fstrim.timer", "man-db.timer", "logrotate.timer",
	"spamassassin-maintenance.timer", "smartd.service", "smartmontools.service",
	"postgresql.service", "postgresql@.service", "docker.service", "docker.socket",
	"containerd.service", "podman.service", "podman.socket", "podman-auto-update.service",
	"podman-auto-update.timer", "podman-restart.service", "prometheus.service", "prometheus-alertmanager.service",
	"prometheus-blackbox-exporter.service", "prometheus-node-exporter.service",
	"prometheus-process-exporter.service", "prometheus-postfix-exporter.service",
	"systemd-timesyncd.service", "systemd-pstore.service", "console-getty.service",
	"unattended-upgrades.service",
}

// Paths inside every box.
const (
	boxSSL       = "/etc/ssl/mamori-box"
	boxCAFile    = boxSSL + "/ca.pem"
	boxCertFile  = boxSSL + "/server.pem"
	boxKeyFile   = boxSSL + "/server.key"
	panelCert    = boxSSL + "/panel.pem"
	panelKey     = boxSSL + "/panel.key"
	panelBinary  = "/usr/sbin/sw-cp-serverd"
	panelConfig  = "/etc/sw-cp-server/httpd.conf"
	panelDocRoot = "/usr/share/sw-cp-server/htdocs"
	serviceBin   = "/usr/local/bin"
)

// boxConfig is what buildPlan needs to know about one box.
type boxConfig struct {
	name, addr    string
	authorizedKey []byte // authorized_keys line for root
	hostKey       []byte // sshd's ed25519 key, OpenSSH PEM
	hostKeyPub    []byte // its public half, authorized_keys format
	machineID     string
	tls           boxTLS
	opts          Options
}

// buildPlan describes the box's overlay. lower is the machine's root (the
// overlay's read-only layer): the box enables what is installed there and
// copies binaries from it.
func buildPlan(c boxConfig, lower fs.FS) (*plan, error) {
	p := &plan{}
	name := c.name
	short, _, _ := strings.Cut(name, ".")

	// Identity, no DNS (every name lookup would wait for a server that does
	// not exist), no policy-rc.d (it forbids starting services).
	p.remove = append(p.remove, "/usr/sbin/policy-rc.d", "/etc/resolv.conf")
	p.text("/etc/hostname", name+"\n")
	hosts := "127.0.0.1\tlocalhost\n127.0.1.1\t" + name
	if short != name {
		hosts += " " + short
	}
	p.text("/etc/hosts", hosts+"\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	p.text("/etc/resolv.conf", "# mamori testbox: no DNS\noptions timeout:1 attempts:1\n")
	p.text("/etc/mailname", name+"\n")
	p.text("/etc/machine-id", c.machineID+"\n")
	p.file("/var/lib/dbus/machine-id", 0o444, []byte(c.machineID+"\n"))

	// A fresh server: no logs, mail or database of the machine's.
	p.clearFiles = append(p.clearFiles, "/var/log")
	p.empty = append(p.empty, "/var/lib/mysql", "/var/mail", "/var/lib/fail2ban")
	for _, q := range []string{"active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "maildrop", "saved", "trace"} {
		p.empty = append(p.empty, "/var/spool/postfix/"+q)
	}

	// ssh: root logs in with the test's key; the box has one host key of its
	// own, the one known_hosts pins.
	p.dir("/root/.ssh", 0o700)
	p.file("/root/.ssh/authorized_keys", 0o600, c.authorizedKey)
	for _, k := range []string{"rsa", "ecdsa", "ed25519", "dsa"} {
		p.remove = append(p.remove, "/etc/ssh/ssh_host_"+k+"_key", "/etc/ssh/ssh_host_"+k+"_key.pub")
	}
	p.file("/etc/ssh/ssh_host_ed25519_key", 0o600, c.hostKey)
	p.file("/etc/ssh/ssh_host_ed25519_key.pub", 0o644, c.hostKeyPub)
	// sshd keeps the first value it reads: 00- comes before anything else in
	// sshd_config.d and before the main file's own settings.
	p.text("/etc/ssh/sshd_config.d/00-mamori-box.conf", `# mamori testbox
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 100:30:200
MaxSessions 100
`)

	// TLS: a CA of the box's own (the test trusts it) for 443, mail and the
	// like; a self-signed certificate for the panel, as Plesk has.
	p.file(boxCAFile, 0o644, c.tls.caPEM)
	p.file(boxCertFile, 0o644, c.tls.serverPEM)
	p.file(boxKeyFile, 0o600, c.tls.serverKey)
	p.file(panelCert, 0o644, c.tls.panelPEM)
	p.file(panelKey, 0o600, c.tls.panelKey)

	if err := apache(p, name); err != nil {
		return nil, err
	}
	if err := panel(p, name, lower); err != nil {
		return nil, err
	}
	mail(p, name)
	mariadb(p)
	// SpamAssassin probes DNS while starting and, with no DNS, spends 15 s
	// on it, during which spamd ignores SIGTERM and holds up any shutdown.
	p.text("/etc/spamassassin/zz-mamori-box.cf", "# mamori testbox: no DNS\ndns_available no\n")

	provided := map[string]bool{}
	for _, s := range c.opts.Services {
		if err := service(p, s, lower); err != nil {
			return nil, err
		}
	}
	for _, f := range c.opts.Files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return nil, fmt.Errorf("file %q: want a clean absolute path", f.Path)
		}
		perm := f.Mode.Perm()
		if perm == 0 {
			perm = 0o644
		}
		p.file(f.Path, perm, f.Data)
	}
	for _, e := range p.entries {
		provided[e.path] = true
	}

	units := DefaultUnits()
	for _, s := range c.opts.Services {
		units = append(units, unitName(s.Name))
	}
	for _, u := range c.opts.Units {
		units = append(units, unitName(u))
	}
	enabled := map[string]bool{}
	for _, u := range units {
		if enabled[u] {
			continue
		}
		enabled[u] = true
		if err := enable(p, u, lower, provided); err != nil {
			return nil, err
		}
	}
	for _, u := range append(slices.Clone(maskedUnits), c.opts.Mask...) {
		u = unitName(u)
		if !enabled[u] {
			p.symlink("/etc/systemd/system/"+u, "/dev/null")
		}
	}
	return p, p.check()
}

func apache(p *plan, name string) error {
	// The box owns the sites, the listening ports and the global
	// configuration snippets: the machine's (its own tests' vhosts, another
	// 8443 listener) must not show through.
	p.text("/etc/apache2/ports.conf", `# mamori testbox: apache2 serves 80 and 443; 8443 is sw-cp-server's.
Listen 80
Listen 443 https
`)
	p.remove = append(p.remove, "/etc/apache2/sites-enabled", "/etc/apache2/conf-enabled")
	p.dir("/etc/apache2/sites-enabled", 0o755)
	p.text("/etc/apache2/sites-available/mamori-box.conf", fmt.Sprintf(`# mamori testbox: the customer's site, on HTTP and HTTPS.
<VirtualHost *:80>
	ServerName %[1]s
	DocumentRoot /var/www/html
	ErrorLog ${APACHE_LOG_DIR}/error.log
	CustomLog ${APACHE_LOG_DIR}/access.log combined
</VirtualHost>
<VirtualHost *:443>
	ServerName %[1]s
	DocumentRoot /var/www/html
	ErrorLog ${APACHE_LOG_DIR}/error.log
	CustomLog ${APACHE_LOG_DIR}/access.log combined
	SSLEngine on
	SSLCertificateFile %[2]s
	SSLCertificateKeyFile %[3]s
</VirtualHost>
`, name, boxCertFile, boxKeyFile))
	p.symlink("/etc/apache2/sites-enabled/mamori-box.conf", "../sites-available/mamori-box.conf")
	p.dir("/etc/apache2/conf-enabled", 0o755)
	for _, c := range []string{"charset", "localized-error-pages", "other-vhosts-access-log", "security", "serve-cgi-bin"} {
		p.symlink("/etc/apache2/conf-enabled/"+c+".conf", "../conf-available/"+c+".conf")
	}
	for _, m := range []string{"ssl.conf", "ssl.load", "socache_shmcb.load"} {
		p.symlink("/etc/apache2/mods-enabled/"+m, "../mods-available/"+m)
	}
	p.text("/var/www/html/index.html", "mamori testbox "+name+"\n")
	return nil
}

// panel is the Plesk-like control panel: a unit of its own, sw-cp-server, as
// on a Plesk server, so that the runbook's plesk check has a unit to
// restart. Its process is a copy of apache2 named sw-cp-serverd (a copy, not
// a symlink, so that neither its comm nor its exe says apache2).
func panel(p *plan, name string, lower fs.FS) error {
	bin, err := fs.ReadFile(lower, "usr/sbin/apache2")
	if err != nil {
		return fmt.Errorf("the panel needs apache2: %w", err)
	}
	p.file(panelBinary, 0o755, bin)
	mods := "/usr/lib/apache2/modules/"
	p.text(panelConfig, fmt.Sprintf(`# mamori testbox: a Plesk-like control panel on 8443, self-signed.
ServerRoot /etc/sw-cp-server
ServerName %[1]s
PidFile /run/sw-cp-server/httpd.pid
DefaultRuntimeDir /run/sw-cp-server
Mutex file:/run/sw-cp-server default
LoadModule mpm_event_module %[2]smod_mpm_event.so
LoadModule authz_core_module %[2]smod_authz_core.so
LoadModule dir_module %[2]smod_dir.so
LoadModule mime_module %[2]smod_mime.so
LoadModule socache_shmcb_module %[2]smod_socache_shmcb.so
LoadModule ssl_module %[2]smod_ssl.so
User www-data
Group www-data
ErrorLog /var/log/sw-cp-server/error.log
LogFormat "%%h %%l %%u %%t \"%%r\" %%>s %%b" common
CustomLog /var/log/sw-cp-server/access.log common
TypesConfig /etc/mime.types
Listen 8443 https
SSLSessionCache shmcb:/run/sw-cp-server/ssl_scache(512000)
<Directory />
	AllowOverride None
	Require all denied
</Directory>
<VirtualHost *:8443>
	DocumentRoot %[3]s
	<Directory %[3]s>
		Require all granted
	</Directory>
	DirectoryIndex index.html
	SSLEngine on
	SSLCertificateFile %[4]s
	SSLCertificateKeyFile %[5]s
</VirtualHost>
`, name, mods, panelDocRoot, panelCert, panelKey))
	p.text(panelDocRoot+"/index.html", "mamori testbox "+name+" panel\n")
	p.text("/etc/systemd/system/sw-cp-server.service", fmt.Sprintf(`# mamori testbox: the Plesk-like panel.
[Unit]
Description=Plesk-like control panel on 8443 (mamori testbox)
After=network.target

[Service]
Type=simple
RuntimeDirectory=sw-cp-server
LogsDirectory=sw-cp-server
ExecStartPre=%[1]s -t -f %[2]s
ExecStart=%[1]s -DFOREGROUND -f %[2]s
ExecReload=%[1]s -k graceful -f %[2]s
KillMode=mixed

[Install]
WantedBy=multi-user.target
`, panelBinary, panelConfig))
	return nil
}

func mail(p *plan, name string) {
	// dovecot reads conf.d in name order and the last value wins.
	p.text("/etc/dovecot/conf.d/zz-mamori-box.conf", fmt.Sprintf(`# mamori testbox
ssl = yes
ssl_cert = <%s
ssl_key = <%s

# Postfix's SASL authentication (submission, 587) asks dovecot, through a
# socket inside postfix's chroot.
service auth {
  unix_listener /var/spool/postfix/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
`, boxCertFile, boxKeyFile))
	p.postconf = append(p.postconf,
		[]string{"-e",
			"myhostname = " + name,
			"mydestination = $myhostname, " + name + ", localhost.localdomain, localhost",
			"inet_interfaces = all",
			"inet_protocols = ipv4",
			"mynetworks = 127.0.0.0/8",
			"relayhost =",
			// Mail to other domains goes out by SMTP, as from a hosting
			// server (the machine's "Local only" postfix says error).
			"default_transport = smtp",
			"relay_transport = relay",
			"defer_transports =",
			"smtpd_tls_security_level = may",
			"smtpd_tls_cert_file = " + boxCertFile,
			"smtpd_tls_key_file = " + boxKeyFile,
		},
		[]string{"-M", "smtps/inet=smtps inet n - y - - smtpd"},
		[]string{"-P", "smtps/inet/smtpd_tls_wrappermode=yes"},
		[]string{"-M", "submission/inet=submission inet n - y - - smtpd"},
		// Submission as on a hosting server: STARTTLS, then SASL (dovecot's
		// accounts), and only authenticated clients may relay.
		[]string{"-P",
			"submission/inet/syslog_name=postfix/submission",
			"submission/inet/smtpd_tls_security_level=encrypt",
			"submission/inet/smtpd_sasl_auth_enable=yes",
			"submission/inet/smtpd_sasl_type=dovecot",
			"submission/inet/smtpd_sasl_path=private/auth",
			"submission/inet/smtpd_tls_auth_only=yes",
			"submission/inet/smtpd_client_restrictions=permit_sasl_authenticated,reject",
			"submission/inet/smtpd_relay_restrictions=permit_sasl_authenticated,reject",
		},
	)
}

func mariadb(p *plan) {
	// The machine's data directory is in use by the machine's own server: the
	// box starts from an empty one, filled before mariadb starts.
	p.text("/etc/mysql/mariadb.conf.d/zz-mamori-box.cnf", `# mamori testbox
[mysqld]
bind-address = 0.0.0.0
skip-name-resolve
`)
	p.text("/etc/systemd/system/mamori-box-mysql-init.service", `# mamori testbox: a fresh data directory.
[Unit]
Description=Fresh MariaDB data directory (mamori testbox)
Before=mariadb.service
ConditionPathExists=!/var/lib/mysql/mysql

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/mariadb-install-db --user=mysql --datadir=/var/lib/mysql --auth-root-authentication-method=socket --skip-test-db
`)
	p.text("/etc/systemd/system/mariadb.service.d/mamori-box.conf", `# mamori testbox
[Unit]
Wants=mamori-box-mysql-init.service
After=mamori-box-mysql-init.service
`)
}

// service copies a binary of the machine into the box and runs it as a unit.
func service(p *plan, s Service, lower fs.FS) error {
	if s.Name == "" || s.Binary == "" || !path.IsAbs(s.Binary) {
		return fmt.Errorf("service %q: want a name and an absolute binary path, got %q", s.Name, s.Binary)
	}
	bin, err := fs.ReadFile(lower, strings.TrimPrefix(path.Clean(s.Binary), "/"))
	if err != nil {
		return fmt.Errorf("service %s: %w", s.Name, err)
	}
	boxBin := serviceBin + "/" + path.Base(s.Binary)
	p.file(boxBin, 0o755, bin)
	var b strings.Builder
	fmt.Fprintf(&b, "# mamori testbox: a service of the test.\n[Unit]\nDescription=%s (mamori testbox)\nAfter=network.target\n\n[Service]\n", s.Name)
	for _, e := range s.Env {
		fmt.Fprintf(&b, "Environment=%s\n", systemdQuote(e))
	}
	b.WriteString("ExecStart=" + systemdQuote(boxBin))
	for _, a := range s.Args {
		b.WriteString(" " + systemdQuote(a))
	}
	b.WriteString("\nRestart=on-failure\nRestartSec=1\n\n[Install]\nWantedBy=multi-user.target\n")
	p.text("/etc/systemd/system/"+unitName(s.Name), b.String())
	return nil
}

// enable makes unit start at boot: a .wants symlink to its unit file, or,
// for a SysV script (xinetd), the rc links systemd's generator reads.
func enable(p *plan, unit string, lower fs.FS, provided map[string]bool) error {
	file := unit
	if prefix, rest, ok := strings.Cut(unit, "@"); ok {
		if _, suffix, ok := strings.Cut(rest, "."); ok {
			file = prefix + "@." + suffix // an instance: its template's file
		}
	}
	target := "multi-user.target.wants"
	switch path.Ext(unit) {
	case ".timer":
		target = "timers.target.wants"
	case ".socket":
		target = "sockets.target.wants"
	case ".path":
		target = "paths.target.wants"
	}
	for _, dir := range []string{"/etc/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/"} {
		if provided[dir+file] || exists(lower, dir+file) {
			p.symlink("/etc/systemd/system/"+target+"/"+unit, dir+file)
			return nil
		}
	}
	script := "/etc/init.d/" + strings.TrimSuffix(unit, ".service")
	if path.Ext(unit) == ".service" && (provided[script] || exists(lower, script)) {
		for _, level := range []string{"2", "3", "4", "5"} {
			p.symlink("/etc/rc"+level+".d/S01"+path.Base(script), "../init.d/"+path.Base(script))
		}
		return nil
	}
	return fmt.Errorf("unit %s: no unit file or init script on this machine (is its package installed?)", unit)
}

func exists(lower fs.FS, name string) bool {
	_, err := fs.Stat(lower, strings.TrimPrefix(name, "/"))
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// unitName adds .service to a name without a unit type.
func unitName(u string) string {
	if path.Ext(u) == "" || !slices.Contains([]string{".service", ".socket", ".timer", ".path", ".target", ".mount"}, path.Ext(u)) {
		return u + ".service"
	}
	return u
}

// systemdQuote quotes one word of a unit file's command line: double quotes
// when needed, and % and $ escaped so that systemd substitutes nothing.
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	s = strings.ReplaceAll(s, "$", "$$")
	if s != "" && !strings.ContainsAny(s, " \t\n\"'\\;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}
