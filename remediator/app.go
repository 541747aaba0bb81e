package remediator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/mamori-ops/mamori/exporter/probe"
	"github.com/mamori-ops/mamori/internal/generate/contract"
	"github.com/mamori-ops/mamori/internal/listen"
	"github.com/mamori-ops/mamori/inventory"
	"github.com/mamori-ops/mamori/remediator/journal"
	"github.com/mamori-ops/mamori/remediator/mail"
)

// WebhookPath is where Alertmanager posts, as the contract fixes it.
const WebhookPath = contract.WebhookPath

// httpShutdownTimeout bounds how long Serve waits for requests in flight.
const httpShutdownTimeout = 5 * time.Second

// runtime is what a configuration load produces; a reload swaps it whole,
// and a ladder keeps the one it started with.
type runtime struct {
	cfg    *Config
	inv    *inventory.Inventory
	tmpl   *Templates
	sender mail.Sender
	auth   authenticator
}

// App is one mamori_remediator.
type App struct {
	opts     Options
	logger   log.Logger
	slogger  *slog.Logger
	registry *prometheus.Registry
	metrics  *metrics
	journal  journal.Journal
	engine   *engine
	sched    *scheduler
	mailer   *mailer
	now      func() time.Time
	pages    pages

	rt        atomic.Pointer[runtime]
	reloadMu  sync.Mutex
	ready     atomic.Bool
	closeOnce sync.Once
}

