package journal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// schemaVersion is the layout this code writes; a newer file is refused.
const schemaVersion = 1

const schema = `
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS incidents (
	id            INTEGER PRIMARY KEY,
	fingerprint   TEXT NOT NULL,
	starts_at     INTEGER NOT NULL,
	status        TEXT NOT NULL,
	alertname     TEXT NOT NULL DEFAULT '',
	check_id      TEXT NOT NULL DEFAULT '',
	host          TEXT NOT NULL DEFAULT '',
	customer      TEXT NOT NULL DEFAULT '',
	service       TEXT NOT NULL DEFAULT '',
	labels        TEXT NOT NULL DEFAULT '{}',
	annotations   TEXT NOT NULL DEFAULT '{}',
	generator_url TEXT NOT NULL DEFAULT '',
	state         TEXT NOT NULL,
	decision      TEXT NOT NULL,
	detail        TEXT NOT NULL DEFAULT '',
	result        TEXT NOT NULL DEFAULT '',
	dry_run       INTEGER NOT NULL DEFAULT 0,
	resolved_at   INTEGER NOT NULL DEFAULT 0,
	owner         TEXT NOT NULL DEFAULT '',
	received_at   INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	finished_at   INTEGER NOT NULL DEFAULT 0,
	UNIQUE (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS incidents_state ON incidents (state, id);
CREATE INDEX IF NOT EXISTS incidents_host ON incidents (host, id);
CREATE INDEX IF NOT EXISTS incidents_queue ON incidents (state, host, id);
CREATE INDEX IF NOT EXISTS incidents_queue_check ON incidents (state, host, check_id, id);
CREATE TABLE IF NOT EXISTS steps (
	id          INTEGER PRIMARY KEY,
	incident_id INTEGER NOT NULL REFERENCES incidents (id),
	idx         INTEGER NOT NULL,
	action      TEXT NOT NULL,
	host        TEXT NOT NULL,
	service     TEXT NOT NULL DEFAULT '',
	budget      TEXT NOT NULL DEFAULT '',
	state       TEXT NOT NULL,
	outcome     TEXT NOT NULL DEFAULT '',
	detail      TEXT NOT NULL DEFAULT '',
	started_at  INTEGER NOT NULL,
	finished_at INTEGER NOT NULL DEFAULT 0,
	UNIQUE (incident_id, idx)
);
CREATE INDEX IF NOT EXISTS steps_budget ON steps (budget, host, service, started_at) WHERE budget != '';
CREATE TABLE IF NOT EXISTS commands (
	id          INTEGER PRIMARY KEY,
	incident_id INTEGER NOT NULL REFERENCES incidents (id),
	step_id     INTEGER NOT NULL REFERENCES steps (id),
	name        TEXT NOT NULL,
	target      TEXT NOT NULL,
	line        TEXT NOT NULL,
	dry_run     INTEGER NOT NULL DEFAULT 0,
	exit_code   INTEGER,
	output      TEXT NOT NULL DEFAULT '',
	truncated   INTEGER NOT NULL DEFAULT 0,
	error       TEXT NOT NULL DEFAULT '',
	started_at  INTEGER NOT NULL,
	finished_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS commands_incident ON commands (incident_id, id);
CREATE TABLE IF NOT EXISTS emails (
	id              INTEGER PRIMARY KEY,
	incident_id     INTEGER NOT NULL REFERENCES incidents (id),
	step_idx        INTEGER NOT NULL,
	kind            TEXT NOT NULL,
	sender          TEXT NOT NULL,
	recipients      TEXT NOT NULL,
	subject         TEXT NOT NULL,
	body            TEXT NOT NULL,
	status          TEXT NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL,
	sent_at         INTEGER NOT NULL DEFAULT 0,
	UNIQUE (incident_id, step_idx, kind)
);
CREATE INDEX IF NOT EXISTS emails_due ON emails (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS decisions (
	id          INTEGER PRIMARY KEY,
	incident_id INTEGER,
	fingerprint TEXT NOT NULL,
	starts_at   INTEGER NOT NULL,
	status      TEXT NOT NULL,
	reason      TEXT NOT NULL,
	detail      TEXT NOT NULL DEFAULT '',
	at          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_incident ON decisions (incident_id);
`

// maxBatch bounds how many writes share one transaction; maxLow bounds
// the ladder writes among them, so that a webhook waits for at most a few
// of them before its own commit.
const (
	maxBatch = 256
	maxLow   = 16
)

