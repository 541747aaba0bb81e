package runbook

import "time"

const (
	critical = "critical"
	warning  = "warning"
)

// Checks returns the runbook, one entry per check, in the runbook's order.
// It builds a fresh table on each call, so callers cannot change the registry.
func Checks() []Check {
	serviceLadder := serviceLadder()
	return []Check{
		{ID: "ping", Title: "PING", Plan: Standard, Kind: Probe, Protocol: ICMP,
			Watches: "reachability", Measures: "ICMP echo: loss and round-trip time",
			For: time.Minute, Severity: critical,
			Ladder: steps(ActCheck, ActPowerCycle, ActVerify, ActEscalate, ActNotify)},
		{ID: "http", Title: "HTTP", Plan: Standard, Kind: Probe, Protocol: HTTP, Port: 80,
			Service: "httpd", Watches: "web", Measures: "HTTP request: status, optional body match",
			For: time.Minute, Severity: critical, Ladder: serviceLadder},
		{ID: "https", Title: "HTTPS", Plan: Standard, Kind: Probe, Protocol: HTTP, Port: 443, TLS: true,
			Service: "httpd", Watches: "web", Measures: "HTTPS request: status, certificate expiry",
			For: time.Minute, Severity: critical, Ladder: serviceLadder},
		{ID: "plesk", Title: "PLESK (8443)", Plan: Standard, Kind: Probe, Protocol: HTTP, Port: 8443, TLS: true,
			Service: "sw-cp-server", Watches: "hosting control panel", Measures: "HTTPS request to the panel",
			For: time.Minute, Severity: critical, Ladder: serviceLadder},
		{ID: "imap", Title: "IMAP", Plan: Standard, Kind: Probe, Protocol: IMAP, Port: 143,
			Service: "dovecot", Watches: "mail (receiving)", Measures: "IMAP greeting, CAPABILITY, LOGOUT",
			For: time.Minute, Severity: critical, Ladder: serviceLadder},
		{ID: "imaps", Title: "IMAPS", Plan: Standard, Kind: Probe, Protocol: IMAP, Port: 993, TLS: true,
			Service: "dovecot", Watches: "mail (receiving)", Measures: "IMAP over TLS",
			For: time.Minute, Severity: critical, Ladder: serviceLadder},
		{ID: "pop3", Title: "POP", Plan: Standard, Kind: Probe, Protocol: POP3, Port: 110,
			Service: "dovecot", Watches: "mail (receiving)", Measures: "POP3 greeting, QUIT",
			For: time.Minute, Severity: critical, Ladder: serviceLadder},
		{ID: "pop3s", Title: "POP3S", Plan: Standard, Kind: Probe, Protocol: POP3, Port: 995, TLS: true,
			Service: "dovecot", Watches: "mail (receiving)", Measures: "POP3 over TLS",
			For: time.Minute, Severity: critical, Ladder: serviceLadder},
		{ID: "smtp", Title: "SMTP", Plan: Standard, Kind: Probe, Protocol: SMTP, Port: 25,
			Service: "postfix", Watches: "mail (sending)", Measures: "SMTP greeting, EHLO, QUIT",
			For: time.Minute, Severity: critical, Ladder: serviceLadder},
		{ID: "smtps", Title: "SMTPS", Plan: Standard, Kind: Probe, Protocol: SMTP, Port: 465, TLS: true,
			Service: "postfix", Watches: "mail (sending)", Measures: "SMTP over TLS",
			For: time.Minute, Severity: critical, Ladder: serviceLadder},
		{ID: "ssh", Title: "SSH", Plan: Standard, Kind: Probe, Protocol: SSH, Port: 22,
			Service: "sshd", Watches: "remote login", Measures: "SSH identification string",
			For: time.Minute, Severity: critical,
			Ladder: steps(ActSSHConnect, ActConsoleRestart, ActVerify, ActPowerCycle, ActVerify, ActEscalate, ActNotify)},
		{ID: "ftp", Title: "FTP", Plan: Standard, Kind: Probe, Protocol: FTP, Port: 21,
			Service: "xinetd", Watches: "file transfer", Measures: "FTP greeting, QUIT",
			For: time.Minute, Severity: critical, Ladder: serviceLadder},
		{ID: "load", Title: "Load Average", Plan: Standard, Kind: Host,
			Watches: "server load", Measures: "5-minute load average per online CPU",
			Thresholds: []Threshold{{Level: LevelAlert, Value: 2}, {Level: LevelRestart, Value: 4, Off: true}},
			For:        5 * time.Minute, Severity: warning,
			Ladder: steps(collect("top"), ActRestartOverLoad, ActNotify)},
		{ID: "swap", Title: "SWAP", Plan: Standard, Kind: Host,
			Watches: "memory use", Measures: "share of swap in use",
			Thresholds: []Threshold{{Level: LevelAlert, Value: 0.5}},
			For:        5 * time.Minute, Severity: warning,
			Ladder: steps(collect("free"), ActNotify)},
		{ID: "disk", Title: "DISK", Plan: Standard, Kind: Host,
			Watches: "disk use", Measures: "share of each real filesystem in use, as df computes it",
			Thresholds: []Threshold{{Level: LevelAlert, Value: 0.9}},
			For:        5 * time.Minute, Severity: warning,
			Ladder: steps(collect("df"), ActNotify)},
		{ID: "mysql", Title: "MySQL", Plan: Standard, Kind: Probe, Protocol: MySQL, Port: 3306,
			Service: "mariadb", Watches: "database", Measures: "MySQL greeting packet",
			For: time.Minute, Severity: critical, Ladder: serviceLadder},
		{ID: "rsyslog", Title: "Rsyslog", Plan: Standard, Kind: Host,
			Service: "rsyslog", Watches: "system logging", Measures: "rsyslogd process presence",
			For: time.Minute, Severity: critical, Ladder: serviceLadder},
		{ID: "fail2ban", Title: "Fail2ban", Plan: Standard, Kind: Host,
			Service: "fail2ban", Watches: "automatic blocking of intrusions", Measures: "fail2ban-server process presence",
			For: time.Minute, Severity: critical, Ladder: serviceLadder},
		{ID: "spam", Title: "SPAM", Plan: Standard, Kind: Host,
			Service: "spamd", Watches: "spam filter", Measures: "spamd process presence",
			For: time.Minute, Severity: critical, Ladder: serviceLadder},
		{ID: "xinetd", Title: "Xinetd", Plan: Standard, Kind: Host,
			Service: "xinetd", Watches: "super-server", Measures: "xinetd process presence",
			For: time.Minute, Severity: critical, Ladder: serviceLadder},
		{ID: "url", Title: "URL", Plan: Plus, Kind: Probe, Protocol: HTTP,
			Service: "httpd", Watches: "one given URL", Measures: "HTTP(S) request to the customer's URL",
			For: 2 * time.Minute, Severity: warning,
			Ladder: steps(ActScopeURL, ActRestart, ActVerify, collect("status", "journal"), ActEscalate, ActNotify)},
		{ID: "mailq", Title: "Mail queue", Plan: Plus, Kind: Host,
			Service: "postfix", Watches: "number of queued mails", Measures: "messages in the Postfix queues",
			Thresholds: []Threshold{{Level: LevelAlert, Value: 200}},
			For:        5 * time.Minute, Severity: warning,
			Ladder: steps(collect("mailq"), ActAnalyseQueue, ActResetPassword, ActEscalate, ActNotify)},
	}
}

// CheckByID returns the check with that id.
func CheckByID(id string) (Check, bool) {
	for _, c := range Checks() {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// ChecksFor returns the checks a customer on plan p gets, in registry order.
func ChecksFor(p Plan) []Check {
	var out []Check
	for _, c := range Checks() {
		if p.Includes(c.Plan) {
			out = append(out, c)
		}
	}
	return out
}
