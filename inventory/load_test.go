package inventory

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mamori-ops/mamori/runbook"
)

const examplePath = "../deploy/inventory.example.yml"

func TestExampleLoads(t *testing.T) {
	inv, err := LoadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(inv.Hosts()); n != 2 {
		t.Fatalf("hosts = %d, want 2", n)
	}
	web, ok := inv.Host("web1.acme.example")
	if !ok {
		t.Fatal("web1.acme.example missing")
	}
	if web.Customer.Name != "acme" || web.Customer.Plan != runbook.Plus || web.Customer.Language != Japanese {
		t.Errorf("customer = %+v", web.Customer)
	}
	if web.SSH.KeyFile != "/etc/mamori/ssh/id_ed25519" || web.SSH.User != "root" || web.SSH.Port != 22 {
		t.Errorf("ssh defaults not applied: %+v", web.SSH)
	}
	if got := web.Customer.Agreed.MailPasswordReset.Password.Reveal(); got != "agreed-example-password" {
		t.Errorf("password_file read %q", got)
	}
	mq, ok := web.Check("mailq")
	if !ok || mq.Thresholds[runbook.LevelAlert] != 201 {
		t.Errorf("mailq = %+v", mq)
	}
	if _, ok := web.Check("spam"); ok {
		t.Error("spam is disabled on web1")
	}
	if ftp, _ := web.Check("ftp"); ftp.Service != "vsftpd" {
		t.Errorf("ftp service = %q", ftp.Service)
	}
	if load, _ := web.Check("load"); load.Thresholds[runbook.LevelRestart] != 8 || load.Thresholds[runbook.LevelAlert] != 3 {
		t.Errorf("load thresholds = %v", load.Thresholds)
	}
	if n := len(web.CheckList()); n != 21 {
		t.Errorf("web1 has %d checks, want 21 (plus plan less spam)", n)
	}

	mail, _ := inv.Host("mail.kobayashi.example")
	if mail.Customer.Plan != runbook.Standard || mail.OSFamily != runbook.Debian || mail.ServiceManager != SysV {
		t.Errorf("kobayashi host = %+v", mail)
	}
	if _, ok := mail.Check("mailq"); !ok {
		t.Error("mailq is enabled outside the plan")
	}
	if _, ok := mail.Check("url"); ok {
		t.Error("the standard plan has no url check")
	}
	if x, _ := mail.Check("xinetd"); x.Ladder.Summary() != "check → restart → verify → notify" {
		t.Errorf("custom ladder = %s", x.Ladder.Summary())
	}
	if ssh, _ := mail.Check("ssh"); ssh.Port != 2222 {
		t.Errorf("ssh port = %d", ssh.Port)
	}
	if d, _ := mail.Check("disk"); d.Thresholds[runbook.LevelAlert] != 0.8 {
		t.Errorf("disk threshold = %v", d.Thresholds)
	}
	if l, _ := mail.Check("load"); len(l.Thresholds) != 1 {
		t.Errorf("restart level must be off by default: %v", l.Thresholds)
	}
	if u := mail.Unit("sshd"); u != "ssh" {
		t.Errorf("debian sshd unit = %q", u)
	}
	if got := mail.Services(); strings.Join(got, ",") != "httpd,sw-cp-server,dovecot,postfix,sshd,xinetd,mariadb,rsyslog,fail2ban,spamd" {
		t.Errorf("services = %v", got)
	}
}

// minimal is a valid inventory that each rejection case breaks in one place.
const minimal = `customers:
  - name: c1
    contacts: [a@example.com]
    hosts:
      - name: h1
        address: 127.0.0.1
`