// checkpointEvery is how often the WAL is copied into the database, by a
// connection of its own (PASSIVE: it never blocks the writer, and the
// writer never pays for a checkpoint at commit).
const checkpointEvery = time.Second

// SQLite is the embedded journal: one file, WAL mode, synchronous=FULL so a
// committed write survives a power loss. Writes go through one goroutine
// that commits whatever is waiting in one transaction (group commit): many
// concurrent webhooks share one fsync, and a failing write rolls back to
// its own savepoint without touching the others of the batch. Webhooks'
// writes go first: ladders wait, Alertmanager does not.
type SQLite struct {
	path    string
	w       *sql.DB   // the one writer connection...
	conn    *sql.Conn // ...held by the committer
	wstmts  map[string]*sql.Stmt
	r       *sql.DB // readers, in parallel with the writer (WAL)
	rstmts  sync.Map
	ckpt    *sql.DB // the checkpointer
	hi, lo  chan writeOp
	closing chan struct{}
	done    chan struct{}
	once    sync.Once
	now     func() time.Time
}

type writeOp struct {
	fn   func(*txn) error
	errc chan error
}

// txn is the committer's transaction: statements prepared once on the
// writer connection and reused (parsing SQL is most of a small write's
// cost).
type txn struct {
	j *SQLite
}

func (t *txn) stmt(q string) (*sql.Stmt, error) {
	if st, ok := t.j.wstmts[q]; ok {
		return st, nil
	}
	st, err := t.j.conn.PrepareContext(context.Background(), q)
	if err != nil {
		return nil, err
	}
	t.j.wstmts[q] = st
	return st, nil
}

// Exec runs a write.
func (t *txn) Exec(q string, args ...any) (sql.Result, error) {
	st, err := t.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.Exec(args...)
}

// QueryRow runs a query of one row.
func (t *txn) QueryRow(q string, args ...any) *sql.Row {
	st, err := t.stmt(q)
	if err != nil {
		// A Row carrying the error: QueryRow on a closed statement.
		return t.j.conn.QueryRowContext(context.Background(), q, args...)
	}
	return st.QueryRow(args...)
}

// Query runs a query.
func (t *txn) Query(q string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.Query(args...)
}

// rstmt is a reader's prepared statement, shared by every reader
// connection.
func (j *SQLite) rstmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := j.rstmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := j.r.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := j.rstmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

