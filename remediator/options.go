package remediator

import (
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/mamori-ops/mamori/exporter/probe"
	"github.com/mamori-ops/mamori/remediator/journal"
)

// DefaultPort is the remediator's port, as registered for mamori.
const DefaultPort = ":9797"

// Options are the remediator's settings: one field per flag, and what a
// test or main wires in.
type Options struct {
	// ConfigFile is the remediator's configuration (YAML).
	ConfigFile string
	// DryRun forces dry-run mode whatever the file says.
	DryRun bool
	Web    *web.FlagConfig

	// Probe configures the re-probes: the exporter's --probe.* flags.
	Probe *probe.Config
	// Reprober re-probes checks from outside; nil means the exporter's
	// probers configured by Probe, and without Probe, SSH checks only.
	Reprober Reprober
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Tick bounds how long the scheduler and the outbox sleep between
	// rounds when nothing wakes them; 0 is one second.
	Tick time.Duration
	// AgentSocket is $SSH_AUTH_SOCK, for hosts with ssh.agent.
	AgentSocket string
	// Owner names this instance in the journal; empty is host:pid.
	Owner string
	// Journal, when set, is used instead of the SQLite file of
	// journal.path (another implementation, a test's).
	Journal journal.Journal
}

// AddFlags registers the remediator's flags on app.
func AddFlags(app *kingpin.Application) *Options {
	o := &Options{}
	app.Flag("config.file", "Remediator configuration file (YAML): webhook auth, SMTP, operators, budgets, journal, and the inventory's path.").
		Required().StringVar(&o.ConfigFile)
	app.Flag("dry-run", "Render and journal every command and email without running or sending any, whatever the configuration says.").
		Default("false").BoolVar(&o.DryRun)
	o.Web = kingpinflag.AddFlags(app, DefaultPort)
	// The re-probe is the exporter's own prober, with its flags: a check is
	// verified by the same dialogue that found it failing.
	o.Probe = probe.AddFlags(app)
	return o
}
