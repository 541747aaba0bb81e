// Package procs fits GOMAXPROCS to what a process that mostly waits on the
// network asks of the CPU.
//
// A prober spends almost all of a probe waiting for servers. With several
// Ps, every socket that becomes ready makes the scheduler wake a second
// thread to look for work, which finds none and sleeps again: on a probe
// that waits 50 ms for sshd, those hand-offs cost more CPU than the
// dialogue (measured: 0.43 ms of CPU per SSH probe with two Ps, 0.35 ms
// with one). One P is then cheaper; many Ps pay off only once the work
// (TLS handshakes, mostly) fills a CPU. The governor runs on one P while
// the process uses less than Lower of a CPU, and returns to the runtime's
// default (the CPUs, or the cgroup's quota) as soon as it uses more than
// Raise.
package procs

import (
	"context"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// AddFlags registers --runtime.adaptive-procs on app.
func AddFlags(app *kingpin.Application) *bool {
	return app.Flag("runtime.adaptive-procs",
		"Run the Go scheduler on one P (GOMAXPROCS=1) while the exporter uses less than a quarter of a CPU, and on the runtime's default (the CPUs, or the cgroup's quota) once it uses more than half of one: a prober mostly waits, and waking idle threads for every ready socket costs more than the probes. Off when the GOMAXPROCS environment variable is set or the default is one P.").
		Default("true").Bool()
}

// Governor decides GOMAXPROCS from the process's CPU use.
type Governor struct {
	// Interval is how often it measures.
	Interval time.Duration
	// Raise and Lower are CPU use, in CPUs, above which it returns to the
	// default and below which it goes back to one P.
	Raise, Lower float64
	// LowerAfter is how many intervals in a row must stay below Lower
	// before it goes back to one P: it leaves one P at the first busy
	// interval, and returns to it only when the load is gone.
	LowerAfter int

	logger log.Logger
	cpu    func() (time.Duration, error)
	// set applies n Ps, 0 meaning the runtime's default, and returns the
	// number of Ps in force.
	set func(n int) int
}

// New is the governor of this process.
func New(logger log.Logger) *Governor {
	if logger == nil {
		logger = log.NewNopLogger()
	}
	return &Governor{
		Interval:   time.Second,
		Raise:      0.5,
		Lower:      0.25,
		LowerAfter: 10,
		logger:     logger,
		cpu:        processCPU,
		set:        setProcs,
	}
}

// Enabled reports whether the governor may run: not when GOMAXPROCS is set
// in the environment (the operator decided), nor when the default is one
// P already.
func Enabled() bool {
	return os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) > 1
}

// Run governs until ctx ends, then leaves the runtime's default in force.
func (g *Governor) Run(ctx context.Context) {
	defer g.set(0)
	last, err := g.cpu()
	if err != nil {
		level.Warn(g.logger).Log("msg", "cannot read the process's CPU time; GOMAXPROCS left as it is", "err", err)
		return
	}
	lastAt := time.Now()
	s := state{procs: g.set(1)}
	level.Debug(g.logger).Log("msg", "GOMAXPROCS", "procs", s.procs)
	t := time.NewTicker(g.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cpu, err := g.cpu()
			if err != nil {
				continue
			}
			use := (cpu - last).Seconds() / now.Sub(lastAt).Seconds()
			last, lastAt = cpu, now
			if want, change := g.decide(&s, use); change {
				s.procs = g.set(want)
				level.Debug(g.logger).Log("msg", "GOMAXPROCS", "procs", s.procs, "cpu_use", use)
			}
		}
	}
}

// state is what the decision remembers between intervals.
type state struct {
	procs int // in force
	quiet int // intervals in a row below Lower
}

// decide takes one interval's CPU use (in CPUs) and says how many Ps to
// set (0: the runtime's default), and whether that is a change.
func (g *Governor) decide(s *state, use float64) (int, bool) {
	if use < g.Lower {
		s.quiet++
	} else {
		s.quiet = 0
	}
	switch {
	case s.procs == 1 && use > g.Raise:
		return 0, true
	case s.procs > 1 && s.quiet >= g.LowerAfter:
		s.quiet = 0
		return 1, true
	}
	return s.procs, false
}

// setProcs sets n Ps, or the runtime's default (which follows the CPUs and
// the cgroup's quota again) for 0.
func setProcs(n int) int {
	if n == 0 {
		runtime.SetDefaultGOMAXPROCS()
	} else {
		runtime.GOMAXPROCS(n)
	}
	return runtime.GOMAXPROCS(0)
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