func (j *SQLite) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := j.rstmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (j *SQLite) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := j.rstmt(ctx, q)
	if err != nil {
		return j.r.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// OpenSQLite opens (creating when absent) the journal at path. now is the
// clock; nil means time.Now.
func OpenSQLite(path string, now func() time.Time) (*SQLite, error) {
	if now == nil {
		now = time.Now
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("journal directory: %w", err)
		}
	}
	// Command output and emails are for the operators' eyes only. SQLite
	// gives the -wal and -shm files it creates the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("journal %s: %w", p, err)
		}
	}
	dsn := func(extra ...string) string {
		q := url.Values{}
		for _, p := range append([]string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)",
			"wal_autocheckpoint(0)", "mmap_size(268435456)"}, extra...) {
			q.Add("_pragma", p)
		}
		return "file:" + path + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := migrate(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}

	r, err := sql.Open("sqlite", dsn("query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	ckpt, err := sql.Open("sqlite", dsn())
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	ckpt.SetMaxOpenConns(1)
	conn, err := w.Conn(context.Background())
	if err != nil {
		w.Close()
		r.Close()
		ckpt.Close()
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	j := &SQLite{
		path:    path,
		w:       w,
		conn:    conn,
		wstmts:  map[string]*sql.Stmt{},
		r:       r,
		ckpt:    ckpt,
		hi:      make(chan writeOp),
		lo:      make(chan writeOp),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		now:     now,
	}
	go j.committer()
	go j.checkpointer()
	return j, nil
}

// checkpointer copies the WAL into the database file in the background.
func (j *SQLite) checkpointer() {
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-j.closing:
			return
		case <-t.C:
			_, _ = j.ckpt.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}

func migrate(db *sql.DB) error {
	if _, err := db.Exec(schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	var v string
	err := db.QueryRow(`SELECT value FROM meta WHERE key = 'schema_version'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = db.Exec(`INSERT INTO meta (key, value) VALUES ('schema_version', ?)`, fmt.Sprint(schemaVersion))
		return err
	case err != nil:
		return err
	case v != fmt.Sprint(schemaVersion):
		return fmt.Errorf("schema version %s, this remediator knows %d", v, schemaVersion)
	}
	return nil
}

// Path is the journal's file.
func (j *SQLite) Path() string { return j.path }

// committer runs every write, batching what waits: every webhook write
// that is waiting, and at most maxLow of the others.
func (j *SQLite) committer() {
	defer close(j.done)
	batch := make([]writeOp, 0, maxBatch)
	for {
		select {
		case op := <-j.hi:
			batch = append(batch[:0], op)
		case op := <-j.lo:
			batch = append(batch[:0], op)
		case <-j.closing:
			return
		}
		low := 0
	fill:
		for len(batch) < maxBatch {
			select {
			case op := <-j.hi:
				batch = append(batch, op)
				continue
			default:
			}
			if low >= maxLow {
				break
			}
			select {
			case op := <-j.hi:
				batch = append(batch, op)
			case op := <-j.lo:
				batch = append(batch, op)
				low++
			default:
				break fill
			}
		}
		j.commit(batch)
	}
}

func (j *SQLite) commit(batch []writeOp) {
	errs := make([]error, len(batch))
	t := &txn{j: j}
	_, err := t.Exec(`BEGIN IMMEDIATE`)
	if err == nil {
		for i, op := range batch {
			errs[i] = savepoint(t, op.fn)
		}
		if _, err = t.Exec(`COMMIT`); err != nil {
			_, _ = j.conn.ExecContext(context.Background(), `ROLLBACK`)
		}
	}
	for i, op := range batch {
		if err != nil {
			errs[i] = fmt.Errorf("journal commit: %w", err)
		}
		op.errc <- errs[i]
	}
}

// savepoint runs fn so that its failure undoes only its own writes.
func savepoint(t *txn, fn func(*txn) error) error {
	if _, err := t.Exec(`SAVEPOINT op`); err != nil {
		return err
	}
	if err := fn(t); err != nil {
		if _, rerr := t.Exec(`ROLLBACK TO op`); rerr != nil {
			return errors.Join(err, rerr)
		}
		_, _ = t.Exec(`RELEASE op`)
		return err
	}
	_, err := t.Exec(`RELEASE op`)
	return err
}

// write runs fn once, in the next group commit, and returns once the batch
// is durable. What fn computes is valid only when write returns nil.
func (j *SQLite) write(ctx context.Context, fn func(*txn) error) error {
	return j.submit(ctx, j.lo, fn)
}

// writeFirst is write for webhooks: ahead of the ladders' writes.
func (j *SQLite) writeFirst(ctx context.Context, fn func(*txn) error) error {
	return j.submit(ctx, j.hi, fn)
}

func (j *SQLite) submit(ctx context.Context, lane chan writeOp, fn func(*txn) error) error {
	op := writeOp{fn: fn, errc: make(chan error, 1)}
	select {
	case lane <- op:
	case <-j.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once handed over, the write commits or fails as a whole: wait for it
	// whatever ctx says, so the caller never reports a write that happened
	// as failed.
	return <-op.errc
}

// Close waits for writes in flight and closes the file.
func (j *SQLite) Close() error {
	j.once.Do(func() { close(j.closing) })
	<-j.done
	// A last checkpoint leaves a compact file behind.
	_, _ = j.ckpt.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	for _, st := range j.wstmts {
		st.Close()
	}
	j.wstmts = map[string]*sql.Stmt{}
	return errors.Join(j.r.Close(), j.ckpt.Close(), j.conn.Close(), j.w.Close())
}

// ts stores times as Unix nanoseconds, 0 for the zero time.
func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromTS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Accept implements Journal.
func (j *SQLite) Accept(ctx context.Context, arrivals []Arrival) ([]Accepted, error) {
	out := make([]Accepted, len(arrivals))
	now := j.now()
	err := j.writeFirst(ctx, func(tx *txn) error {
		for i, a := range arrivals {
			acc, err := accept(tx, a, now)
			if err != nil {
				return err
			}
			out[i] = acc
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func accept(tx *txn, a Arrival, now time.Time) (Accepted, error) {
	inc := a.Incident
	var (
		id       int64
		state    string
		resolved int64
	)
	err := tx.QueryRow(`SELECT id, state, resolved_at FROM incidents WHERE fingerprint = ? AND starts_at = ?`,
		inc.Key.Fingerprint, ts(inc.Key.StartsAt)).Scan(&id, &state, &resolved)
	found := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Accepted{}, err
	}
	decide := func(id int64, reason, detail string) error {
		_, err := tx.Exec(`INSERT INTO decisions (incident_id, fingerprint, starts_at, status, reason, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id, inc.Key.Fingerprint, ts(inc.Key.StartsAt), inc.Status, reason, detail, ts(now))
		return err
	}
	firing := inc.Status != "resolved"
	switch {
	case found && (firing || resolved != 0):
		return Accepted{IncidentID: id, Outcome: Duplicate}, decide(id, DecisionDuplicate, "")
	case found:
		if _, err := tx.Exec(`UPDATE incidents SET status = 'resolved', resolved_at = ?, updated_at = ? WHERE id = ?`, ts(now), ts(now), id); err != nil {
			return Accepted{}, err
		}
		outcome := ResolvedActive
		if State(state) == Done {
			outcome = ResolvedDone
		}
		return Accepted{IncidentID: id, Outcome: outcome}, decide(id, DecisionResolved, "")
	}
	// First time this key is seen.
	var (
		st      = Queued
		result  string
		outcome = New
		reason  = inc.Decision
		resAt   int64
	)
	switch {
	case !firing:
		st, outcome, reason, resAt = Done, ResolvedFirst, DecisionResolved, ts(now)
		result = ResultResolved
		if !a.Accepted {
			result = ResultRejected
		}
	case !a.Accepted:
		st, result, outcome = Done, ResultRejected, Rejected
	}
	finished := int64(0)
	if st == Done {
		finished = ts(now)
	}
	res, err := tx.Exec(`INSERT INTO incidents (fingerprint, starts_at, status, alertname, check_id, host, customer, service,
		labels, annotations, generator_url, state, decision, detail, result, dry_run, resolved_at, received_at, updated_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		inc.Key.Fingerprint, ts(inc.Key.StartsAt), inc.Status, inc.AlertName, inc.Check, inc.Host, inc.Customer, inc.Service,
		toJSON(inc.Labels), toJSON(inc.Annotations), inc.GeneratorURL, string(st), inc.Decision, inc.Detail, result,
		boolInt(inc.DryRun), resAt, ts(now), ts(now), finished)
	if err != nil {
		return Accepted{}, err
	}
	if id, err = res.LastInsertId(); err != nil {
		return Accepted{}, err
	}
	return Accepted{IncidentID: id, Outcome: outcome}, decide(id, reason, inc.Detail)
}

const incidentColumns = `id, fingerprint, starts_at, status, alertname, check_id, host, customer, service, labels, annotations,
	generator_url, state, decision, detail, result, dry_run, resolved_at, owner, received_at, updated_at, finished_at`

type scanner interface{ Scan(...any) error }

func scanIncident(s scanner) (Incident, error) {
	var (
		inc                                  Incident
		startsAt, resolvedAt, recv, upd, fin int64
		labels, annotations, state           string
		dryRun                               int
	)
	err := s.Scan(&inc.ID, &inc.Key.Fingerprint, &startsAt, &inc.Status, &inc.AlertName, &inc.Check, &inc.Host,
		&inc.Customer, &inc.Service, &labels, &annotations, &inc.GeneratorURL, &state, &inc.Decision, &inc.Detail,
		&inc.Result, &dryRun, &resolvedAt, &inc.Owner, &recv, &upd, &fin)
	if err != nil {
		return inc, err
	}
	inc.Key.StartsAt = fromTS(startsAt)
	inc.State = State(state)
	inc.DryRun = dryRun != 0
	inc.ResolvedAt, inc.ReceivedAt, inc.UpdatedAt, inc.FinishedAt = fromTS(resolvedAt), fromTS(recv), fromTS(upd), fromTS(fin)
	_ = json.Unmarshal([]byte(labels), &inc.Labels)
	_ = json.Unmarshal([]byte(annotations), &inc.Annotations)
	return inc, nil
}

func (j *SQLite) queryIncidents(ctx context.Context, query string, args ...any) ([]Incident, error) {
	rows, err := j.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("journal query: %w", err)
	}
	defer rows.Close()
	var out []Incident
	for rows.Next() {
		inc, err := scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("journal scan: %w", err)
		}
		out = append(out, inc)
	}
	return out, rows.Err()
}

// Queued implements Journal: one pass over the queue index, one row per
// host.
func (j *SQLite) Queued(ctx context.Context, first []string, limit int) ([]Incident, error) {
	in, args := "''", []any{}
	if len(first) > 0 {
		in = strings.TrimSuffix(strings.Repeat("?,", len(first)), ",")
		for _, c := range first {
			args = append(args, c)
		}
	}
	rows, err := j.query(ctx, `SELECT host, COALESCE(min(CASE WHEN check_id IN (`+in+`) THEN id END), min(id)) AS next
		FROM incidents WHERE state = 'queued' GROUP BY host ORDER BY next LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("journal queue: %w", err)
	}
	defer rows.Close()
	var out []Incident
	for rows.Next() {
		inc := Incident{State: Queued}
		if err := rows.Scan(&inc.Host, &inc.ID); err != nil {
			return nil, fmt.Errorf("journal queue: %w", err)
		}
		out = append(out, inc)
	}
	return out, rows.Err()
}

// NextFor implements Journal: one index seek per host-level check, one for
// the rest.
func (j *SQLite) NextFor(ctx context.Context, host string, first []string) (int64, bool, error) {
	best := int64(0)
	for _, c := range first {
		var id int64
		err := j.queryRow(ctx, `SELECT id FROM incidents WHERE state = 'queued' AND host = ? AND check_id = ? ORDER BY id LIMIT 1`,
			host, c).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return 0, false, fmt.Errorf("journal queue: %w", err)
		case best == 0 || id < best:
			best = id
		}
	}
	if best != 0 {
		return best, true, nil
	}
	var id int64
	err := j.queryRow(ctx, `SELECT id FROM incidents WHERE state = 'queued' AND host = ? ORDER BY id LIMIT 1`, host).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("journal queue: %w", err)
	}
	return id, true, nil
}

// List implements Journal.
func (j *SQLite) List(ctx context.Context, f Filter) ([]Incident, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	var (
		where []string
		args  []any
	)
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, string(f.State))
	}
	if f.Host != "" {
		where, args = append(where, "host = ?"), append(args, f.Host)
	}
	if f.Before > 0 {
		where, args = append(where, "id < ?"), append(args, f.Before)
	}
	q := `SELECT ` + incidentColumns + ` FROM incidents`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC LIMIT ?`
	return j.queryIncidents(ctx, q, append(args, f.Limit)...)
}

// Claim implements Journal.
func (j *SQLite) Claim(ctx context.Context, id int64, owner string) (bool, error) {
	var ok bool
	err := j.write(ctx, func(tx *txn) error {
		res, err := tx.Exec(`UPDATE incidents SET state = 'running', owner = ?, updated_at = ? WHERE id = ? AND state = 'queued'`,
			owner, ts(j.now()), id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		ok = n == 1
		return err
	})
	return ok, err
}

// Release implements Journal.
func (j *SQLite) Release(ctx context.Context, id int64) error {
	return j.write(ctx, func(tx *txn) error {
		_, err := tx.Exec(`UPDATE incidents SET state = 'queued', owner = '', updated_at = ? WHERE id = ? AND state = 'running'`, ts(j.now()), id)
		return err
	})
}

// Recover implements Journal.
func (j *SQLite) Recover(ctx context.Context) ([]int64, error) {
	var ids []int64
	err := j.write(ctx, func(tx *txn) error {
		ids = ids[:0]
		rows, err := tx.Query(`SELECT id FROM incidents WHERE state = 'running' ORDER BY id`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		_, err = tx.Exec(`UPDATE incidents SET state = 'queued', owner = '', updated_at = ? WHERE state = 'running'`, ts(j.now()))
		return err
	})
	return ids, err
}

// Incident implements Journal.
func (j *SQLite) Incident(ctx context.Context, id int64) (*Incident, []Step, []Email, error) {
	inc, err := scanIncident(j.queryRow(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("journal: incident %d: %w", id, err)
	}
	steps, err := j.steps(ctx, id)
	if err != nil {
		return nil, nil, nil, err
	}
	emails, err := j.emails(ctx, `WHERE incident_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, nil, nil, err
	}
	return &inc, steps, emails, nil
}

