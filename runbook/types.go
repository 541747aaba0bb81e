// Package runbook holds the monitoring runbook as data, once. The exporter's
// defaults, the alert rules, the dashboards, the remediator's ladders and the
// README's check table are all derived from it; nothing lists the checks by
// hand a second time.
package runbook

import "time"

// Kind says where a check runs.
type Kind string

const (
	// Probe checks run "from outside", from the central prober.
	Probe Kind = "probe"
	// Host checks run on the server itself, in the exporter's host role.
	Host Kind = "host"
)

// Plan is a customer's service plan. Plus includes everything of Standard.
type Plan string

const (
	Standard Plan = "standard"
	Plus     Plan = "plus"
)

// Includes reports whether a customer on plan p gets checks of plan q.
func (p Plan) Includes(q Plan) bool {
	return p == q || (p == Plus && q == Standard)
}

// Valid reports whether p is a known plan.
func (p Plan) Valid() bool { return p == Standard || p == Plus }

// OSFamily names a family of server distributions whose unit names agree.
type OSFamily string

const (
	RHEL   OSFamily = "rhel"
	Debian OSFamily = "debian"
)

// OSFamilies lists the known families, in a fixed order.
func OSFamilies() []OSFamily { return []OSFamily{RHEL, Debian} }

// Valid reports whether f is a known family.
func (f OSFamily) Valid() bool { return f == RHEL || f == Debian }

// Protocol is the dialogue a probe check speaks.
type Protocol string

const (
	ICMP  Protocol = "icmp"
	HTTP  Protocol = "http"
	SMTP  Protocol = "smtp"
	IMAP  Protocol = "imap"
	POP3  Protocol = "pop3"
	SSH   Protocol = "ssh"
	FTP   Protocol = "ftp"
	MySQL Protocol = "mysql"
)

// Level names one threshold of a check; it is the `level` label of
// mamori_threshold.
type Level string

const (
	// LevelAlert is the level above which the check's alert fires.
	LevelAlert Level = "alert"
	// LevelRestart is the higher load level above which the remediator may
	// restart the offending service ("very high" in the runbook). It is off
	// unless the inventory sets it.
	LevelRestart Level = "restart"
)

// Threshold is a default limit of a host check.
type Threshold struct {
	Level Level
	Value float64
	// Off means the threshold is not in force unless the inventory sets it.
	Off bool
}

// Service is a daemon the runbook concerns, under its canonical name.
type Service struct {
	// Name is the runbook's canonical name, the `service` label everywhere.
	Name string
	// Processes are the names a live process of the service may carry, on
	// any OS family (comm, or the base name of argv[0] or of the executable).
	Processes []Process
	// Units is the systemd unit (or sysv script) per OS family.
	Units map[OSFamily]string
	// Marker is a path that exists only where the product is installed; the
	// embedded default leaves a check out when its service's marker is
	// missing. Empty for services every managed server is expected to run.
	Marker string
	// Summary says what the daemon is, for docs.
	Summary string
}

// Unit returns the service's unit name on the given OS family.
func (s Service) Unit(f OSFamily) string { return s.Units[f] }

// Check is one line of the runbook.
type Check struct {
	// ID is the registry id, the `check` label everywhere.
	ID    string
	Title string
	Plan  Plan
	Kind  Kind
	// Protocol and Port are the probe's dialogue and default port; TLS means
	// the dialogue starts with a TLS handshake (implicit TLS).
	Protocol Protocol
	Port     int
	TLS      bool
	// Service is the canonical service the check concerns, if any.
	Service string
	// Watches says what the check watches, as the runbook words it.
	Watches string
	// Measures says which metric the check reads, for docs.
	Measures string
	// Thresholds are the defaults of a host check that compares a value.
	Thresholds []Threshold
	// For is how long the condition must hold before the alert fires.
	For time.Duration
	// Severity is the alert's severity label.
	Severity string
	// Ladder is what the remediator does when the check fails.
	Ladder Ladder
}

// Threshold returns the check's default threshold at level l.
func (c Check) Threshold(l Level) (Threshold, bool) {
	for _, t := range c.Thresholds {
		if t.Level == l {
			return t, true
		}
	}
	return Threshold{}, false
}

// Remediates reports whether the remediator acts on this check's alert.
func (c Check) Remediates() bool { return len(c.Ladder.Steps) > 0 }
