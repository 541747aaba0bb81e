package testbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"regexp"
	"time"
)

// mailAccountRE is a system account name the box's mail accounts may have.
var mailAccountRE = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,31}$`)

// MailAccount makes name a mail account of the box (a system user, no
// login shell, as dovecot's PAM passdb and postfix's SASL see it) with that
// password, creating it when missing. Both go to useradd and chpasswd as
// arguments, never inside a command line.
func (b *Box) MailAccount(ctx context.Context, name, password string) error {
	if !mailAccountRE.MatchString(name) {
		return fmt.Errorf("mail account %q: want a plain system user name", name)
	}
	if _, err := b.Exec(ctx, "id", "-u", name); err != nil {
		if out, err := b.Exec(ctx, "useradd", "--create-home", "--shell", "/usr/sbin/nologin", name); err != nil {
			return fmt.Errorf("useradd %s: %w: %s", name, err, out)
		}
	}
	if out, err := b.Exec(ctx, "sh", "-c", `printf '%s:%s\n' "$1" "$2" | chpasswd`, "sh", name, password); err != nil {
		return fmt.Errorf("chpasswd %s: %w: %s", name, err, out)
	}
	return nil
}

// Submit sends n messages from one mail account through the box's
// submission port (587) in one session: STARTTLS with the box's CA, SASL
// PLAIN as user, then MAIL, RCPT and DATA n times. It is bounded by ctx.
func (b *Box) Submit(ctx context.Context, user, password, from, to string, n int) error {
	pem, err := os.ReadFile(b.CAFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return errors.New("submit: no certificate in the box's CA file")
	}
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", net.JoinHostPort(b.Addr, "587"))
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(2 * time.Minute)
	}
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, b.Name)
	if err != nil {
		return fmt.Errorf("submit: greeting: %w", err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: b.Name, RootCAs: roots}); err != nil {
		return fmt.Errorf("submit: starttls: %w", err)
	}
	if err := c.Auth(smtp.PlainAuth("", user, password, b.Name)); err != nil {
		return fmt.Errorf("submit: auth as %s: %w", user, err)
	}
	for i := range n {
		msg := fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: message %d of %d\r\n\r\nmamori testbox submission %d\r\n", from, to, i+1, n, i+1)
		if err := send(c, from, to, msg); err != nil {
			return fmt.Errorf("submit: message %d of %d: %w", i+1, n, err)
		}
	}
	return c.Quit()
}

func send(c *smtp.Client, from, to, msg string) error {
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	return w.Close()
}