func (j *SQLite) steps(ctx context.Context, id int64) ([]Step, error) {
	rows, err := j.query(ctx, `SELECT id, idx, action, host, service, budget, state, outcome, detail, started_at, finished_at
		FROM steps WHERE incident_id = ? ORDER BY idx`, id)
	if err != nil {
		return nil, fmt.Errorf("journal steps: %w", err)
	}
	defer rows.Close()
	var steps []Step
	byID := map[int64]int{}
	for rows.Next() {
		s := Step{IncidentID: id}
		var started, finished int64
		if err := rows.Scan(&s.ID, &s.Index, &s.Action, &s.Host, &s.Service, &s.Budget, &s.State, &s.Outcome, &s.Detail,
			&started, &finished); err != nil {
			return nil, fmt.Errorf("journal steps: %w", err)
		}
		s.StartedAt, s.FinishedAt = fromTS(started), fromTS(finished)
		byID[s.ID] = len(steps)
		steps = append(steps, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	crows, err := j.query(ctx, `SELECT id, step_id, name, target, line, dry_run, exit_code, output, truncated, error,
		started_at, finished_at FROM commands WHERE incident_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("journal commands: %w", err)
	}
	defer crows.Close()
	for crows.Next() {
		c := Command{IncidentID: id}
		var (
			dry, trunc        int
			exit              sql.NullInt64
			started, finished int64
		)
		if err := crows.Scan(&c.ID, &c.StepID, &c.Name, &c.Target, &c.Line, &dry, &exit, &c.Output, &trunc, &c.Err,
			&started, &finished); err != nil {
			return nil, fmt.Errorf("journal commands: %w", err)
		}
		c.DryRun, c.Truncated = dry != 0, trunc != 0
		if exit.Valid {
			code := int(exit.Int64)
			c.ExitCode = &code
		}
		c.StartedAt, c.FinishedAt = fromTS(started), fromTS(finished)
		if i, ok := byID[c.StepID]; ok {
			steps[i].Commands = append(steps[i].Commands, c)
		}
	}
	return steps, crows.Err()
}

func (j *SQLite) emails(ctx context.Context, where string, args ...any) ([]Email, error) {
	rows, err := j.query(ctx, `SELECT id, incident_id, step_idx, kind, sender, recipients, subject, body, status, attempts,
		next_attempt_at, last_error, created_at, sent_at FROM emails `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("journal emails: %w", err)
	}
	defer rows.Close()
	var out []Email
	for rows.Next() {
		var (
			e                     Email
			to                    string
			next, created, sentAt int64
		)
		if err := rows.Scan(&e.ID, &e.IncidentID, &e.StepIndex, &e.Kind, &e.From, &to, &e.Subject, &e.Body, &e.Status,
			&e.Attempts, &next, &e.LastError, &created, &sentAt); err != nil {
			return nil, fmt.Errorf("journal emails: %w", err)
		}
		_ = json.Unmarshal([]byte(to), &e.To)
		e.NextAttempt, e.CreatedAt, e.SentAt = fromTS(next), fromTS(created), fromTS(sentAt)
		out = append(out, e)
	}
	return out, rows.Err()
}

// BeginStep implements Journal.
func (j *SQLite) BeginStep(ctx context.Context, s Step) (int64, error) {
	var id int64
	if s.StartedAt.IsZero() {
		s.StartedAt = j.now()
	}
	err := j.write(ctx, func(tx *txn) error {
		return tx.QueryRow(`INSERT INTO steps (incident_id, idx, action, host, service, budget, state, detail, started_at)
			VALUES (?, ?, ?, ?, ?, ?, 'started', ?, ?)
			ON CONFLICT (incident_id, idx) DO UPDATE SET state = 'started', budget = excluded.budget,
				detail = excluded.detail, started_at = excluded.started_at, finished_at = 0
			RETURNING id`,
			s.IncidentID, s.Index, s.Action, s.Host, s.Service, s.Budget, s.Detail, ts(s.StartedAt)).Scan(&id)
	})
	return id, err
}

// EndStep implements Journal.
func (j *SQLite) EndStep(ctx context.Context, s Step) error {
	if s.FinishedAt.IsZero() {
		s.FinishedAt = j.now()
	}
	return j.write(ctx, func(tx *txn) error {
		_, err := tx.Exec(`UPDATE steps SET state = 'finished', outcome = ?, detail = ?, finished_at = ?,
			budget = CASE WHEN ? != '' THEN ? ELSE budget END WHERE id = ?`,
			s.Outcome, s.Detail, ts(s.FinishedAt), s.Budget, s.Budget, s.ID)
		return err
	})
}

// RecordStep implements Journal.
func (j *SQLite) RecordStep(ctx context.Context, s Step) (int64, error) {
	now := j.now()
	if s.StartedAt.IsZero() {
		s.StartedAt = now
	}
	if s.FinishedAt.IsZero() {
		s.FinishedAt = now
	}
	var id int64
	err := j.write(ctx, func(tx *txn) error {
		if err := tx.QueryRow(`INSERT INTO steps (incident_id, idx, action, host, service, budget, state, outcome, detail, started_at, finished_at)
			VALUES (?, ?, ?, ?, ?, ?, 'finished', ?, ?, ?, ?)
			ON CONFLICT (incident_id, idx) DO UPDATE SET state = 'finished', budget = excluded.budget, outcome = excluded.outcome,
				detail = excluded.detail, started_at = excluded.started_at, finished_at = excluded.finished_at
			RETURNING id`,
			s.IncidentID, s.Index, s.Action, s.Host, s.Service, s.Budget, s.Outcome, s.Detail, ts(s.StartedAt), ts(s.FinishedAt)).Scan(&id); err != nil {
			return err
		}
		for _, c := range s.Commands {
			var exit sql.NullInt64
			if c.ExitCode != nil {
				exit = sql.NullInt64{Int64: int64(*c.ExitCode), Valid: true}
			}
			if c.StartedAt.IsZero() {
				c.StartedAt = s.StartedAt
			}
			if c.FinishedAt.IsZero() {
				c.FinishedAt = s.FinishedAt
			}
			if _, err := tx.Exec(`INSERT INTO commands (incident_id, step_id, name, target, line, dry_run, exit_code, output, truncated,
				error, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				s.IncidentID, id, c.Name, c.Target, c.Line, boolInt(c.DryRun), exit, c.Output, boolInt(c.Truncated),
				c.Err, ts(c.StartedAt), ts(c.FinishedAt)); err != nil {
				return err
			}
		}
		return nil
	})
	return id, err
}