func TestRejections(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"empty", ``, `t.yml: inventory is empty`},
		{"syntax", "customers: [\n", `t.yml:1: did not find expected node content`},
		{"unknown top field", minimal + "extra: 1\n", `t.yml:7: extra: unknown field`},
		{"unknown host field", minimal + "        sshh: {}\n", `t.yml:7: customers[0].hosts[0].sshh: unknown field`},
		{"wrong type", strings.Replace(minimal, "address: 127.0.0.1", "address: 127.0.0.1\n        ssh: {port: abc}", 1),
			"t.yml:7: customers[0].hosts[0].ssh.port: !!str `abc` into int"},
		{"no customers", "customers: []\n", `t.yml:1: customers: at least one customer is required`},
		{"no name", strings.Replace(minimal, "name: c1", "language: en", 1), `t.yml:2: customers[0].name: name is required`},
		{"bad name", strings.Replace(minimal, "name: c1", "name: 'c 1'", 1), `t.yml:2: customers[0].name: invalid name "c 1" (letters, digits, '.', '_' and '-')`},
		{"duplicate customer", minimal + strings.Replace(strings.TrimPrefix(minimal, "customers:\n"), "h1", "h2", 1),
			`t.yml:7: customers[1].name: customer "c1" already defined at customers[0]`},
		{"bad plan", strings.Replace(minimal, "name: c1", "name: c1\n    plan: gold", 1), `t.yml:3: customers[0].plan: unknown plan "gold" (want standard or plus)`},
		{"bad language", strings.Replace(minimal, "name: c1", "name: c1\n    language: fr", 1), `t.yml:3: customers[0].language: unknown language "fr" (want ja or en)`},
		{"no contacts", strings.Replace(minimal, "contacts: [a@example.com]", "contacts: []", 1),
			`t.yml:3: customers[0].contacts: at least one contact address is required: the runbook always tells the customer`},
		{"bad contact", strings.Replace(minimal, "a@example.com", "not-an-address", 1), `t.yml:3: customers[0].contacts[0]: invalid email address "not-an-address"`},
		{"no hosts", strings.Replace(minimal, "    hosts:\n      - name: h1\n        address: 127.0.0.1\n", "    hosts: []\n", 1),
			`t.yml:4: customers[0].hosts: at least one host is required`},
		{"no address", strings.Replace(minimal, "address: 127.0.0.1", "os_family: rhel", 1), `t.yml:5: customers[0].hosts[0].address: address is required`},
		{"bad address", strings.Replace(minimal, "127.0.0.1", "bad_host!", 1), `t.yml:6: customers[0].hosts[0].address: invalid address "bad_host!" (want an IP address or a DNS name)`},
		{"duplicate host", minimal + "      - name: h1\n        address: 127.0.0.2\n", `t.yml:7: customers[0].hosts[1].name: host "h1" already defined at customers[0].hosts[0]`},
		{"bad os family", minimal + "        os_family: windows\n", `t.yml:7: customers[0].hosts[0].os_family: unknown OS family "windows" (want rhel or debian)`},
		{"bad default os family", "defaults: {os_family: bsd}\n" + minimal, `t.yml:1: defaults.os_family: unknown OS family "bsd" (want rhel or debian)`},
		{"bad service manager", minimal + "        service_manager: upstart\n", `t.yml:7: customers[0].hosts[0].service_manager: unknown service manager "upstart" (want systemd or sysv)`},
		{"bad ssh port", minimal + "        ssh: {port: 70000}\n", `t.yml:7: customers[0].hosts[0].ssh.port: port 70000 out of range 1-65535`},
		{"key and agent", minimal + "        ssh: {key_file: k, agent: true}\n", `t.yml:7: customers[0].hosts[0].ssh.agent: set key_file or agent, not both`},
		{"empty console", minimal + "        out_of_band: {console: ['']}\n", `t.yml:7: customers[0].hosts[0].out_of_band.console: the command's first element is empty`},
		{"unknown unit service", minimal + "        units: {nginx: nginx}\n", `t.yml:7: customers[0].hosts[0].units.nginx: unknown service "nginx"`},
		{"unsafe unit", minimal + "        units: {httpd: 'httpd; reboot'}\n", `t.yml:7: customers[0].hosts[0].units.httpd: invalid unit name "httpd; reboot"`},
		{"unknown disabled check", minimal + "        disable: [gopher]\n", `t.yml:7: customers[0].hosts[0].disable[0]: unknown check "gopher"`},
		{"enabled and disabled", minimal + "        enable: [mailq]\n        disable: [mailq]\n", `t.yml:8: customers[0].hosts[0].disable: check "mailq" is both enabled and disabled`},
		{"unknown check override", minimal + "        checks: {gopher: {port: 70}}\n", `t.yml:7: customers[0].hosts[0].checks.gopher: unknown check "gopher"`},
		{"port on host check", minimal + "        checks: {disk: {port: 70}}\n", `t.yml:7: customers[0].hosts[0].checks.disk.port: check disk has no port`},
		{"url without url", minimal + "        enable: [url]\n", `t.yml:5: customers[0].hosts[0].checks.url.url: the url check needs the URL to request`},
		{"unknown threshold level", minimal + "        checks: {mailq: {thresholds: {panic: 5}}}\n", `t.yml:7: customers[0].hosts[0].checks.mailq.thresholds.panic: check mailq has no "panic" threshold`},
		{"threshold on check without", minimal + "        checks: {http: {thresholds: {alert: 5}}}\n", `t.yml:7: customers[0].hosts[0].checks.http.thresholds.alert: check http has no "alert" threshold`},
		{"negative threshold", minimal + "        checks: {mailq: {thresholds: {alert: -1}}}\n", `t.yml:7: customers[0].hosts[0].checks.mailq.thresholds.alert: threshold must be positive, got -1`},
		{"unknown service override", minimal + "        checks: {ftp: {service: proftpd}}\n", `t.yml:7: customers[0].hosts[0].checks.ftp.service: unknown service "proftpd"`},
		{"unknown offender", minimal + "        checks: {load: {offender: java}}\n", `t.yml:7: customers[0].hosts[0].checks.load.offender: unknown service "java"`},
		{"url on other check", minimal + "        checks: {http: {url: 'http://x.example/'}}\n", `t.yml:7: customers[0].hosts[0].checks.http.url: only the url check takes a URL`},
		{"bad url", minimal + "        enable: [url]\n        checks: {url: {url: 'ftp://x'}}\n", `t.yml:8: customers[0].hosts[0].checks.url.url: invalid URL "ftp://x" (want http:// or https:// with a host)`},
		{"body match on smtp", minimal + "        checks: {smtp: {body_match: x}}\n", `t.yml:7: customers[0].hosts[0].checks.smtp.body_match: only HTTP checks match a body`},
		{"bad body match", minimal + "        checks: {http: {body_match: '('}}\n", "t.yml:7: customers[0].hosts[0].checks.http.body_match: invalid regular expression: error parsing regexp: missing closing ): `(`"},
		{"starttls on ssh", minimal + "        checks: {ssh: {starttls: true}}\n", `t.yml:7: customers[0].hosts[0].checks.ssh.starttls: STARTTLS applies to plain SMTP, IMAP and POP3 checks only`},
		{"tls settings without tls", minimal + "        checks: {ftp: {insecure_skip_verify: true}}\n", `t.yml:7: customers[0].hosts[0].checks.ftp: TLS settings on a check without TLS`},
		{"unknown action", minimal + "        checks: {http: {ladder: [pray, notify]}}\n", `t.yml:7: customers[0].hosts[0].checks.http.ladder[0]: unknown action "pray"`},
		{"ladder without notify", minimal + "        checks: {http: {ladder: [check, restart]}}\n", `t.yml:7: customers[0].hosts[0].checks.http.ladder: a ladder must end with notify: the customer is always told`},
		{"reset without password", strings.Replace(minimal, "    hosts:", "    agreed:\n      mail_password_reset: {command: [reset, '{account}']}\n    hosts:", 1),
			`t.yml:5: customers[0].agreed.mail_password_reset.password: password or password_file is required`},
		{"reset with both", strings.Replace(minimal, "    hosts:", "    agreed:\n      mail_password_reset: {password: x, password_file: f, command: [reset, '{account}']}\n    hosts:", 1),
			`t.yml:5: customers[0].agreed.mail_password_reset.password: set password or password_file, not both`},
		{"reset without command", strings.Replace(minimal, "    hosts:", "    agreed:\n      mail_password_reset: {password: x}\n    hosts:", 1),
			`t.yml:5: customers[0].agreed.mail_password_reset.command: the command that resets a mail password is required`},
		{"reset without account", strings.Replace(minimal, "    hosts:", "    agreed:\n      mail_password_reset: {password: x, command: [reset]}\n    hosts:", 1),
			`t.yml:5: customers[0].agreed.mail_password_reset.command: must contain {account}`},
		{"reset password in argv", strings.Replace(minimal, "    hosts:", "    agreed:\n      mail_password_reset: {password: x, command: [reset, '{account}', '{password}']}\n    hosts:", 1),
			`t.yml:5: customers[0].agreed.mail_password_reset.command[2]: the password is given on standard input, never in argv`},
		{"missing password file", strings.Replace(minimal, "    hosts:", "    agreed:\n      mail_password_reset: {password_file: /nonexistent/pw, command: [reset, '{account}']}\n    hosts:", 1),
			`t.yml:5: customers[0].agreed.mail_password_reset.password_file: open /nonexistent/pw: no such file or directory`},
		{"two documents", minimal + "---\ncustomers: []\n", `t.yml:7: more than one YAML document`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "t.yml")
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
		})
	}
}

