// Command bench-probe-server serves the exporter's probe role alone (/probe,
// /sd, /metrics), wired exactly as mamori_exporter wires it, for
// scripts/bench-probe.sh to measure while mamori_exporter does not serve
// /probe yet. It is not shipped.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mamori-ops/mamori/exporter/probe"
	"github.com/mamori-ops/mamori/internal/logging"
	"github.com/mamori-ops/mamori/inventory"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	app := kingpin.New("bench-probe-server", "The probe role alone, for scripts/bench-probe.sh.")
	configFile := app.Flag("config.file", "Inventory file.").Required().String()
	listen := app.Flag("web.listen-address", "Address to listen on.").Default(":9796").String()
	cpuProfile := app.Flag("debug.cpuprofile", "Write a CPU profile here until the server stops.").Hidden().String()
	probeCfg := probe.AddFlags(app)
	logCfg := logging.AddFlags(app)
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	logger, _, err := logging.New(*logCfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	inv, err := inventory.LoadFile(*configFile)
	if err != nil {
		level.Error(logger).Log("msg", "inventory", "err", err)
		return 1
	}
	// Loading an inventory leaves garbage behind (tens of MB for 200 hosts);
	// hand it back before serving, as the app should after every load.
	runtime.GC()
	debug.FreeOSMemory()
	if err := probeCfg.Validate(); err != nil {
		level.Error(logger).Log("msg", "probe flags", "err", err)
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			level.Error(logger).Log("msg", "cpu profile", "err", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			level.Error(logger).Log("msg", "cpu profile", "err", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	current := func() *inventory.Inventory { return inv }
	mux := http.NewServeMux()
	mux.Handle("/probe", probe.NewHandler(probeCfg, current, probe.NewMetrics(reg), logger))
	mux.Handle("/sd", probe.NewSDHandler(current, logger))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	level.Info(logger).Log("msg", "listening", "address", *listen)
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			level.Error(logger).Log("msg", "serve", "err", err)
			return 1
		}
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
	return 0
}