// BeginCommand implements Journal. A command with FinishedAt set (a
// dry-run rendering, a command that could not start) is recorded complete.
func (j *SQLite) BeginCommand(ctx context.Context, c Command) (int64, error) {
	var id int64
	if c.StartedAt.IsZero() {
		c.StartedAt = j.now()
	}
	var exit sql.NullInt64
	if c.ExitCode != nil {
		exit = sql.NullInt64{Int64: int64(*c.ExitCode), Valid: true}
	}
	err := j.write(ctx, func(tx *txn) error {
		res, err := tx.Exec(`INSERT INTO commands (incident_id, step_id, name, target, line, dry_run, exit_code, output, truncated,
			error, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.IncidentID, c.StepID, c.Name, c.Target, c.Line, boolInt(c.DryRun), exit, c.Output, boolInt(c.Truncated),
			c.Err, ts(c.StartedAt), ts(c.FinishedAt))
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// EndCommand implements Journal.
func (j *SQLite) EndCommand(ctx context.Context, c Command) error {
	if c.FinishedAt.IsZero() {
		c.FinishedAt = j.now()
	}
	var exit sql.NullInt64
	if c.ExitCode != nil {
		exit = sql.NullInt64{Int64: int64(*c.ExitCode), Valid: true}
	}
	return j.write(ctx, func(tx *txn) error {
		_, err := tx.Exec(`UPDATE commands SET exit_code = ?, output = ?, truncated = ?, error = ?, finished_at = ? WHERE id = ?`,
			exit, c.Output, boolInt(c.Truncated), c.Err, ts(c.FinishedAt), c.ID)
		return err
	})
}

// QueueEmail implements Journal.
func (j *SQLite) QueueEmail(ctx context.Context, e Email) (int64, error) {
	var id int64
	now := j.now()
	if e.Status == "" {
		e.Status = EmailPending
	}
	if e.NextAttempt.IsZero() {
		e.NextAttempt = now
	}
	err := j.write(ctx, func(tx *txn) error {
		if _, err := tx.Exec(`INSERT INTO emails (incident_id, step_idx, kind, sender, recipients, subject, body, status, next_attempt_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id, step_idx, kind) DO NOTHING`,
			e.IncidentID, e.StepIndex, e.Kind, e.From, toJSON(e.To), e.Subject, e.Body, e.Status, ts(e.NextAttempt), ts(now)); err != nil {
			return err
		}
		return tx.QueryRow(`SELECT id FROM emails WHERE incident_id = ? AND step_idx = ? AND kind = ?`, e.IncidentID, e.StepIndex, e.Kind).Scan(&id)
	})
	return id, err
}

// Finish implements Journal.
func (j *SQLite) Finish(ctx context.Context, id int64, result, detail string) error {
	now := ts(j.now())
	return j.write(ctx, func(tx *txn) error {
		res, err := tx.Exec(`UPDATE incidents SET state = 'done', result = ?, detail = CASE WHEN ? != '' THEN ? ELSE detail END,
			finished_at = ?, updated_at = ? WHERE id = ?`, result, detail, detail, now, now, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// Decide implements Journal.
func (j *SQLite) Decide(ctx context.Context, d Decision) error {
	if d.At.IsZero() {
		d.At = j.now()
	}
	return j.write(ctx, func(tx *txn) error {
		_, err := tx.Exec(`INSERT INTO decisions (incident_id, fingerprint, starts_at, status, reason, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			d.IncidentID, d.Key.Fingerprint, ts(d.Key.StartsAt), d.Status, d.Reason, d.Detail, ts(d.At))
		return err
	})
}

// Decisions lists the decisions about one incident, oldest first (for
// tests and the API).
func (j *SQLite) Decisions(ctx context.Context, incidentID int64) ([]Decision, error) {
	rows, err := j.query(ctx, `SELECT id, fingerprint, starts_at, status, reason, detail, at FROM decisions
		WHERE incident_id = ? ORDER BY id`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("journal decisions: %w", err)
	}
	defer rows.Close()
	var out []Decision
	for rows.Next() {
		d := Decision{IncidentID: incidentID}
		var startsAt, at int64
		if err := rows.Scan(&d.ID, &d.Key.Fingerprint, &startsAt, &d.Status, &d.Reason, &d.Detail, &at); err != nil {
			return nil, err
		}
		d.Key.StartsAt, d.At = fromTS(startsAt), fromTS(at)
		out = append(out, d)
	}
	return out, rows.Err()
}

// CountBudget implements Journal.
func (j *SQLite) CountBudget(ctx context.Context, q BudgetQuery) (int, error) {
	var n int
	err := j.queryRow(ctx, `SELECT count(*) FROM steps WHERE budget != '' AND budget = ? AND host = ? AND service = ? AND started_at >= ?`,
		q.Budget, q.Host, q.Service, ts(q.Since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("journal budget: %w", err)
	}
	return n, nil
}

// DueEmails implements Journal.
func (j *SQLite) DueEmails(ctx context.Context, now time.Time, limit int) ([]Email, error) {
	return j.emails(ctx, `WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`, ts(now), limit)
}

// EmailAttempt implements Journal.
func (j *SQLite) EmailAttempt(ctx context.Context, id int64, status string, next time.Time, lastErr string) error {
	now := ts(j.now())
	return j.write(ctx, func(tx *txn) error {
		_, err := tx.Exec(`UPDATE emails SET status = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?,
			sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?`,
			status, ts(next), lastErr, status, now, id)
		return err
	})
}

// PendingEmails implements Journal.
func (j *SQLite) PendingEmails(ctx context.Context) (int, error) {
	var n int
	err := j.queryRow(ctx, `SELECT count(*) FROM emails WHERE status = 'pending'`).Scan(&n)
	return n, err
}

// Results counts done incidents by result, and the others by state, for
// the benchmark's report.
func (j *SQLite) Results(ctx context.Context) (map[string]int, error) {
	rows, err := j.r.QueryContext(ctx, `SELECT CASE WHEN state = 'done' THEN result ELSE state END, count(*) FROM incidents GROUP BY 1`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// Stats counts incidents and decisions, for the benchmark's report.
func (j *SQLite) Stats(ctx context.Context) (incidents, decisions int, err error) {
	if err = j.queryRow(ctx, `SELECT count(*) FROM incidents`).Scan(&incidents); err != nil {
		return 0, 0, err
	}
	err = j.queryRow(ctx, `SELECT count(*) FROM decisions`).Scan(&decisions)
	return incidents, decisions, err
}

var _ Journal = (*SQLite)(nil)
