package probe

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/runbook"
)

const smtpEHLO = "250-mail.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"

func TestSMTP(t *testing.T) {
	p := newPKI(t)
	s := testSettings(t, "--probe.tls-ca-file="+p.caFile, "--probe.smtp-helo-name=prober.example")
	withStartTLS := "250-mail.example\r\n250-STARTTLS\r\n250 SIZE 1000\r\n"
	for _, tc := range []struct {
		name     string
		server   func(testing.TB, net.Conn)
		tls      bool
		startTLS bool
		insecure bool
		timeout  time.Duration
		want     Reason
	}{
		{name: "multi-line greeting", server: scripted(
			send("220-mail.example ESMTP\r\n220-this server is watched\r\n220 ready\r\n"),
			expect("EHLO prober.example\r\n"), send(smtpEHLO), expect("QUIT\r\n"), send("221 bye\r\n"))},
		{name: "slow greeting", server: scripted(wait(400*time.Millisecond),
			send("220 ready\r\n"), expect("EHLO"), send(smtpEHLO), expect("QUIT"), send("221 bye\r\n"))},
		{name: "bare LF replies", server: scripted(
			send("220 ready\n"), expect("EHLO"), send("250-x\n250 y\n"), expect("QUIT"), send("221 bye\n"))},
		{name: "wrong greeting", server: scripted(send("554 5.7.1 no SMTP service here\r\n")), want: ReasonBanner},
		{name: "not SMTP at all", server: scripted(send("+OK POP3 ready\r\n")), want: ReasonBanner},
		{name: "closed before greeting", server: func(testing.TB, net.Conn) {}, want: ReasonBanner},
		{name: "silent", server: silent, timeout: 300 * time.Millisecond, want: ReasonTimeout},
		{name: "EHLO refused", server: scripted(send("220 ready\r\n"), expect("EHLO"), send("502 no\r\n")), want: ReasonProtocol},
		{name: "closed after greeting", server: scripted(send("220 ready\r\n"), expect("EHLO"), hangUp), want: ReasonProtocol},
		{name: "QUIT answered oddly", server: scripted(send("220 ready\r\n"), expect("EHLO"), send(smtpEHLO),
			expect("QUIT"), send("250 what\r\n")), want: ReasonProtocol},
		{name: "STARTTLS", startTLS: true, server: scripted(send("220 ready\r\n"), expect("EHLO"), send(withStartTLS),
			expect("STARTTLS\r\n"), send("220 go ahead\r\n"), startTLS(serverTLS(p.leaf)),
			expect("EHLO prober.example\r\n"), send(smtpEHLO), expect("QUIT"), send("221 bye\r\n"))},
		{name: "STARTTLS not offered", startTLS: true, server: scripted(send("220 ready\r\n"), expect("EHLO"),
			send(smtpEHLO)), want: ReasonTLS},
		{name: "STARTTLS refused", startTLS: true, server: scripted(send("220 ready\r\n"), expect("EHLO"),
			send(withStartTLS), expect("STARTTLS"), send("454 TLS not available\r\n")), want: ReasonTLS},
		{name: "STARTTLS with data ahead of the handshake", startTLS: true, server: scripted(send("220 ready\r\n"),
			expect("EHLO"), send(withStartTLS), expect("STARTTLS"), send("220 go\r\n250 injected\r\n")), want: ReasonProtocol},
		{name: "SMTPS", tls: true, server: scripted(startTLS(serverTLS(p.leaf)), send("220 ready\r\n"),
			expect("EHLO"), send(smtpEHLO), expect("QUIT"), send("221 bye\r\n"))},
		{name: "SMTPS to a plain server", tls: true, server: scripted(send("220 ready\r\n")), want: ReasonTLS},
		{name: "SMTPS expired certificate", tls: true, server: scripted(startTLS(serverTLS(p.expired))), want: ReasonTLS},
		{name: "SMTPS self-signed", tls: true, server: scripted(startTLS(serverTLS(p.selfSign))), want: ReasonTLS},
		{name: "SMTPS self-signed, insecure_skip_verify", tls: true, insecure: true, server: scripted(
			startTLS(serverTLS(p.selfSign)), send("220 ready\r\n"), expect("EHLO"), send(smtpEHLO),
			expect("QUIT"), send("221 bye\r\n"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := local("smtp", serve(t, tc.server))
			tg.TLS, tg.StartTLS, tg.InsecureSkipVerify = tc.tls, tc.startTLS, tc.insecure
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 3 * time.Second
			}
			start := time.Now()
			res := probeOnce(t, s, runbook.SMTP, tg, timeout, tc.want)
			if el := time.Since(start); el > timeout+200*time.Millisecond {
				t.Errorf("took %s, deadline %s", el, timeout)
			}
			if (tc.tls || tc.startTLS) && tc.want != ReasonProtocol && res.TLSExpiry.IsZero() && tc.name != "SMTPS to a plain server" &&
				tc.name != "STARTTLS not offered" && tc.name != "STARTTLS refused" {
				t.Error("no certificate expiry reported")
			}
		})
	}
}

