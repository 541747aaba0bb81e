// Package exporter is mamori_exporter as an embeddable app: flags become
// Options, New loads the inventory, Run serves until its context ends.
package exporter

import (
	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/mamori-ops/mamori/exporter/probe"
)

// DefaultPort is the exporter's port, as registered for mamori.
const DefaultPort = ":9796"

// Options are the exporter's settings, one field per flag.
type Options struct {
	// ConfigFile is the inventory; empty runs on the embedded default (this
	// machine, standard plan).
	ConfigFile string
	// HostName names this machine in the inventory; empty means the
	// machine's hostname, and then a host missing from the inventory is not
	// an error (the central prober is not a managed host).
	HostName    string
	MetricsPath string
	ProcRoot    string
	SysRoot     string
	SpoolDir    string
	OSRelease   string
	Web         *web.FlagConfig
	// Probe configures the probe role; nil means its flags' defaults.
	Probe *probe.Config
}

// AddFlags registers the exporter's flags on app.
func AddFlags(app *kingpin.Application) *Options {
	o := &Options{}
	app.Flag("config.file", "Inventory file (YAML). Empty: the embedded default, this machine on the standard plan.").
		Default("").StringVar(&o.ConfigFile)
	app.Flag("host.name", "This machine's name in the inventory. Default: the hostname.").
		Default("").StringVar(&o.HostName)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&o.MetricsPath)
	app.Flag("path.procfs", "procfs mountpoint.").Default("/proc").StringVar(&o.ProcRoot)
	app.Flag("path.sysfs", "sysfs mountpoint.").Default("/sys").StringVar(&o.SysRoot)
	app.Flag("path.postfix-spool", "Postfix queue_directory.").Default("/var/spool/postfix").StringVar(&o.SpoolDir)
	app.Flag("path.os-release", "os-release file, to detect the OS family for the embedded default.").
		Default("/etc/os-release").StringVar(&o.OSRelease)
	o.Web = kingpinflag.AddFlags(app, DefaultPort)
	o.Probe = probe.AddFlags(app)
	return o
}

// defaultProbeConfig is the probe role's configuration with every flag at
// its default, for embedders that set no flags.
func defaultProbeConfig() *probe.Config {
	app := kingpin.New("mamori_exporter", "")
	c := probe.AddFlags(app)
	if _, err := app.Parse(nil); err != nil {
		panic(err) // the defaults are constants of the probe package
	}
	return c
}