// New loads the configuration and the inventory, opens the journal and
// puts back in the queue whatever was in flight when the last process
// stopped. logger is the project's logger; slogger its bridge for
// exporter-toolkit.
func New(o Options, logger log.Logger, slogger *slog.Logger) (*App, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	a := &App{opts: o, logger: logger, slogger: slogger, registry: prometheus.NewRegistry(), now: now, pages: newPages()}
	rc, err := a.load()
	if err != nil {
		return nil, err
	}
	j := o.Journal
	if j == nil {
		if j, err = journal.OpenSQLite(rc.cfg.Journal.Path, now); err != nil {
			return nil, err
		}
	}
	a.journal = j
	a.metrics = newMetrics(a.registry, j)
	a.registry.MustRegister(
		versioncollector.NewCollector("mamori_remediator"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	a.installRuntime(rc)

	owner := o.Owner
	if owner == "" {
		h, _ := os.Hostname()
		owner = h + ":" + strconv.Itoa(os.Getpid())
	}
	reprober := o.Reprober
	if reprober == nil && o.Probe != nil {
		r, err := probe.NewRunner(o.Probe, nil, log.With(logger, "component", "reprobe"))
		if err != nil {
			j.Close()
			return nil, fmt.Errorf("probe flags: %w", err)
		}
		reprober = NewProbeReprober(r)
	}
	a.mailer = newMailer(j, a.metrics, log.With(logger, "component", "mailer"), now, a.current)
	a.engine = &engine{journal: j, metrics: a.metrics, logger: log.With(logger, "component", "ladder"),
		reprober: reprober, now: now, wakeMailer: a.mailer.Wake, agentSocket: o.AgentSocket}
	a.sched = newScheduler(j, a.engine, a.metrics, log.With(logger, "component", "scheduler"), owner, a.current)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids, err := j.Recover(ctx)
	if err != nil {
		j.Close()
		return nil, fmt.Errorf("recover the journal: %w", err)
	}
	if len(ids) > 0 {
		level.Warn(logger).Log("msg", "incidents were in flight when the remediator stopped: they resume", "count", len(ids))
	}
	level.Info(logger).Log("msg", "loaded", "config", rc.cfg.File, "inventory", rc.inv.File, "hosts", len(rc.inv.Hosts()),
		"journal", rc.cfg.Journal.Path, "dry_run", rc.cfg.DryRun, "workers", rc.cfg.Workers)
	return a, nil
}

// load reads the configuration, the inventory and the templates.
func (a *App) load() (*runtime, error) {
	cfg, err := LoadConfig(a.opts.ConfigFile)
	if err != nil {
		return nil, err
	}
	if a.opts.DryRun {
		cfg.DryRun = true
	}
	inv, err := inventory.LoadFile(cfg.InventoryFile)
	if err != nil {
		return nil, err
	}
	tmpl, err := LoadTemplates(cfg.Mail.Templates)
	if err != nil {
		return nil, err
	}
	m := cfg.Mail
	sender, err := mail.New(mail.Config{Smarthost: m.Smarthost, TLS: m.TLS, ServerName: m.ServerName, CAFile: m.CAFile,
		InsecureSkipVerify: m.InsecureSkipVerify, Username: m.Username, Password: m.Password.Reveal(), Hello: m.Hello,
		Timeout: time.Duration(m.Timeout)})
	if err != nil {
		return nil, fmt.Errorf("%s: mail: %w", cfg.File, err)
	}
	return &runtime{cfg: cfg, inv: inv, tmpl: tmpl, sender: sender, auth: newAuthenticator(cfg.Webhook)}, nil
}

func (a *App) installRuntime(rc *runtime) {
	a.rt.Store(rc)
	a.metrics.inventoryLoaded(rc.inv)
	a.metrics.reloadSuccess.Set(1)
	a.metrics.reloadTime.Set(float64(a.now().UnixNano()) / 1e9)
}

func (a *App) current() *runtime { return a.rt.Load() }

// Reload re-reads the configuration, the inventory and the templates. On
// error the running ones stay in force. Ladders in progress finish with
// what they started with.
func (a *App) Reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	rc, err := a.load()
	if err == nil && rc.cfg.Journal.Path != a.current().cfg.Journal.Path {
		err = fmt.Errorf("%s: journal.path changed: restart the remediator to move the journal", rc.cfg.File)
	}
	if err != nil {
		a.metrics.reloadSuccess.Set(0)
		level.Error(a.logger).Log("msg", "reload failed; keeping the configuration in force", "err", err)
		return err
	}
	a.installRuntime(rc)
	level.Info(a.logger).Log("msg", "reloaded", "config", rc.cfg.File, "hosts", len(rc.inv.Hosts()), "dry_run", rc.cfg.DryRun)
	a.sched.Wake()
	return nil
}

// Registry is what /metrics serves.
func (a *App) Registry() *prometheus.Registry { return a.registry }

// Journal is the app's journal, for tests and tools.
func (a *App) Journal() journal.Journal { return a.journal }

// Handler returns every endpoint.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+WebhookPath, a.serveWebhook)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{
		ErrorLog: stdLogger{a.logger}, ErrorHandling: promhttp.ContinueOnError, MaxRequestsInFlight: 10, Registry: a.registry,
	}))
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "Healthy")
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready.Load() {
			http.Error(w, "Not ready", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "Ready")
	})
	reload := func(w http.ResponseWriter, _ *http.Request) {
		if err := a.Reload(); err != nil {
			http.Error(w, "reload failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "Reloaded")
	}
	mux.HandleFunc("POST /-/reload", reload)
	mux.HandleFunc("PUT /-/reload", reload)
	mux.HandleFunc("GET /api/v1/incidents", a.serveIncidentsJSON)
	mux.HandleFunc("GET /api/v1/incidents/{id}", a.serveIncidentJSON)
	mux.HandleFunc("GET /incidents/{id}", a.serveIncidentHTML)
	mux.HandleFunc("GET /{$}", a.serveStatusHTML)
	// Profiles, as Prometheus and Alertmanager serve them.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// Run serves on the configured addresses until ctx ends, reloading
// whenever reload delivers.
func (a *App) Run(ctx context.Context, reload <-chan os.Signal) error {
	listeners, err := listen.Listeners(a.opts.Web)
	if err != nil {
		a.Close()
		return err
	}
	return a.Serve(ctx, listeners, reload)
}

// Serve serves on the given listeners, runs the scheduler and the outbox,
// and when ctx ends stops taking webhooks, lets running ladders finish
// within ladder.shutdown_grace (the rest resume on the next start), and
// closes the journal.
func (a *App) Serve(ctx context.Context, listeners []net.Listener, reload <-chan os.Signal) error {
	defer a.Close()
	tick := a.opts.Tick
	if tick <= 0 {
		tick = time.Second
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- web.ServeMultiple(listeners, srv, a.opts.Web, a.slogger) }()

	dispatchCtx, stopDispatch := context.WithCancel(context.Background())
	ladderCtx, stopLadders := context.WithCancel(context.Background())
	mailCtx, stopMail := context.WithCancel(context.Background())
	defer stopDispatch()
	defer stopLadders()
	defer stopMail()
	var bg sync.WaitGroup
	bg.Go(func() { a.sched.run(dispatchCtx, ladderCtx, tick) })
	bg.Go(func() { a.mailer.run(mailCtx, tick) })
	a.ready.Store(true)

	var serveErr error
loop:
	for {
		select {
		case <-reload:
			_ = a.Reload()
		case err := <-errc:
			if !errors.Is(err, http.ErrServerClosed) {
				serveErr = err
			}
			break loop
		case <-ctx.Done():
			break loop
		}
	}
	a.ready.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	if err := srv.Shutdown(sctx); err != nil {
		// Typically a client's spare connection that never sent a request,
		// which Shutdown waits 5 s for. Close what is left: a webhook cut
		// short is retried by Alertmanager and deduplicated, so nothing is
		// lost, and stopping is not an error.
		level.Warn(a.logger).Log("msg", "HTTP connections still open at shutdown: closing them", "err", err)
		_ = srv.Close()
	}
	cancel()
	stopDispatch()
	grace := time.Duration(a.current().cfg.Ladder.ShutdownGrace)
	done := make(chan struct{})
	go func() { a.sched.wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		level.Warn(a.logger).Log("msg", "ladders still running at shutdown: stopping them; they resume on the next start", "running", a.sched.Running())
		stopLadders()
		<-done
	}
	stopMail()
	bg.Wait()
	return serveErr
}

// Close closes the journal; Serve calls it when it returns.
func (a *App) Close() error {
	var err error
	a.closeOnce.Do(func() { err = a.journal.Close() })
	return err
}

// stdLogger adapts the go-kit logger to promhttp's Println logger.
type stdLogger struct{ l log.Logger }

func (s stdLogger) Println(v ...any) { level.Error(s.l).Log("msg", fmt.Sprint(v...)) }