func TestSMTPReportsTheEarliestExpiry(t *testing.T) {
	p := newPKI(t)
	s := testSettings(t, "--probe.tls-ca-file="+p.caFile)
	tg := local("smtps", serve(t, scripted(startTLS(serverTLS(p.leaf)), send("220 ready\r\n"), expect("EHLO"),
		send(smtpEHLO), expect("QUIT"), send("221 bye\r\n"))))
	tg.TLS = true
	res := probeOnce(t, s, runbook.SMTP, tg, 3*time.Second, "")
	if !res.TLSExpiry.Equal(p.notAfter) {
		t.Errorf("expiry %s, want %s", res.TLSExpiry, p.notAfter)
	}
	tg = local("smtps", serve(t, scripted(startTLS(serverTLS(p.expired)))))
	tg.TLS = true
	res = probeOnce(t, s, runbook.SMTP, tg, 3*time.Second, ReasonTLS)
	if res.TLSExpiry.IsZero() || res.TLSExpiry.After(time.Now()) {
		t.Errorf("an expired certificate reports expiry %s", res.TLSExpiry)
	}
}

func TestFTP(t *testing.T) {
	s := testSettings(t)
	for _, tc := range []struct {
		name   string
		server func(testing.TB, net.Conn)
		want   Reason
	}{
		{name: "greeting", server: scripted(send("220 (vsFTPd 3.0.3)\r\n"), expect("QUIT\r\n"), send("221 Goodbye.\r\n"))},
		{name: "multi-line greeting without codes", server: scripted(
			send("220-Welcome\r\n  to this server\r\n220 ready\r\n"), expect("QUIT"), send("221 bye\r\n"))},
		{name: "too many users", server: scripted(send("421 Too many users\r\n")), want: ReasonBanner},
		{name: "ready later", server: scripted(send("120 ready in 5 minutes\r\n")), want: ReasonBanner},
		{name: "SSH instead", server: scripted(send("SSH-2.0-OpenSSH_9.2\r\n")), want: ReasonBanner},
		{name: "endless greeting", server: scripted(send(repeat("220-line\r\n", maxLines+1))), want: ReasonBanner},
		{name: "line too long", server: scripted(send(repeat("x", maxLine+10))), want: ReasonBanner},
		{name: "silent", server: silent, want: ReasonTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probeOnce(t, s, runbook.FTP, local("ftp", serve(t, tc.server)), 500*time.Millisecond, tc.want)
		})
	}
}