func TestAllErrorsAreReportedInLineOrder(t *testing.T) {
	_, err := Parse([]byte(minimal+"        os_family: x\n        service_manager: y\n"), "t.yml")
	want := "t.yml:7: customers[0].hosts[0].os_family: unknown OS family \"x\" (want rhel or debian)\n" +
		"t.yml:8: customers[0].hosts[0].service_manager: unknown service manager \"y\" (want systemd or sysv)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v", err)
	}
}

func TestPasswordFileIsRelativeToTheInventory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(minimal, "    hosts:", "    agreed:\n      mail_password_reset: {password_file: pw, command: [reset, '{account}']}\n    hosts:", 1)
	path := filepath.Join(dir, "inv.yml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := inv.Customers[0].Agreed.MailPasswordReset.Password.Reveal(); got != "s3cret-value" {
		t.Fatalf("password = %q", got)
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	const value = "hunter2-do-not-print"
	y := strings.Replace(minimal, "    hosts:", "    agreed:\n      mail_password_reset: {password: "+value+", command: [reset, '{account}']}\n    hosts:", 1)
	inv, err := Parse([]byte(y), "t.yml")
	if err != nil {
		t.Fatal(err)
	}
	r := inv.Customers[0].Agreed.MailPasswordReset
	j, _ := json.Marshal(inv)
	ym, _ := yaml.Marshal(inv)
	for _, out := range []string{
		fmt.Sprint(r.Password), fmt.Sprintf("%v %+v %#v %s %q %x", r, r, r, r.Password, r.Password, r.Password),
		fmt.Sprintf("%+v", inv.Customers[0]), string(j), string(ym),
	} {
		if strings.Contains(out, value) {
			t.Fatalf("secret printed: %s", out)
		}
	}
	if !strings.Contains(string(j), `\u003csecret\u003e`) {
		t.Errorf("JSON shows no redaction marker: %s", j)
	}
	// A validation error elsewhere in the same file names no secret either.
	_, err = Parse([]byte(y+"        os_family: x\n"), "t.yml")
	if err == nil || strings.Contains(err.Error(), value) {
		t.Fatalf("error = %v", err)
	}
}

