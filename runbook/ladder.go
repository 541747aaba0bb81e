package runbook

import "strings"

// Action is one kind of ladder step. The remediator executes them; the
// semantics below are the contract between the registry and its engine.
type Action string

const (
	// ActCheck looks at the service (unit active, process present, and a
	// re-probe for outside checks). Healthy ends the ladder: the customer is
	// told what was found.
	ActCheck Action = "check"
	// ActSSHConnect tries an SSH login. Success ends the ladder as Check does.
	ActSSHConnect Action = "ssh_connect"
	// ActRestart restarts the service's unit over SSH (systemctl, or service on
	// sysv hosts). It spends the host+service restart budget.
	ActRestart Action = "restart"
	// ActConsoleRestart restarts the unit through the host's out-of-band
	// console command, for when SSH itself is down.
	ActConsoleRestart Action = "console_restart"
	// ActPowerCycle reboots the host through its out-of-band power command. It
	// spends the host's reboot budget.
	ActPowerCycle Action = "power_cycle"
	// ActVerify repeats Check with retries. Healthy ends the ladder as recovered.
	ActVerify Action = "verify"
	// ActCollect runs the step's diagnostic commands and keeps their output for
	// the emails.
	ActCollect Action = "collect"
	// ActRestartOverLoad restarts the service the inventory names as the
	// offender, only above the check's Restart threshold.
	ActRestartOverLoad Action = "restart_over_load"
	// ActScopeURL decides whether only the configured URL fails (escalate, no
	// restart) or the whole site does (go on to restart httpd).
	ActScopeURL Action = "scope_url"
	// ActAnalyseQueue finds the senders and SASL users behind the mail queue.
	ActAnalyseQueue Action = "analyse_queue"
	// ActResetPassword resets the dominating account's password to the value
	// the customer agreed, only where the inventory records that agreement.
	ActResetPassword Action = "reset_password"
	// ActEscalate hands over to a person ("investigate"): an email to the
	// operators with the evidence collected so far.
	ActEscalate Action = "escalate"
	// ActNotify emails the customer what was seen, done and the outcome. Every
	// ladder ends with it, whatever happened before.
	ActNotify Action = "notify"
)

// Actions lists every action, in a fixed order, for validation and docs.
func Actions() []Action {
	return []Action{ActCheck, ActSSHConnect, ActRestart, ActConsoleRestart, ActPowerCycle, ActVerify,
		ActCollect, ActRestartOverLoad, ActScopeURL, ActAnalyseQueue, ActResetPassword, ActEscalate, ActNotify}
}

// Valid reports whether a is a known action.
func (a Action) Valid() bool {
	for _, b := range Actions() {
		if a == b {
			return true
		}
	}
	return false
}

// Step is one rung of a ladder.
type Step struct {
	Action Action
	// Collect names diagnostic commands of the Commands table, for Collect.
	Collect []string
}

// Ladder is the runbook's procedure for a failing check, as steps.
type Ladder struct {
	Steps []Step
}

// Summary renders the ladder for humans: "check → restart → verify → ...".
func (l Ladder) Summary() string {
	if len(l.Steps) == 0 {
		return "alert only"
	}
	parts := make([]string, 0, len(l.Steps))
	for _, s := range l.Steps {
		p := string(s.Action)
		if len(s.Collect) > 0 {
			p += " (" + strings.Join(s.Collect, ", ") + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " → ")
}

// steps builds a ladder from actions; a helper so the table in checks.go
// reads like the runbook.
func steps(actions ...any) Ladder {
	var l Ladder
	for _, a := range actions {
		switch v := a.(type) {
		case Action:
			l.Steps = append(l.Steps, Step{Action: v})
		case Step:
			l.Steps = append(l.Steps, v)
		default:
			panic("runbook: steps takes Action or Step")
		}
	}
	return l
}

// collect is a Collect step running the named diagnostic commands.
func collect(names ...string) Step { return Step{Action: ActCollect, Collect: names} }

// serviceLadder is the runbook's common procedure for a daemon: check it,
// restart it, verify, investigate if that did not help, tell the customer.
func serviceLadder() Ladder {
	return steps(ActCheck, ActRestart, ActVerify, collect("status", "journal"), ActEscalate, ActNotify)
}