func TestIMAP(t *testing.T) {
	p := newPKI(t)
	s := testSettings(t, "--probe.tls-ca-file="+p.caFile)
	caps := "* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN\r\n"
	for _, tc := range []struct {
		name     string
		server   func(testing.TB, net.Conn)
		tls      bool
		startTLS bool
		want     Reason
	}{
		{name: "dialogue", server: scripted(send("* OK [CAPABILITY IMAP4rev1] ready\r\n"),
			expect("m1 CAPABILITY\r\n"), send(caps+"m1 OK done\r\n"),
			expect("m2 LOGOUT\r\n"), send("* BYE bye\r\nm2 OK done\r\n"))},
		{name: "PREAUTH", server: scripted(send("* PREAUTH ready\r\n"), expect("m1 CAPABILITY"),
			send(caps+"m1 OK done\r\n"), expect("m2 LOGOUT"), send("* BYE\r\nm2 OK\r\n"))},
		{name: "BYE greeting", server: scripted(send("* BYE too many connections\r\n")), want: ReasonBanner},
		{name: "POP3 greeting", server: scripted(send("+OK ready\r\n")), want: ReasonBanner},
		{name: "CAPABILITY refused", server: scripted(send("* OK ready\r\n"), expect("m1 CAPABILITY"),
			send("m1 BAD no\r\n")), want: ReasonProtocol},
		{name: "not IMAP4rev1", server: scripted(send("* OK ready\r\n"), expect("m1 CAPABILITY"),
			send("* CAPABILITY FOO\r\nm1 OK\r\n")), want: ReasonProtocol},
		{name: "STARTTLS", startTLS: true, server: scripted(send("* OK ready\r\n"),
			expect("m1 CAPABILITY"), send(caps+"m1 OK\r\n"), expect("m2 STARTTLS\r\n"), send("m2 OK begin\r\n"),
			startTLS(serverTLS(p.leaf)), expect("m3 CAPABILITY"), send("* CAPABILITY IMAP4rev1\r\nm3 OK\r\n"),
			expect("m4 LOGOUT"), send("* BYE\r\nm4 OK\r\n"))},
		{name: "STARTTLS not offered", startTLS: true, server: scripted(send("* OK ready\r\n"),
			expect("m1 CAPABILITY"), send("* CAPABILITY IMAP4rev1\r\nm1 OK\r\n")), want: ReasonTLS},
		{name: "STARTTLS refused", startTLS: true, server: scripted(send("* OK ready\r\n"),
			expect("m1 CAPABILITY"), send(caps+"m1 OK\r\n"), expect("m2 STARTTLS"), send("m2 NO\r\n")), want: ReasonTLS},
		{name: "IMAPS", tls: true, server: scripted(startTLS(serverTLS(p.leaf)), send("* OK ready\r\n"),
			expect("m1 CAPABILITY"), send(caps+"m1 OK\r\n"), expect("m2 LOGOUT"), send("* BYE\r\nm2 OK\r\n"))},
		{name: "IMAPS handshake failure", tls: true, server: scripted(send("* OK plain text\r\n")), want: ReasonTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := local("imap", serve(t, tc.server))
			tg.TLS, tg.StartTLS = tc.tls, tc.startTLS
			probeOnce(t, s, runbook.IMAP, tg, 3*time.Second, tc.want)
		})
	}
}

func TestPOP3(t *testing.T) {
	p := newPKI(t)
	s := testSettings(t, "--probe.tls-ca-file="+p.caFile)
	for _, tc := range []struct {
		name     string
		server   func(testing.TB, net.Conn)
		tls      bool
		startTLS bool
		want     Reason
	}{
		{name: "dialogue", server: scripted(send("+OK Dovecot ready.\r\n"), expect("QUIT\r\n"), send("+OK Logging out\r\n"))},
		{name: "error greeting", server: scripted(send("-ERR [SYS/TEMP] try later\r\n")), want: ReasonBanner},
		{name: "QUIT refused", server: scripted(send("+OK\r\n"), expect("QUIT"), send("-ERR\r\n")), want: ReasonProtocol},
		{name: "STLS", startTLS: true, server: scripted(send("+OK ready\r\n"), expect("STLS\r\n"), send("+OK begin\r\n"),
			startTLS(serverTLS(p.leaf)), expect("QUIT"), send("+OK bye\r\n"))},
		{name: "STLS refused", startTLS: true, server: scripted(send("+OK ready\r\n"), expect("STLS"),
			send("-ERR no\r\n")), want: ReasonTLS},
		{name: "POP3S", tls: true, server: scripted(startTLS(serverTLS(p.leaf)), send("+OK ready\r\n"),
			expect("QUIT"), send("+OK bye\r\n"))},
		{name: "silent after greeting", server: scripted(send("+OK ready\r\n"), expect("QUIT"), wait(2*time.Second)), want: ReasonTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := local("pop3", serve(t, tc.server))
			tg.TLS, tg.StartTLS = tc.tls, tc.startTLS
			probeOnce(t, s, runbook.POP3, tg, time.Second, tc.want)
		})
	}
}

