package remediator

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/mamori-ops/mamori/remediator/journal"
)

// scheduler is the lock stage: it takes queued incidents from the journal
// and runs their ladders on a bounded pool, one ladder at a time per host,
// a host's ping or ssh ladder first (its service ladders wait while it
// runs). Budgets are checked by the actions themselves (act.go).
type scheduler struct {
	journal journal.Journal
	engine  *engine
	metrics *metrics
	logger  log.Logger
	owner   string
	current func() *runtime

	wake chan struct{}
	mu   sync.Mutex
	// hosts holds the incident running on each host.
	hosts map[string]int64
	// running maps a running incident to its resolved flag.
	running map[int64]*atomic.Bool
	wg      sync.WaitGroup
	// pending are hosts that may have queued incidents: an index of the
	// journal fed by intake and by ladders that end, rebuilt from the
	// journal at every tick, so that nothing queued is ever forgotten.
	pending map[string]bool
	// failing remembers the last dispatch error, to log only changes.
	failing string
}

func newScheduler(j journal.Journal, e *engine, m *metrics, logger log.Logger, owner string, current func() *runtime) *scheduler {
	return &scheduler{journal: j, engine: e, metrics: m, logger: logger, owner: owner, current: current,
		wake: make(chan struct{}, 1), hosts: map[string]int64{}, running: map[int64]*atomic.Bool{}, pending: map[string]bool{}}
}

// Wake asks for a dispatch round now, for these hosts' queued incidents.
func (s *scheduler) Wake(hosts ...string) {
	if len(hosts) > 0 {
		s.mu.Lock()
		for _, h := range hosts {
			s.pending[h] = true
		}
		s.mu.Unlock()
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Resolve tells a running ladder that its alert resolved: it stops at its
// next step. A queued incident reads the flag from the journal when it
// starts.
func (s *scheduler) Resolve(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.running[id]; ok {
		f.Store(true)
	}
}

// Running counts the ladders in progress.
func (s *scheduler) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.running)
}

// run dispatches until ctx ends, then waits for the ladders in flight:
// they end on their own within grace, or are stopped by cancelling
// ladderCtx and resume on the next start.
func (s *scheduler) run(ctx, ladderCtx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	full := true
	for {
		s.dispatch(ctx, ladderCtx, full)
		full = false
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			// Under a burst, wakes come faster than ladders start: one
			// round per gap serves them all.
			if !sleep(ctx, dispatchGap) {
				return
			}
		case <-t.C:
			full = true
		}
	}
}

// dispatchGap is the least time between two dispatch rounds.
const dispatchGap = 10 * time.Millisecond

// wait waits for every ladder to return.
func (s *scheduler) wait() { s.wg.Wait() }

// hostLevelChecks are the checks whose ladders are about the whole host:
// they go first on their host, and its service ladders wait meanwhile.
func hostLevelChecks() []string { return []string{"ping", "ssh"} }

// dispatch starts what it can: for each host that may have queued work and
// runs no ladder, its next incident (journal.NextFor, an index seek). A
// full round reads the whole queue instead (journal.Queued), to find what
// no wake announced: incidents put back after an error, or recovered at
// start.
func (s *scheduler) dispatch(ctx, ladderCtx context.Context, full bool) {
	rc := s.current()
	s.mu.Lock()
	free := rc.cfg.Workers - len(s.running)
	s.mu.Unlock()
	if free <= 0 {
		return
	}
	var candidates []journal.Incident
	if full {
		queued, err := s.journal.Queued(ctx, hostLevelChecks(), 10000)
		if err != nil {
			s.logChange("cannot read the queue", err)
			return
		}
		candidates = queued
		s.mu.Lock()
		s.pending = map[string]bool{}
		for _, inc := range queued {
			s.pending[inc.Host] = true
		}
		s.mu.Unlock()
	} else {
		s.mu.Lock()
		for h := range s.pending {
			if _, busy := s.hosts[h]; !busy {
				candidates = append(candidates, journal.Incident{Host: h})
			}
		}
		s.mu.Unlock()
	}
	for _, inc := range candidates {
		if free == 0 || ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		_, busy := s.hosts[inc.Host]
		if !busy {
			s.hosts[inc.Host] = inc.ID
		}
		s.mu.Unlock()
		if busy {
			continue
		}
		release := func() {
			s.mu.Lock()
			delete(s.hosts, inc.Host)
			s.mu.Unlock()
		}
		if inc.ID == 0 {
			id, ok, err := s.journal.NextFor(ctx, inc.Host, hostLevelChecks())
			if err != nil {
				release()
				s.logChange("cannot read the queue", err)
				return
			}
			if !ok {
				s.mu.Lock()
				delete(s.hosts, inc.Host)
				delete(s.pending, inc.Host)
				s.mu.Unlock()
				continue
			}
			inc.ID = id
		}
		ok, err := s.journal.Claim(ctx, inc.ID, s.owner)
		if err != nil || !ok {
			release()
			if err != nil {
				s.logChange("cannot claim an incident", err)
				return
			}
			continue
		}
		s.logChange("", nil)
		free--
		s.start(ladderCtx, rc, inc)
	}
}

// start runs one ladder in its own goroutine.
func (s *scheduler) start(ctx context.Context, rc *runtime, inc journal.Incident) {
	flag := &atomic.Bool{}
	s.mu.Lock()
	s.running[inc.ID] = flag
	s.mu.Unlock()
	s.wg.Go(func() {
		var err error
		defer func() {
			s.mu.Lock()
			delete(s.running, inc.ID)
			delete(s.hosts, inc.Host)
			s.mu.Unlock()
			if err == nil {
				// The host is free: its next incident may start. After an
				// error the next round waits for the tick.
				s.Wake(inc.Host)
			}
		}()
		err = s.engine.run(ctx, rc, inc.ID, flag)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			level.Info(s.logger).Log("msg", "ladder stopped with the remediator; it resumes on the next start", "incident", inc.ID)
			return
		}
		level.Error(s.logger).Log("msg", "ladder stopped", "incident", inc.ID, "err", err)
		if errors.Is(err, errStop) {
			// The journal failed: hand the incident back to the queue for a
			// later round.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = s.journal.Release(rctx, inc.ID)
		}
	})
}

func (s *scheduler) logChange(msg string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := ""
	if err != nil {
		cur = msg + ": " + err.Error()
	}
	if cur == s.failing {
		return
	}
	s.failing = cur
	if err != nil {
		level.Error(s.logger).Log("msg", msg, "err", err)
	} else {
		level.Info(s.logger).Log("msg", "the journal answers again")
	}
}
