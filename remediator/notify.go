package remediator

import (
	"context"
	"fmt"
	"math"
	netmail "net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/mamori-ops/mamori/remediator/journal"
	"github.com/mamori-ops/mamori/remediator/mail"
)

// escalate hands the incident to the operators: an email with the
// evidence (every step, command and output so far).
func (l *ladder) escalate(ctx context.Context, i int) (string, error) {
	return l.email(ctx, i, kindOperator, l.cfg.Operators.Emails, string(l.cfg.Operators.Language))
}

// notify tells the customer what was seen, what was done and the outcome,
// in the customer's language.
func (l *ladder) notify(ctx context.Context, i int) (string, error) {
	if why, err := l.toldBySibling(ctx); err != nil {
		return "", err
	} else if why != "" {
		return l.skip(ctx, i, why)
	}
	return l.email(ctx, i, kindCustomer, l.host.Customer.Contacts, string(l.host.Customer.Language))
}

// toldBySibling explains why the customer needs no email from a ladder that
// found its service healthy: one fault fails several checks (a stopped
// dovecot fails imap, imaps, pop3 and pop3s), and the sibling incident that
// restarted the service since this alert began tells the customer; a
// "nothing to do" email for each of the others would only confuse.
func (l *ladder) toldBySibling(ctx context.Context) (string, error) {
	if l.result != ResultHealthy || l.dry || l.hc.Service == "" {
		return "", nil
	}
	n, err := l.e.journal.CountBudget(ctx, journal.BudgetQuery{Budget: budgetRestart, Host: l.host.Name,
		Service: l.hc.Service, Since: l.inc.Key.StartsAt})
	if err != nil {
		return "", fmt.Errorf("%w: %w", errStop, err)
	}
	if n == 0 {
		return "", nil
	}
	return fmt.Sprintf("%s was restarted %d time(s) since this alert began; the customer hears of it from that incident", l.hc.Service, n), nil
}

// email renders an email from the journal and puts it in the outbox, in
// the same step: a resumed ladder that runs the step again finds the email
// queued already and queues nothing twice.
func (l *ladder) email(ctx context.Context, i int, kind string, to []string, lang string) (string, error) {
	s, err := l.begin(ctx, i, l.hc.Service, "")
	if err != nil {
		return "", err
	}
	if len(to) == 0 {
		s.note("no %s address", kind)
		return l.end(ctx, s, outSkipped)
	}
	subject, body, err := l.rc.tmpl.Render(kind, lang, l.emailData(kind, lang))
	if err != nil {
		s.note("%v", err)
		level.Error(l.logger).Log("msg", "email template failed", "kind", kind, "err", err)
		if subject == "" {
			return l.end(ctx, s, outFailed)
		}
	}
	status := journal.EmailPending
	if l.dry {
		status = journal.EmailDryRun
	}
	id, err := l.e.journal.QueueEmail(ctx, journal.Email{IncidentID: l.inc.ID, StepIndex: i, Kind: kind,
		From: l.cfg.Mail.From, To: to, Subject: subject, Body: body, Status: status})
	if err != nil {
		return "", fmt.Errorf("%w: %w", errStop, err)
	}
	s.note("email %d to %d address(es): %s", id, len(to), subject)
	if !l.dry {
		l.e.wakeMailer()
	}
	return l.end(ctx, s, outQueued)
}

// mailer delivers the outbox: every pending email is handed to the SMTP
// server, retried with exponential backoff while the server is down, and
// given up (failed) only after mail.retry.give_up_after. Nothing is lost
// when the remediator stops: the outbox is in the journal.
type mailer struct {
	journal journal.Journal
	metrics *metrics
	logger  log.Logger
	now     func() time.Time
	current func() *runtime
	wake    chan struct{}

	mu      sync.Mutex
	lastErr string
}

func newMailer(j journal.Journal, m *metrics, logger log.Logger, now func() time.Time, current func() *runtime) *mailer {
	return &mailer{journal: j, metrics: m, logger: logger, now: now, current: current, wake: make(chan struct{}, 1)}
}

// Wake asks for a delivery round now.
func (m *mailer) Wake() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// run delivers until ctx ends; tick bounds how late a retry can be.
func (m *mailer) run(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		m.deliver(ctx)
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-t.C:
		}
	}
}

// backoff is the wait after the n-th failed attempt.
func backoff(n int, initial, maxWait time.Duration) time.Duration {
	d := time.Duration(float64(initial) * math.Pow(2, float64(max(n-1, 0))))
	if d > maxWait || d <= 0 {
		return maxWait
	}
	return d
}

// deliver sends what is due, oldest first, one round.
func (m *mailer) deliver(ctx context.Context) {
	rc := m.current()
	due, err := m.journal.DueEmails(ctx, m.now(), 100)
	if err != nil {
		m.logChange("cannot read the outbox", err)
		return
	}
	retry := rc.cfg.Mail.Retry
	for _, e := range due {
		if ctx.Err() != nil {
			return
		}
		sctx, cancel := context.WithTimeout(ctx, time.Duration(rc.cfg.Mail.Timeout)+5*time.Second)
		err := rc.sender.Send(sctx, mail.Message{From: e.From, To: e.To, Subject: e.Subject, Body: e.Body,
			MessageID: "mamori." + strconv.FormatInt(e.IncidentID, 10) + "." + strconv.FormatInt(e.ID, 10) + "@" + domainOf(e.From),
			Headers:   map[string]string{"X-Mamori-Incident": strconv.FormatInt(e.IncidentID, 10), "Auto-Submitted": "auto-generated"}})
		cancel()
		if err == nil {
			m.metrics.emails.WithLabelValues(e.Kind, emailSent).Inc()
			if aerr := m.journal.EmailAttempt(ctx, e.ID, journal.EmailSent, time.Time{}, ""); aerr != nil {
				m.logChange("cannot record a sent email", aerr)
				return
			}
			m.logChange("", nil)
			level.Info(m.logger).Log("msg", "email sent", "incident", e.IncidentID, "kind", e.Kind, "to", len(e.To))
			continue
		}
		m.metrics.emails.WithLabelValues(e.Kind, emailFailed).Inc()
		status, next := journal.EmailPending, m.now().Add(backoff(e.Attempts+1, time.Duration(retry.Initial), time.Duration(retry.Max)))
		if m.now().Sub(e.CreatedAt) > time.Duration(retry.GiveUpAfter) {
			status = journal.EmailFailed
			level.Error(m.logger).Log("msg", "giving up on an email", "incident", e.IncidentID, "kind", e.Kind, "attempts", e.Attempts+1, "err", err)
		}
		m.logChange("cannot send email; it stays in the outbox", err)
		if aerr := m.journal.EmailAttempt(ctx, e.ID, status, next, err.Error()); aerr != nil {
			m.logChange("cannot record a failed email", aerr)
			return
		}
		// The server is down for the next ones too: wait for their turn.
		return
	}
}

// domainOf is the domain of an address, for Message-IDs.
func domainOf(from string) string {
	if a, err := netmail.ParseAddress(from); err == nil {
		if i := strings.LastIndex(a.Address, "@"); i >= 0 {
			return a.Address[i+1:]
		}
	}
	return "mamori.invalid"
}

// logChange logs a failure only when it differs from the last one, and
// the recovery once.
func (m *mailer) logChange(msg string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := ""
	if err != nil {
		s = msg + ": " + err.Error()
	}
	if s == m.lastErr {
		return
	}
	if err == nil {
		level.Info(m.logger).Log("msg", "emails are delivered again")
	} else {
		level.Warn(m.logger).Log("msg", msg, "err", err)
	}
	m.lastErr = s
}
