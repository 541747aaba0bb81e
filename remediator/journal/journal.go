// Package journal is the remediator's durable record: every incident (one
// alert occurrence, keyed by fingerprint and startsAt), every ladder step,
// every command with its exit code and bounded output, every email and every
// intake decision. It is also the work queue: an incident is queued, claimed
// and finished here, so a remediator killed mid-ladder finds on restart what
// was in flight and where each ladder stood.
//
// Journal is the contract; SQLite (modernc.org/sqlite, pure Go) is the
// embedded implementation. A PostgreSQL implementation satisfies the same
// interface: Claim is the only operation that must be atomic across replicas
// (UPDATE ... WHERE state = 'queued' RETURNING), the rest is per incident.
package journal

import (
	"context"
	"errors"
	"time"
)

// State is where an incident stands in the work queue.
type State string

const (
	// Queued incidents wait for a worker (and for their host to be free).
	Queued State = "queued"
	// Running incidents are claimed by an owner whose ladder runs them.
	Running State = "running"
	// Done incidents are finished: their result is final.
	Done State = "done"
)

// Result values the journal itself sets; the remediator sets the others.
const (
	// ResultRejected is an alert the guard refused: nothing ran.
	ResultRejected = "rejected"
	// ResultResolved is an incident whose alert resolved.
	ResultResolved = "resolved"
)

// Step states.
const (
	StepStarted  = "started"
	StepFinished = "finished"
)

// Email statuses.
const (
	EmailPending = "pending"
	EmailSent    = "sent"
	// EmailFailed is an email given up on after its retries.
	EmailFailed = "failed"
	// EmailDryRun is an email rendered in dry-run mode: never sent.
	EmailDryRun = "dry_run"
)

// Key identifies an incident: Alertmanager's fingerprint of the alert's
// labels, and when this occurrence started. Repeats, retries and both peers
// of an HA pair send the same key.
type Key struct {
	Fingerprint string
	StartsAt    time.Time
}

// Incident is one alert occurrence and what became of it.
type Incident struct {
	ID  int64
	Key Key
	// Status is the alert's last status seen: firing or resolved.
	Status       string
	AlertName    string
	Check        string
	Host         string
	Customer     string
	Service      string
	Labels       map[string]string
	Annotations  map[string]string
	GeneratorURL string

	State State
	// Decision is the intake's typed reason (accepted, unknown_host, ...);
	// Detail explains it to a person.
	Decision string
	Detail   string
	// Result is set when the incident is done.
	Result string
	DryRun bool
	// ResolvedAt is when a resolved notification arrived; zero while firing.
	ResolvedAt time.Time
	// Owner is the remediator instance that claimed the incident.
	Owner      string
	ReceivedAt time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time
}

// Resolved reports whether a resolved notification arrived.
func (i *Incident) Resolved() bool { return !i.ResolvedAt.IsZero() }

// Step is one rung of a ladder as it ran.
type Step struct {
	ID         int64
	IncidentID int64
	// Index is the step's position in the ladder; together with IncidentID
	// it is unique, so a resumed ladder finds its place.
	Index  int
	Action string
	Host   string
	// Service is what the step acted on (the offender for restart_over_load).
	Service string
	// Budget is the budget the step spent (restart or reboot), set when the
	// action was attempted; empty otherwise.
	Budget     string
	State      string
	Outcome    string
	Detail     string
	StartedAt  time.Time
	FinishedAt time.Time
	Commands   []Command
}

// Finished reports whether the step ran to its end.
func (s *Step) Finished() bool { return s.State == StepFinished }

// Command is one command of a step, exactly as it was (or, in dry-run,
// would have been) run.
type Command struct {
	ID         int64
	IncidentID int64
	StepID     int64
	// Name is the runbook template's name (restart, is_active, ...), or
	// console / power_cycle for out-of-band commands.
	Name string
	// Target is "ssh" (run on the host) or "local" (out-of-band, run where
	// the remediator runs).
	Target string
	// Line is the command as sent: the shell line for SSH, the quoted argv
	// for local commands. It never holds a secret (secrets go on stdin).
	Line   string
	DryRun bool
	// ExitCode is nil while running, when unknown (killed, dry-run) or when
	// the command could not start.
	ExitCode   *int
	Output     string
	Truncated  bool
	Err        string
	StartedAt  time.Time
	FinishedAt time.Time
}

// Email is one message to a customer or to the operators, kept until it is
// handed to the SMTP server (the outbox).
type Email struct {
	ID         int64
	IncidentID int64
	// StepIndex and Kind make an email unique: a resumed ladder that queues
	// it again changes nothing.
	StepIndex   int
	Kind        string
	From        string
	To          []string
	Subject     string
	Body        string
	Status      string
	Attempts    int
	NextAttempt time.Time
	LastError   string
	CreatedAt   time.Time
	SentAt      time.Time
}

// Decision is one intake decision about one alert.
type Decision struct {
	ID         int64
	IncidentID int64
	Key        Key
	Status     string
	Reason     string
	Detail     string
	At         time.Time
}

