package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/mamori-ops/mamori/exporter/host"
	"github.com/mamori-ops/mamori/exporter/probe"
	"github.com/mamori-ops/mamori/internal/listen"
	"github.com/mamori-ops/mamori/internal/quietnet"
	"github.com/mamori-ops/mamori/inventory"
)

// shutdownTimeout bounds how long Run waits for requests in flight.
const shutdownTimeout = 5 * time.Second

// App is one mamori_exporter.
type App struct {
	opts     Options
	logger   log.Logger
	slogger  *slog.Logger
	registry *prometheus.Registry
	host     *host.Collector
	probes   *probe.Metrics
	inv      atomic.Pointer[inventory.Inventory]
	reloadMu sync.Mutex

	reloadSuccess prometheus.Gauge
	reloadTime    prometheus.Gauge
}

// New loads the inventory and builds the collectors. logger is the
// project's logger; slogger is its bridge for exporter-toolkit.
func New(o Options, logger log.Logger, slogger *slog.Logger) (*App, error) {
	a := &App{
		opts:     o,
		logger:   logger,
		slogger:  slogger,
		registry: prometheus.NewRegistry(),
		reloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mamori_exporter_config_last_reload_successful",
			Help: "1 when the last inventory load succeeded.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mamori_exporter_config_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful inventory load.",
		}),
	}
	if a.opts.Probe == nil {
		a.opts.Probe = defaultProbeConfig()
	}
	inv, target, err := a.load()
	if err != nil {
		return nil, err
	}
	a.inv.Store(inv)
	a.host = host.New(host.Options{
		ProcRoot: o.ProcRoot,
		SysRoot:  o.SysRoot,
		SpoolDir: o.SpoolDir,
		Logger:   log.With(logger, "component", "host"),
	}, target)
	a.probes = probe.NewMetrics(a.registry)
	a.reloadSuccess.Set(1)
	a.reloadTime.SetToCurrentTime()
	a.registry.MustRegister(
		a.host,
		versioncollector.NewCollector("mamori_exporter"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		a.reloadSuccess, a.reloadTime,
	)
	return a, nil
}

// Registry is the registry /metrics serves, for other roles to add to.
func (a *App) Registry() *prometheus.Registry { return a.registry }

// Inventory returns the inventory in force.
func (a *App) Inventory() *inventory.Inventory { return a.inv.Load() }

// load reads the inventory (or builds the embedded default) and finds this
// machine in it.
func (a *App) load() (*inventory.Inventory, *host.Target, error) {
	name := a.opts.HostName
	explicit := name != ""
	if !explicit {
		h, err := os.Hostname()
		if err != nil {
			return nil, nil, fmt.Errorf("hostname: %w", err)
		}
		name = h
	}
	var inv *inventory.Inventory
	if a.opts.ConfigFile == "" {
		osRelease, err := os.ReadFile(a.opts.OSRelease)
		if err != nil {
			level.Warn(a.logger).Log("msg", "cannot read os-release; assuming the rhel family", "err", err)
		}
		inv = inventory.Default(name, inventory.DetectOSFamily(osRelease), exists)
	} else {
		var err error
		if inv, err = inventory.LoadFile(a.opts.ConfigFile, inventory.WithoutSecrets()); err != nil {
			return nil, nil, err
		}
	}
	h, ok := inv.Host(name)
	switch {
	case !ok && explicit:
		return nil, nil, fmt.Errorf("host %q (--host.name) is not in %s", name, inv.File)
	case !ok:
		level.Info(a.logger).Log("msg", "this machine is not a host of the inventory: the host role reports load, swap, disk and mail queue only", "hostname", name, "inventory", inv.File)
		return inv, host.TargetFor(nil), nil
	}
	level.Info(a.logger).Log("msg", "loaded inventory", "file", inv.File, "host", h.Name, "customer", h.Customer.Name,
		"plan", h.Customer.Plan, "os_family", h.OSFamily, "services", len(h.Services()))
	return inv, host.TargetFor(h), nil
}

// Reload re-reads the inventory. On error the running one stays in force.
func (a *App) Reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if a.opts.Probe == nil {
		a.opts.Probe = defaultProbeConfig()
	}
	inv, target, err := a.load()
	if err != nil {
		a.reloadSuccess.Set(0)
		level.Error(a.logger).Log("msg", "reload failed; keeping the inventory in force", "err", err)
		return err
	}
	a.inv.Store(inv)
	a.host.SetTarget(target)
	a.reloadSuccess.Set(1)
	a.reloadTime.SetToCurrentTime()
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Handler returns every endpoint of the exporter.
func (a *App) Handler() (http.Handler, error) {
	mux := http.NewServeMux()
	mux.Handle(a.opts.MetricsPath, promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{
		ErrorLog:            stdLogger{a.logger},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 10,
		Registry:            a.registry,
	}))
	probeLogger := log.With(a.logger, "component", "probe")
	mux.Handle("/probe", probe.NewHandler(a.opts.Probe, a.Inventory, a.probes, probeLogger))
	mux.Handle("/sd", probe.NewSDHandler(a.Inventory, probeLogger))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "Healthy")
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "Ready")
	})
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "use POST or PUT to reload", http.StatusMethodNotAllowed)
			return
		}
		if err := a.Reload(); err != nil {
			http.Error(w, "reload failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "Reloaded")
	})
	if a.opts.MetricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "mamori_exporter",
			Description: "The monitoring runbook as Prometheus metrics: the host role and the probe role.",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: a.opts.MetricsPath, Text: "Metrics", Description: "host role: processes, load, swap, disk, mail queue"},
				{Address: "/sd", Text: "Service discovery", Description: "the inventory's hosts, for Prometheus http_sd_configs"},
				{Address: "/-/healthy", Text: "Health"},
			},
			Form: web.LandingForm{
				Action: "/probe",
				Inputs: []web.LandingFormInput{
					{Label: "Target", Type: "text", Name: "target", Placeholder: "host name from the inventory"},
					{Label: "Check", Type: "text", Name: "check", Placeholder: "all outside checks"},
					{Label: "Debug", Type: "checkbox", Name: "debug", Value: "true"},
				},
			},
		})
		if err != nil {
			return nil, err
		}
		mux.Handle("/", landing)
	}
	return mux, nil
}

// Run serves on the configured addresses until ctx ends, reloading the
// inventory whenever reload delivers.
func (a *App) Run(ctx context.Context, reload <-chan os.Signal) error {
	listeners, err := listen.Listeners(a.opts.Web)
	if err != nil {
		return err
	}
	return a.Serve(ctx, listeners, reload)
}

// Serve serves on the given listeners until ctx ends; tests pass their own.
func (a *App) Serve(ctx context.Context, listeners []net.Listener, reload <-chan os.Signal) error {
	handler, err := a.Handler()
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	quiet := make([]net.Listener, len(listeners))
	for i, l := range listeners {
		quiet[i] = quietnet.Listener(l)
	}
	errc := make(chan error, 1)
	go func() { errc <- web.ServeMultiple(quiet, srv, a.opts.Web, a.slogger) }()
	for {
		select {
		case <-reload:
			_ = a.Reload()
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			return nil
		}
	}
}

// stdLogger adapts the go-kit logger to promhttp's Println logger.
type stdLogger struct{ l log.Logger }

func (s stdLogger) Println(v ...any) { level.Error(s.l).Log("msg", fmt.Sprint(v...)) }
