// Command mamori_remediator takes Alertmanager's webhook and does what the
// monitoring runbook tells an operator to do: check, restart, verify, hand
// over to a person, and tell the customer, with every step journaled.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // emails show times in the configured zone on any host

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log/level"
	"github.com/prometheus/common/version"

	"github.com/mamori-ops/mamori/internal/logging"
	"github.com/mamori-ops/mamori/remediator"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	app := kingpin.New("mamori_remediator", "Runs the monitoring runbook's ladders on Alertmanager's alerts, and tells the customer.")
	opts := remediator.AddFlags(app)
	logCfg := logging.AddFlags(app)
	app.Version(version.Print("mamori_remediator"))
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
	level.Info(logger).Log("msg", "starting mamori_remediator", "version", version.Info(), "build_context", version.BuildContext())
	opts.AgentSocket = os.Getenv("SSH_AUTH_SOCK")

	a, err := remediator.New(*opts, logger, slogger)
	if err != nil {
		level.Error(logger).Log("msg", "cannot start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	if err := a.Run(ctx, hup); err != nil {
		level.Error(logger).Log("msg", "remediator stopped", "err", err)
		return 1
	}
	level.Info(logger).Log("msg", "stopped")
	return 0
}
