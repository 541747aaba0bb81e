// Package remediator is mamori_remediator as an embeddable app: it takes
// Alertmanager's webhook and does what the monitoring runbook tells an
// operator to do, safely, and tells the customer.
//
// # Pipeline
//
// Each stage is a small file, and one alert moves through them as an
// alertState (incident.go):
//
//	intake.go  POST /api/v1/alerts: auth (bearer or basic), body limit, webhook v4,
//	           each alert by its own status
//	match.go   check and host labels → the registry's check and the inventory's host
//	guard.go   label values are names that agree with the inventory, remediate="true";
//	           nothing of a label ever reaches a command
//	dedup.go   journal.Accept keys incidents by (fingerprint, startsAt) in one
//	           transaction; 2xx once it is durable, 5xx only when it is not
//	limit.go   the scheduler: a bounded pool, one ladder per host, a host's ping or
//	           ssh ladder first; budgets are checked by the actions (act.go)
//	ladder.go  the runbook's ladders, step by step, each step journaled before it acts
//	record.go  steps and commands into the journal; the SSH connection of the ladder
//	notify.go  emails rendered into the journal's outbox and delivered with backoff
//
// Every decision is a typed Reason (duplicate, unknown_host, unknown_check,
// rejected_label, not_remediable, over_budget, host_key_changed, resolved,
// ...), journaled and counted in mamori_remediator_decisions_total.
//
// # Ladders
//
// The registry's ladders (runbook/ladder.go) run as the registry describes
// them: check (unit active, live process, and a re-probe from outside with
// the exporter's prober) ends the ladder when healthy; restart is
// `systemctl restart UNIT` (or `service UNIT restart`) with its streams on a
// temporary file so that no daemon holds the session; verify looks again
// with retries; console_restart and power_cycle run the inventory's
// out-of-band argv here (the console gets the remote argv appended);
// collect runs top, free, df, status, journal or postqueue; analyse_queue
// reads postqueue -j and postcat -e of a sample for the top senders and
// SASL users; reset_password runs the agreed command with the agreed
// password on standard input; escalate emails the operators the evidence;
// notify emails the customer (Japanese by default) what was seen, done and
// the outcome, unless the service was found healthy because a sibling
// incident restarted it since this alert began (one fault, one email). A
// changed host key, a spent budget or an unreachable host
// jumps to the escalation; a customer's own ladder without one gets a
// conditional escalation that only such a jump reaches.
//
// # Crash safety
//
// A step is journaled as started before it acts. On start, every incident
// left running goes back to the queue, and its ladder replays the recorded
// outcomes to find its place: a check or verify that was cut short runs
// again; a restart, reboot or password reset that was cut short is not
// repeated (outcome interrupted) and the verify after it decides. Emails
// are unique per incident, step and kind, so a step run again queues
// nothing twice.
package remediator