// sshServer sends ident (after pre lines), checks the client's
// identification and its SSH_MSG_DISCONNECT, then closes first.
func sshServer(pre, ident string) func(testing.TB, net.Conn) {
	return scripted(send(pre+ident), expect(sshIdent+"\r\n"), step{raw: func(t testing.TB, c net.Conn, r *bufio.Reader) {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			t.Errorf("no disconnect packet: %v", err)
			return
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		body := make([]byte, n-1)
		if _, err := io.ReadFull(r, body); err != nil {
			t.Errorf("short disconnect packet: %v", err)
			return
		}
		if (4+n)%8 != 0 || hdr[4] < 4 || body[0] != 1 || binary.BigEndian.Uint32(body[1:]) != 11 {
			t.Errorf("bad disconnect packet % x", append(hdr[:], body...))
		}
		c.Close() // the server closes first, as sshd does
	}})
}

func TestSSH(t *testing.T) {
	s := testSettings(t)
	for _, tc := range []struct {
		name   string
		server func(testing.TB, net.Conn)
		want   Reason
	}{
		{name: "identification", server: sshServer("", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n")},
		{name: "lines before the identification", server: sshServer("hello\r\nthere\r\n", "SSH-2.0-x\r\n")},
		{name: "SSH 1.99", server: sshServer("", "SSH-1.99-old\r\n")},
		{name: "SSH 1", server: scripted(send("SSH-1.5-ancient\r\n"), expect("SSH-2.0")), want: ReasonBanner},
		{name: "FTP instead", server: scripted(send("220 ftp\r\n"), expect("SSH-2.0"), send("500 what\r\n")), want: ReasonBanner},
		{name: "echoed identification", server: scripted(send("* OK imap\r\n"), expect("SSH-2.0"),
			send(sshIdent+" BAD Error in IMAP command\r\n")), want: ReasonBanner},
		{name: "endless pre-identification", server: scripted(send(repeat("noise\r\n", maxPreIdent+1))), want: ReasonBanner},
		{name: "silent", server: silent, want: ReasonTimeout},
		{name: "refused", want: ReasonRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var port int
			if tc.server == nil {
				port = closedPort(t)
			} else {
				port = serve(t, tc.server)
			}
			probeOnce(t, s, runbook.SSH, local("ssh", port), 500*time.Millisecond, tc.want)
		})
	}
}

func TestSSHDisconnectPacket(t *testing.T) {
	for _, desc := range []string{"", "a", "mamori probe", repeat("x", 100)} {
		b := sshDisconnect(11, desc)
		n := binary.BigEndian.Uint32(b)
		pad := int(b[4])
		if int(n)+4 != len(b) || len(b)%8 != 0 || pad < 4 || pad > 255 {
			t.Errorf("%q: length %d, packet_length %d, padding %d", desc, len(b), n, pad)
		}
		payload := b[5 : len(b)-pad]
		if payload[0] != 1 || binary.BigEndian.Uint32(payload[1:]) != 11 ||
			string(payload[9:9+len(desc)]) != desc || len(payload) != 13+len(desc) {
			t.Errorf("%q: payload % x", desc, payload)
		}
	}
}

// mariadbGreeting is the greeting of MariaDB 10.11 as captured on Debian 12.
var mariadbGreeting = []byte("\x0a5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x12\x00\x00\x00LQ5R|>[/\x00\xfe\xf7" +
	"\x2d\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00abcdefghijkl\x00mysql_native_password\x00")

// mysqlServer greets, checks the handshake response names user, answers
// with answer, and waits for COM_QUIT when the answer is OK.
func mysqlServer(greeting []byte, user string, answer []byte) func(testing.TB, net.Conn) {
	return scripted(step{raw: func(t testing.TB, c net.Conn, r *bufio.Reader) {
		_, _ = c.Write(mysqlPacket(0, greeting))
		if greeting[0] != 10 {
			return
		}
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if user != "" {
				t.Errorf("no handshake response: %v", err)
			}
			return
		}
		if user == "" {
			t.Error("the probe sent a handshake response without a user to send")
		}
		body := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
		_, _ = io.ReadFull(r, body)
		if hdr[3] != 1 || len(body) < 33+len(user) || string(body[32:32+len(user)]) != user {
			t.Errorf("handshake response seq %d: % x", hdr[3], body)
		}
		_, _ = c.Write(mysqlPacket(2, answer))
		if answer[0] == 0 {
			if _, err := io.ReadFull(r, hdr[:4]); err != nil || hdr[3] != 0 {
				t.Errorf("no COM_QUIT: %v", err)
			}
			cmd, _ := r.ReadByte()
			if cmd != 1 {
				t.Errorf("command %d, want COM_QUIT", cmd)
			}
		}
		c.Close()
	}})
}