// Decision reasons the journal itself gives; the guard's reasons come in
// Incident.Decision.
const (
	DecisionDuplicate = "duplicate"
	DecisionResolved  = "resolved"
)

// Arrival is one alert of a webhook, matched and guarded, to be recorded.
// Incident.Decision is the guard's verdict and becomes the decision's
// reason for a new incident; Accepted queues it, otherwise it is recorded
// as rejected and done.
type Arrival struct {
	Incident Incident
	// Accepted is true when the alert may run a ladder.
	Accepted bool
}

// Outcome says what Accept did with one arrival.
type Outcome int

const (
	// New: a firing alert seen for the first time, queued.
	New Outcome = iota
	// Rejected: a firing alert seen for the first time, refused by the guard.
	Rejected
	// Duplicate: an incident with this key exists already.
	Duplicate
	// ResolvedActive: a resolved notification for an incident not yet done:
	// its ladder stops at the next step.
	ResolvedActive
	// ResolvedDone: a resolved notification for an incident already done,
	// or one already marked resolved.
	ResolvedDone
	// ResolvedFirst: a resolved notification for an alert never seen firing;
	// recorded as done, so a late firing copy is a duplicate.
	ResolvedFirst
)

// Accepted is Accept's answer for one arrival.
type Accepted struct {
	IncidentID int64
	Outcome    Outcome
}

// Filter selects incidents for the status page and the API.
type Filter struct {
	State State
	Host  string
	Limit int
	// Before pages back: only incidents with a smaller ID.
	Before int64
}

// BudgetQuery counts the actions a budget allows.
type BudgetQuery struct {
	Budget  string
	Host    string
	Service string
	Since   time.Time
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("journal closed")

// ErrNotFound is returned for an unknown incident.
var ErrNotFound = errors.New("incident not found")

// Journal records the remediator's work. Every method is safe for
// concurrent use; a write has reached stable storage when it returns nil.
type Journal interface {
	// Accept records the alerts of one webhook in one transaction:
	// deduplicated by key, rejected ones done at once, resolved
	// notifications applied to their incident, a decision for each.
	Accept(ctx context.Context, arrivals []Arrival) ([]Accepted, error)
	// Queued returns the next queued incident of each host with queued
	// work, oldest first: an incident of a check listed in first (a
	// host-level check) before the host's others. Only ID and Host are set:
	// what a scheduler needs; Incident reads the rest.
	Queued(ctx context.Context, first []string, limit int) ([]Incident, error)
	// NextFor is Queued for one host: its next incident, if any.
	NextFor(ctx context.Context, host string, first []string) (int64, bool, error)
	// Claim moves a queued incident to running for owner; false when
	// another owner took it first or it is not queued any more.
	Claim(ctx context.Context, id int64, owner string) (bool, error)
	// Release puts a running incident back in the queue.
	Release(ctx context.Context, id int64) error
	// Recover puts every running incident back in the queue and returns
	// their IDs: at start-up, what was in flight when the last process died.
	Recover(ctx context.Context) ([]int64, error)
	// Incident returns an incident with its steps (and their commands) and
	// emails.
	Incident(ctx context.Context, id int64) (*Incident, []Step, []Email, error)
	// List returns incidents, newest first.
	List(ctx context.Context, f Filter) ([]Incident, error)
	// BeginStep records that a step starts (or restarts, on resume).
	BeginStep(ctx context.Context, s Step) (int64, error)
	// EndStep records a step's outcome.
	EndStep(ctx context.Context, s Step) error
	// RecordStep records a finished step with its commands in one write
	// (a dry-run step: nothing ran, so nothing needed recording first).
	RecordStep(ctx context.Context, s Step) (int64, error)
	// BeginCommand records a command before it runs; one with FinishedAt
	// set is recorded complete.
	BeginCommand(ctx context.Context, c Command) (int64, error)
	// EndCommand records a command's exit code and output.
	EndCommand(ctx context.Context, c Command) error
	// QueueEmail puts an email in the outbox, once per (incident, step,
	// kind); it returns the email's ID either way.
	QueueEmail(ctx context.Context, e Email) (int64, error)
	// Finish records an incident's result.
	Finish(ctx context.Context, id int64, result, detail string) error
	// Decide records a decision taken outside intake (over budget, host key).
	Decide(ctx context.Context, d Decision) error
	// CountBudget counts the steps that spent a budget since a time.
	CountBudget(ctx context.Context, q BudgetQuery) (int, error)
	// DueEmails lists pending emails whose next attempt is due.
	DueEmails(ctx context.Context, now time.Time, limit int) ([]Email, error)
	// EmailAttempt records one delivery attempt: status sent, pending (with
	// the next attempt) or failed.
	EmailAttempt(ctx context.Context, id int64, status string, next time.Time, lastErr string) error
	// PendingEmails counts the outbox.
	PendingEmails(ctx context.Context) (int, error)
	// Close waits for writes in flight and closes the store.
	Close() error
}
