package runbook

// Process identifies a live process of a service.
type Process struct {
	// Name is matched against the process's comm (cut to 15 characters by
	// the kernel) and the base names of its executable and argv[0].
	Name string
	// PathHas, when set, must also appear in argv[0], for generic names
	// such as Postfix's "master".
	PathHas string
}

// Services returns the daemons the runbook concerns, under canonical names,
// as a fresh table.
func Services() []Service {
	return []Service{
		{Name: "httpd", Summary: "web server (Apache)",
			Processes: []Process{{Name: "httpd"}, {Name: "apache2"}},
			Units:     map[OSFamily]string{RHEL: "httpd", Debian: "apache2"}},
		{Name: "sw-cp-server", Summary: "Plesk panel web server",
			Processes: []Process{{Name: "sw-cp-serverd"}, {Name: "sw-cp-server"}},
			Units:     map[OSFamily]string{RHEL: "sw-cp-server", Debian: "sw-cp-server"},
			Marker:    "/usr/local/psa/version"},
		{Name: "dovecot", Summary: "IMAP and POP3 server",
			Processes: []Process{{Name: "dovecot"}},
			Units:     map[OSFamily]string{RHEL: "dovecot", Debian: "dovecot"}},
		{Name: "postfix", Summary: "mail transfer agent",
			Processes: []Process{{Name: "master", PathHas: "postfix"}},
			Units:     map[OSFamily]string{RHEL: "postfix", Debian: "postfix"}},
		{Name: "sshd", Summary: "OpenSSH server",
			Processes: []Process{{Name: "sshd"}},
			Units:     map[OSFamily]string{RHEL: "sshd", Debian: "ssh"}},
		{Name: "xinetd", Summary: "super-server (runs FTP on Plesk)",
			Processes: []Process{{Name: "xinetd"}},
			Units:     map[OSFamily]string{RHEL: "xinetd", Debian: "xinetd"}},
		{Name: "vsftpd", Summary: "standalone FTP server, for hosts whose FTP does not run under xinetd",
			Processes: []Process{{Name: "vsftpd"}},
			Units:     map[OSFamily]string{RHEL: "vsftpd", Debian: "vsftpd"}},
		{Name: "mariadb", Summary: "MySQL/MariaDB server",
			Processes: []Process{{Name: "mariadbd"}, {Name: "mysqld"}},
			Units:     map[OSFamily]string{RHEL: "mariadb", Debian: "mariadb"}},
		{Name: "rsyslog", Summary: "system logging",
			Processes: []Process{{Name: "rsyslogd"}},
			Units:     map[OSFamily]string{RHEL: "rsyslog", Debian: "rsyslog"}},
		{Name: "fail2ban", Summary: "intrusion blocking",
			Processes: []Process{{Name: "fail2ban-server"}},
			Units:     map[OSFamily]string{RHEL: "fail2ban", Debian: "fail2ban"}},
		{Name: "spamd", Summary: "SpamAssassin daemon",
			Processes: []Process{{Name: "spamd"}},
			Units:     map[OSFamily]string{RHEL: "spamassassin", Debian: "spamd"}},
	}
}

// ServiceByName returns the canonical service of that name.
func ServiceByName(name string) (Service, bool) {
	for _, s := range Services() {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}
