package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/deploy/demo/stack"
)

// floodSize is how many messages the stolen account sends: above the
// mailq check's 200.
const floodSize = 250

// holdOutbound keeps mail for other domains in the box's queue without a
// delivery attempt, so that the queue holds exactly what was sent.
func holdOutbound(t *testing.T, e *env) {
	t.Helper()
	shell("postconf -e 'defer_transports = smtp' && postfix reload")(t, e)
}

// floodQueue sends floodSize messages as the customer's mail account, with
// its password, through the box's submission port (SASL), as a spammer with
// a stolen password does.
func floodQueue(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	t0 := time.Now()
	from := stack.MailAccount + "@" + e.st.Box.Name
	if err := e.st.Box.Submit(ctx, stack.MailAccount, stack.MailPassword, from, "list@example.net", floodSize); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages submitted as %s in %s", floodSize, stack.MailAccount, time.Since(t0).Round(time.Millisecond))
}

// passwordReset checks that the account now takes the agreed password and
// no longer the old one (dovecot, the SASL backend, asked directly), and
// that nothing was delivered or deleted: the queue is the operators' to
// clear.
func passwordReset(t *testing.T, e *env, _ *stack.Mail) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if out, err := e.st.Box.Exec(ctx, "doveadm", "auth", "test", stack.MailAccount, stack.AgreedPassword); err != nil {
		t.Errorf("%s does not log in with the agreed password: %v %s", stack.MailAccount, err, out)
	}
	if out, err := e.st.Box.Exec(ctx, "doveadm", "auth", "test", stack.MailAccount, stack.MailPassword); err == nil {
		t.Errorf("%s still logs in with the old password: %s", stack.MailAccount, out)
	}
	if n, err := e.query(ctx, `sum(mamori_mailq_messages)`); err != nil || len(n) != 1 || n[0] != fmt.Sprint(floodSize) {
		t.Errorf("messages queued after the incident: %v %v, want %d", n, err, floodSize)
	}
}

// emptyQueue discards the flood, delivers to other domains as before and
// gives the account back its password.
func emptyQueue(t *testing.T, e *env) {
	t.Helper()
	shell("postsuper -d ALL 2>/dev/null; postconf -e 'defer_transports =' && postfix reload")(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.st.Box.MailAccount(ctx, stack.MailAccount, stack.MailPassword); err != nil {
		t.Errorf("restore the password: %v", err)
	}
}
