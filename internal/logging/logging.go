// Package logging builds the project's logger: go-kit/log, logfmt or JSON,
// with --log.level and --log.format, and the *slog.Logger bridged to it for
// libraries that want one (exporter-toolkit). It is the single place where
// loggers are made.
package logging

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	sloggokit "github.com/tjhop/slog-gokit"
)

// Config is the logger's flags.
type Config struct {
	Level  string
	Format string
}

// AddFlags registers --log.level and --log.format on app.
func AddFlags(app *kingpin.Application) *Config {
	c := &Config{}
	app.Flag("log.level", "Only log messages with the given severity or above. One of: [debug, info, warn, error]").
		Default("info").EnumVar(&c.Level, "debug", "info", "warn", "error")
	app.Flag("log.format", "Output format of log messages. One of: [logfmt, json]").
		Default("logfmt").EnumVar(&c.Format, "logfmt", "json")
	return c
}

// New builds the go-kit logger and its slog bridge, writing to w.
func New(c Config, w io.Writer) (log.Logger, *slog.Logger, error) {
	var l log.Logger
	switch c.Format {
	case "", "logfmt":
		l = log.NewLogfmtLogger(log.NewSyncWriter(w))
	case "json":
		l = log.NewJSONLogger(log.NewSyncWriter(w))
	default:
		return nil, nil, fmt.Errorf("unknown log format %q", c.Format)
	}
	var opt level.Option
	var sl slog.Level
	switch c.Level {
	case "debug":
		opt, sl = level.AllowDebug(), slog.LevelDebug
	case "", "info":
		opt, sl = level.AllowInfo(), slog.LevelInfo
	case "warn":
		opt, sl = level.AllowWarn(), slog.LevelWarn
	case "error":
		opt, sl = level.AllowError(), slog.LevelError
	default:
		return nil, nil, fmt.Errorf("unknown log level %q", c.Level)
	}
	// The bridge adds its own time and caller from the slog record, and
	// filters by slog level itself, so it gets the bare writer.
	bridge := slog.New(sloggokit.NewGoKitHandler(l, sl))
	// Caller depth 5: past level.X(logger).Log and the filter's wrapping.
	l = log.With(l, "ts", log.DefaultTimestampUTC, "caller", log.Caller(5))
	return level.NewFilter(l, opt), bridge, nil
}