func TestDefault(t *testing.T) {
	none := func(string) bool { return false }
	inv := Default("box", runbook.Debian, none)
	h, ok := inv.Host("box")
	if !ok || h.OSFamily != runbook.Debian || h.Customer.Plan != runbook.Standard {
		t.Fatalf("default host = %+v", h)
	}
	if _, ok := h.Check("plesk"); ok {
		t.Error("plesk checked where Plesk is not installed")
	}
	if n := len(h.CheckList()); n != 19 {
		t.Errorf("checks = %d, want 19 (standard less plesk)", n)
	}
	if h.Unit("httpd") != "apache2" {
		t.Errorf("unit = %q", h.Unit("httpd"))
	}
	withPlesk := Default("box", runbook.RHEL, func(p string) bool { return p == "/usr/local/psa/version" })
	if h, _ := withPlesk.Host("box"); len(h.CheckList()) != 20 {
		t.Errorf("with Plesk installed: %d checks, want 20", len(h.CheckList()))
	}
}

func TestDetectOSFamily(t *testing.T) {
	for in, want := range map[string]runbook.OSFamily{
		"ID=debian\nVERSION_ID=\"12\"\n":                   runbook.Debian,
		"ID=ubuntu\nID_LIKE=debian\n":                      runbook.Debian,
		"ID=\"almalinux\"\nID_LIKE=\"rhel centos fedora\"": runbook.RHEL,
		"ID=\"rocky\"\n":                                   runbook.RHEL,
		"ID=arch\n":                                        runbook.RHEL,
		"":                                                 runbook.RHEL,
	} {
		if got := DetectOSFamily([]byte(in)); got != want {
			t.Errorf("%q: got %s, want %s", in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	ex, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ex)
	f.Add([]byte(minimal))
	f.Add([]byte("customers: [{name: x, hosts: [{checks: {mailq: {thresholds: {alert: 1}}}}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse(data, "fuzz.yml")
		if err != nil {
			if inv != nil {
				t.Fatal("inventory returned with an error")
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, h := range inv.Hosts() {
			if h.Customer == nil || h.Name == "" || h.Address == "" {
				t.Fatalf("accepted an incomplete host: %+v", h)
			}
			for _, c := range h.CheckList() {
				if _, ok := runbook.CheckByID(c.ID); !ok {
					t.Fatalf("unknown check %q accepted", c.ID)
				}
			}
		}
	})
}

// TestWithoutSecrets: the exporter's load reads no secret file, so a
// missing or unreadable one is no error, and a misuse of the fields still is.
func TestWithoutSecrets(t *testing.T) {
	missing := strings.Replace(minimal, "    hosts:", "    agreed:\n      mail_password_reset: {password_file: /nonexistent/pw, command: [reset, '{account}']}\n    hosts:", 1)
	if _, err := Parse([]byte(missing), "t.yml"); err == nil {
		t.Fatal("a missing password file loads with secrets")
	}
	inv, err := Parse([]byte(missing), "t.yml", WithoutSecrets())
	if err != nil {
		t.Fatalf("without secrets: %v", err)
	}
	for _, h := range inv.Hosts() {
		if r := h.Customer.Agreed.MailPasswordReset; r == nil || !r.Password.IsZero() {
			t.Fatalf("agreement %+v: want it kept, its password unread", r)
		}
	}
	both := strings.Replace(minimal, "    hosts:", "    agreed:\n      mail_password_reset: {password: x, password_file: f, command: [reset, '{account}']}\n    hosts:", 1)
	if _, err := Parse([]byte(both), "t.yml", WithoutSecrets()); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("both set, without secrets: %v", err)
	}
}
