// Package mail hands the remediator's emails to an SMTP server with
// github.com/wneessen/go-mail: STARTTLS (required or opportunistic),
// implicit TLS, or none, with authentication. Rendering and retrying live
// in the remediator; this package sends one message, once.
package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// TLS modes of the connection to the smarthost.
const (
	// StartTLS upgrades the connection and refuses to send without it.
	StartTLS = "starttls"
	// Opportunistic upgrades when the server offers STARTTLS.
	Opportunistic = "opportunistic"
	// Implicit speaks TLS from the first byte (SMTPS, port 465).
	Implicit = "tls"
	// None never upgrades (a local MTA on loopback).
	None = "none"
)

// Config is how to reach the smarthost.
type Config struct {
	// Smarthost is host:port.
	Smarthost string
	TLS       string
	// ServerName is the name the certificate must carry; default the
	// smarthost's host.
	ServerName         string
	CAFile             string
	InsecureSkipVerify bool
	Username           string
	// Password is revealed by the caller for this one use.
	Password string
	// Hello is the EHLO name; default this machine's host name.
	Hello   string
	Timeout time.Duration
}

// Message is one email.
type Message struct {
	From    string
	To      []string
	Subject string
	Body    string
	// MessageID stays the same across retries, so a message that was in
	// fact delivered before a lost answer is recognised as one.
	MessageID string
	// Headers are added as they are (X-Mamori-Incident, ...).
	Headers map[string]string
}

// Sender sends one message.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SMTP is the go-mail Sender.
type SMTP struct {
	host string
	opts []gomail.Option
}

// New checks cfg and prepares the client options.
func New(cfg Config) (*SMTP, error) {
	host, portStr, err := net.SplitHostPort(cfg.Smarthost)
	if err != nil {
		return nil, fmt.Errorf("smarthost %q: %w", cfg.Smarthost, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("smarthost %q: invalid port", cfg.Smarthost)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in by configuration
	if cfg.ServerName != "" {
		tc.ServerName = cfg.ServerName
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("smtp ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("smtp ca_file %s: no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	opts := []gomail.Option{gomail.WithPort(port), gomail.WithTimeout(timeout), gomail.WithTLSConfig(tc)}
	switch cfg.TLS {
	case StartTLS, "":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case Opportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case Implicit:
		opts = append(opts, gomail.WithSSL())
	case None:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		return nil, fmt.Errorf("smtp tls %q: want starttls, opportunistic, tls or none", cfg.TLS)
	}
	if cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	if cfg.Hello != "" {
		opts = append(opts, gomail.WithHELO(cfg.Hello))
	}
	// Fail early on options go-mail refuses.
	if _, err := gomail.NewClient(host, opts...); err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	return &SMTP{host: host, opts: opts}, nil
}

// Send implements Sender: one connection, one message.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if len(m.To) == 0 {
		return errors.New("email without recipients")
	}
	msg := gomail.NewMsg(gomail.WithCharset(gomail.CharsetUTF8), gomail.WithEncoding(gomail.EncodingB64))
	if err := msg.From(m.From); err != nil {
		return fmt.Errorf("from %q: %w", m.From, err)
	}
	if err := msg.To(m.To...); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	if m.MessageID != "" {
		msg.SetMessageIDWithValue(m.MessageID)
	} else {
		msg.SetMessageID()
	}
	for k, v := range m.Headers {
		msg.SetGenHeader(gomail.Header(k), v)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	c, err := gomail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	return nil
}

var _ Sender = (*SMTP)(nil)
