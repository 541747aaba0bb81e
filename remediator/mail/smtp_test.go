package mail

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/remediator/internal/smtptest"
)

func TestSendModes(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  smtptest.Options
		cfg  Config
	}{
		{"plain", smtptest.Options{}, Config{TLS: None}},
		{"starttls+auth", smtptest.Options{TLS: true, Username: "mamori", Password: "s3cret"},
			Config{TLS: StartTLS, Username: "mamori", Password: "s3cret"}},
		{"implicit", smtptest.Options{Implicit: true}, Config{TLS: Implicit}},
		{"opportunistic-without-tls", smtptest.Options{}, Config{TLS: Opportunistic}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, tc.srv)
			cfg := tc.cfg
			cfg.Smarthost, cfg.CAFile, cfg.Timeout, cfg.Hello = srv.Addr, srv.CAFile, 5*time.Second, "mamori.test"
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), Message{From: "mamori@example.com", To: []string{"ops@acme.example"},
				Subject: "web1: HTTP を復旧しました", Body: "apache2 (httpd) を再起動しました。\n", MessageID: "42.customer@mamori",
				Headers: map[string]string{"X-Mamori-Incident": "42"}})
			if err != nil {
				t.Fatal(err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			m := msgs[0]
			if m.From != "mamori@example.com" || len(m.To) != 1 || m.To[0] != "ops@acme.example" {
				t.Errorf("envelope %s → %v", m.From, m.To)
			}
			if got := m.Header("Subject"); got != "web1: HTTP を復旧しました" {
				t.Errorf("subject %q", got)
			}
			if got := m.Header("Message-Id"); got != "<42.customer@mamori>" {
				t.Errorf("message-id %q", got)
			}
			if got := m.Header("X-Mamori-Incident"); got != "42" {
				t.Errorf("incident header %q", got)
			}
			if got := m.Text(); got != "apache2 (httpd) を再起動しました。\n" {
				t.Errorf("body %q", got)
			}
		})
	}
}

func TestSendFailures(t *testing.T) {
	ctx := context.Background()
	// STARTTLS required, server does not offer it.
	srv := smtptest.Start(t, smtptest.Options{})
	s, err := New(Config{Smarthost: srv.Addr, TLS: StartTLS, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	msg := Message{From: "m@example.com", To: []string{"c@example.com"}, Subject: "s", Body: "b"}
	if err := s.Send(ctx, msg); err == nil {
		t.Fatal("sent in clear although STARTTLS is required")
	}
	// Wrong password.
	srv = smtptest.Start(t, smtptest.Options{TLS: true, Username: "u", Password: "right"})
	s, _ = New(Config{Smarthost: srv.Addr, TLS: StartTLS, CAFile: srv.CAFile, Username: "u", Password: "wrong", Timeout: 5 * time.Second})
	if err := s.Send(ctx, msg); err == nil {
		t.Fatal("sent with a wrong password")
	} else if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("the error shows the password: %v", err)
	}
	// A server that refuses.
	srv = smtptest.Start(t, smtptest.Options{})
	srv.Refuse(true)
	s, _ = New(Config{Smarthost: srv.Addr, TLS: None, Timeout: 5 * time.Second})
	if err := s.Send(ctx, msg); err == nil {
		t.Fatal("a refused message counts as sent")
	}
	// Nothing listening.
	s, _ = New(Config{Smarthost: "127.0.0.1:1", TLS: None, Timeout: 2 * time.Second})
	if err := s.Send(ctx, msg); err == nil {
		t.Fatal("sent to a closed port")
	}
	if _, err := New(Config{Smarthost: "nohostport", TLS: None}); err == nil {
		t.Fatal("accepted a smarthost without port")
	}
	if _, err := New(Config{Smarthost: "a:25", TLS: "ssl"}); err == nil {
		t.Fatal("accepted an unknown tls mode")
	}
}
