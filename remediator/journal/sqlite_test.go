package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func open(t *testing.T) *SQLite {
	t.Helper()
	j, err := OpenSQLite(filepath.Join(t.TempDir(), "journal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

var t0 = time.Date(2026, 11, 26, 5, 41, 37, 812000000, time.UTC)

func arrival(fp, status string, accepted bool) Arrival {
	decision := "accepted"
	if !accepted {
		decision = "unknown_host"
	}
	return Arrival{Accepted: accepted, Incident: Incident{
		Key: Key{Fingerprint: fp, StartsAt: t0}, Status: status, AlertName: "MamoriHttpDown",
		Check: "http", Host: "web1", Customer: "acme", Service: "httpd", Decision: decision,
		Labels: map[string]string{"check": "http"}, Annotations: map[string]string{"summary": "down"},
	}}
}

func TestAcceptDedupsAndAppliesResolved(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	got, err := j.Accept(ctx, []Arrival{arrival("a", "firing", true), arrival("a", "firing", true), arrival("b", "firing", false)})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Outcome != New || got[1].Outcome != Duplicate || got[1].IncidentID != got[0].IncidentID || got[2].Outcome != Rejected {
		t.Fatalf("outcomes %+v", got)
	}
	q, err := j.Queued(ctx, []string{"ping"}, 10)
	if err != nil || len(q) != 1 || q[0].ID != got[0].IncidentID || q[0].Host != "web1" {
		t.Fatalf("queued %+v %v", q, err)
	}
	inc, _, _, err := j.Incident(ctx, got[2].IncidentID)
	if err != nil || inc.State != Done || inc.Result != ResultRejected || inc.Decision != "unknown_host" {
		t.Fatalf("rejected incident %+v %v", inc, err)
	}

	got, err = j.Accept(ctx, []Arrival{arrival("a", "resolved", true), arrival("a", "resolved", true), arrival("c", "resolved", true)})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Outcome != ResolvedActive || got[1].Outcome != Duplicate || got[2].Outcome != ResolvedFirst {
		t.Fatalf("resolved outcomes %+v", got)
	}
	// A late firing copy of an alert first seen resolved starts nothing.
	got, err = j.Accept(ctx, []Arrival{arrival("c", "firing", true)})
	if err != nil || got[0].Outcome != Duplicate {
		t.Fatalf("late firing %+v %v", got, err)
	}
	inc, _, _, _ = j.Incident(ctx, got[0].IncidentID)
	if inc.State != Done || inc.Result != ResultResolved {
		t.Fatalf("resolved-first incident %+v", inc)
	}
	ds, err := j.Decisions(ctx, got[0].IncidentID)
	if err != nil || len(ds) != 2 || ds[0].Reason != DecisionResolved || ds[1].Reason != DecisionDuplicate {
		t.Fatalf("decisions %+v %v", ds, err)
	}
}

// TestQueuedOnePerHostHostLevelFirst: the scheduler's view of the queue.
func TestQueuedOnePerHostHostLevelFirst(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	mk := func(fp, check, host string) Arrival {
		a := arrival(fp, "firing", true)
		a.Incident.Check, a.Incident.Host = check, host
		return a
	}
	got, err := j.Accept(ctx, []Arrival{mk("1", "http", "a"), mk("2", "imap", "a"), mk("3", "ping", "a"), mk("4", "smtp", "b"), mk("5", "ssh", "b")})
	if err != nil {
		t.Fatal(err)
	}
	q, err := j.Queued(ctx, []string{"ping", "ssh"}, 10)
	if err != nil || len(q) != 2 || q[0].Host != "a" || q[0].ID != got[2].IncidentID || q[1].Host != "b" || q[1].ID != got[4].IncidentID {
		t.Fatalf("queued %+v %v", q, err)
	}
	q, _ = j.Queued(ctx, nil, 10)
	if len(q) != 2 || q[0].ID != got[0].IncidentID || q[1].ID != got[3].IncidentID {
		t.Fatalf("queued without host-level checks %+v", q)
	}
	for host, want := range map[string]int64{"a": got[2].IncidentID, "b": got[4].IncidentID} {
		if id, ok, err := j.NextFor(ctx, host, []string{"ping", "ssh"}); err != nil || !ok || id != want {
			t.Fatalf("next for %s: %d %v %v, want %d", host, id, ok, err, want)
		}
	}
	if id, ok, _ := j.NextFor(ctx, "a", nil); !ok || id != got[0].IncidentID {
		t.Fatalf("next for a without host-level checks: %d", id)
	}
	if _, ok, err := j.NextFor(ctx, "c", []string{"ping"}); ok || err != nil {
		t.Fatalf("next for an idle host: %v %v", ok, err)
	}
}

func TestClaimIsExclusiveAndRecoverRequeues(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	got, err := j.Accept(ctx, []Arrival{arrival("a", "firing", true)})
	if err != nil {
		t.Fatal(err)
	}
	id := got[0].IncidentID
	var wg sync.WaitGroup
	wins := make(chan string, 2)
	for _, owner := range []string{"one", "two"} {
		wg.Go(func() {
			ok, err := j.Claim(ctx, id, owner)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins <- owner
			}
		})
	}
	wg.Wait()
	close(wins)
	if n := len(wins); n != 1 {
		t.Fatalf("%d owners claimed the incident", n)
	}
	ids, err := j.Recover(ctx)
	if err != nil || len(ids) != 1 || ids[0] != id {
		t.Fatalf("recover %v %v", ids, err)
	}
	if ok, _ := j.Claim(ctx, id, "three"); !ok {
		t.Fatal("a recovered incident cannot be claimed")
	}
}

func TestStepsCommandsEmailsAndBudget(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	got, _ := j.Accept(ctx, []Arrival{arrival("a", "firing", true)})
	id := got[0].IncidentID
	sid, err := j.BeginStep(ctx, Step{IncidentID: id, Index: 1, Action: "restart", Host: "web1", Service: "httpd", Budget: "restart"})
	if err != nil {
		t.Fatal(err)
	}
	cid, err := j.BeginCommand(ctx, Command{IncidentID: id, StepID: sid, Name: "restart", Target: "ssh", Line: "systemctl restart httpd"})
	if err != nil {
		t.Fatal(err)
	}
	// A step started again on resume keeps its row.
	sid2, err := j.BeginStep(ctx, Step{IncidentID: id, Index: 1, Action: "restart", Host: "web1", Service: "httpd", Budget: "restart"})
	if err != nil || sid2 != sid {
		t.Fatalf("restarted step %d, want %d (%v)", sid2, sid, err)
	}
	code := 0
	if err := j.EndCommand(ctx, Command{ID: cid, ExitCode: &code, Output: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := j.EndStep(ctx, Step{ID: sid, Outcome: "done", Detail: "restarted"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		eid, err := j.QueueEmail(ctx, Email{IncidentID: id, StepIndex: 5, Kind: "customer", From: "m@x", To: []string{"c@x"}, Subject: "件名", Body: "本文"})
		if err != nil || eid == 0 {
			t.Fatalf("queue email %d %v", eid, err)
		}
	}
	_, steps, emails, err := j.Incident(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 || !steps[0].Finished() || len(steps[0].Commands) != 1 || *steps[0].Commands[0].ExitCode != 0 {
		t.Fatalf("steps %+v", steps)
	}
	if len(emails) != 1 || emails[0].Subject != "件名" || emails[0].To[0] != "c@x" {
		t.Fatalf("emails %+v", emails)
	}
	n, err := j.CountBudget(ctx, BudgetQuery{Budget: "restart", Host: "web1", Service: "httpd", Since: time.Now().Add(-time.Hour)})
	if err != nil || n != 1 {
		t.Fatalf("budget count %d %v", n, err)
	}
	n, _ = j.CountBudget(ctx, BudgetQuery{Budget: "restart", Host: "web1", Service: "httpd", Since: time.Now().Add(time.Minute)})
	if n != 0 {
		t.Fatalf("budget counts steps before its window: %d", n)
	}
	due, err := j.DueEmails(ctx, time.Now().Add(time.Second), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("due %+v %v", due, err)
	}
	if err := j.EmailAttempt(ctx, due[0].ID, EmailPending, time.Now().Add(time.Hour), "connection refused"); err != nil {
		t.Fatal(err)
	}
	if due, _ := j.DueEmails(ctx, time.Now().Add(time.Second), 10); len(due) != 0 {
		t.Fatalf("an email in backoff is due: %+v", due)
	}
	if p, _ := j.PendingEmails(ctx); p != 1 {
		t.Fatalf("pending %d", p)
	}
	if err := j.Finish(ctx, id, "recovered", ""); err != nil {
		t.Fatal(err)
	}
	if err := j.Finish(ctx, 999, "recovered", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("finish unknown: %v", err)
	}
}

// TestGroupCommitIsolatesFailures: a failing write in a batch does not undo
// its neighbours.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = j.Accept(ctx, []Arrival{arrival(fmt.Sprint(i), "firing", true)})
			if i%10 == 0 {
				// Step rows need an incident: this one fails.
				_, err := j.BeginStep(ctx, Step{IncidentID: 1 << 40, Index: 0, Action: "check", Host: "x"})
				if err == nil {
					t.Error("a step of an unknown incident was recorded")
				}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("accept %d: %v", i, err)
		}
	}
	inc, _, err := j.Stats(ctx)
	if err != nil || inc != 200 {
		t.Fatalf("%d incidents recorded, want 200 (%v)", inc, err)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := OpenSQLite(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Accept(ctx, []Arrival{arrival("a", "firing", true)}); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Accept(ctx, []Arrival{arrival("b", "firing", true)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	j, err = OpenSQLite(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	q, err := j.Queued(ctx, nil, 10)
	if err != nil || len(q) != 1 {
		t.Fatalf("after reopen: %+v %v", q, err)
	}
}

// TestHotQueriesUseIndexes: the queries a ladder or the scheduler runs for
// every incident search an index; none scans a table that grows with the
// journal.
func TestHotQueriesUseIndexes(t *testing.T) {
	j := open(t)
	for _, q := range []string{
		`SELECT count(*) FROM steps WHERE budget != '' AND budget = ? AND host = ? AND service = ? AND started_at >= ?`,
		`SELECT id FROM incidents WHERE state = 'queued' AND host = ? AND check_id = ? ORDER BY id LIMIT 1`,
		`SELECT id FROM incidents WHERE state = 'queued' AND host = ? ORDER BY id LIMIT 1`,
		`SELECT id, state, resolved_at FROM incidents WHERE fingerprint = ? AND starts_at = ?`,
		`SELECT id FROM steps WHERE incident_id = ? ORDER BY idx`,
		`SELECT id FROM commands WHERE incident_id = ? ORDER BY id`,
		`SELECT id FROM emails WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 100`,
		`SELECT id FROM decisions WHERE incident_id = ?`,
	} {
		rows, err := j.r.Query(`EXPLAIN QUERY PLAN `+q, 1, 2, 3, 4)
		if err != nil {
			// Fewer parameters than four: bind what the query takes.
			rows, err = j.r.Query(`EXPLAIN QUERY PLAN ` + strings.ReplaceAll(q, "?", "1"))
		}
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(detail, "SCAN ") {
				t.Errorf("%s\n  %s", q, detail)
			}
		}
		rows.Close()
	}
}

func TestJournalFileIsPrivate(t *testing.T) {
	j := open(t)
	if _, err := j.Accept(context.Background(), []Arrival{arrival("a", "firing", true)}); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal"} {
		fi, err := os.Stat(j.Path() + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s%s: mode %v", filepath.Base(j.Path()), suffix, fi.Mode().Perm())
		}
	}
}