func TestMySQL(t *testing.T) {
	ok := []byte{0, 0, 0, 2, 0, 0, 0}
	denied := append([]byte{0xff, 0x15, 0x04}, "#28000Access denied for user 'mamori_probe'@'x'"...)
	blocked := append([]byte{0xff, 0x69, 0x04}, "Host '198.18.0.9' is blocked because of many connection errors"...)
	notAllowed := append([]byte{0xff, 0x6a, 0x04}, "Host '198.18.0.9' is not allowed to connect to this MariaDB server"...)
	for _, tc := range []struct {
		name   string
		user   string
		server func(testing.TB, net.Conn)
		want   Reason
	}{
		{name: "greeting, login, quit", user: "mamori_probe", server: mysqlServer(mariadbGreeting, "mamori_probe", ok)},
		{name: "access denied is still up", user: "mamori_probe", server: mysqlServer(mariadbGreeting, "mamori_probe", denied)},
		{name: "no user: hang up after the greeting", server: mysqlServer(mariadbGreeting, "", ok)},
		{name: "host blocked", user: "mamori_probe", server: mysqlServer(blocked, "", nil), want: ReasonBlocked},
		{name: "host not allowed", server: mysqlServer(notAllowed, "", nil), want: ReasonBlocked},
		{name: "protocol 9", server: mysqlServer([]byte("\x093.23\x00"), "", nil), want: ReasonBanner},
		{name: "not MySQL", server: scripted(send("220 smtp ready\r\n")), want: ReasonBanner},
		{name: "silent", server: silent, want: ReasonTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSettings(t, "--probe.mysql-user="+tc.user)
			probeOnce(t, s, runbook.MySQL, local("mysql", serve(t, tc.server)), 500*time.Millisecond, tc.want)
		})
	}
}

func TestParseMySQLGreeting(t *testing.T) {
	g, err := parseMySQLGreeting(mariadbGreeting)
	if err != nil {
		t.Fatal(err)
	}
	if g.version != "5.5.5-10.11.19-MariaDB-0+deb12u1" || g.connID != 18 || g.plugin != "mysql_native_password" ||
		g.caps&mysqlProtocol41 == 0 || g.caps&mysqlPluginAuth == 0 {
		t.Errorf("%+v", g)
	}
	for _, bad := range [][]byte{{}, {10}, []byte("\x0aversion-without-nul"), []byte("\x0a5.7\x00short")} {
		if _, err := parseMySQLGreeting(bad); reasonOf(err) != ReasonBanner {
			t.Errorf("% x: %v, want a banner failure", bad, err)
		}
	}
	e := parseMySQLError([]byte("\xff\x15\x04#28000Access denied"))
	if e.code != 1045 || e.state != "28000" || e.msg != "Access denied" {
		t.Errorf("%+v", e)
	}
}

func repeat(s string, n int) string {
	b := make([]byte, 0, len(s)*n)
	for i := 0; i < n; i++ {
		b = append(b, s...)
	}
	return string(b)
}
