// Command mamori_exporter exports the monitoring runbook's checks as
// Prometheus metrics: the host role on each server, the probe role centrally.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log/level"
	"github.com/prometheus/common/version"

	"github.com/mamori-ops/mamori/exporter"
	"github.com/mamori-ops/mamori/internal/logging"
	"github.com/mamori-ops/mamori/internal/procs"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	app := kingpin.New("mamori_exporter", "Prometheus exporter for the mamori monitoring runbook.")
	opts := exporter.AddFlags(app)
	logCfg := logging.AddFlags(app)
	adaptiveProcs := procs.AddFlags(app)
	app.Version(version.Print("mamori_exporter"))
	app.HelpFlag.Short('h')
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	logger, slogger, err := logging.New(*logCfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	level.Info(logger).Log("msg", "starting mamori_exporter", "version", version.Info(), "build_context", version.BuildContext())

	a, err := exporter.New(*opts, logger, slogger)
	if err != nil {
		level.Error(logger).Log("msg", "cannot start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *adaptiveProcs && procs.Enabled() {
		go procs.New(logger).Run(ctx)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	if err := a.Run(ctx, hup); err != nil {
		level.Error(logger).Log("msg", "exporter stopped", "err", err)
		return 1
	}
	level.Info(logger).Log("msg", "stopped")
	return 0
}
