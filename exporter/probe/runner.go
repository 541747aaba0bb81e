package probe

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/mamori-ops/mamori/inventory"
	"github.com/mamori-ops/mamori/runbook"
)

// newProbers maps every protocol of the registry to its prober. The checks
// themselves come from the registry and the inventory; this is the one place
// that knows which code speaks which protocol.
func newProbers(s *settings) map[runbook.Protocol]Prober {
	return map[runbook.Protocol]Prober{
		runbook.ICMP:  &ICMP{s: s},
		runbook.HTTP:  &HTTP{s: s},
		runbook.SMTP:  &SMTP{s: s},
		runbook.IMAP:  &IMAP{s: s},
		runbook.POP3:  &POP3{s: s},
		runbook.SSH:   &SSH{s: s},
		runbook.FTP:   &FTP{s: s},
		runbook.MySQL: &MySQL{s: s},
	}
}

// Runner probes the outside checks of inventory hosts. The /probe handler
// uses one; the remediator's re-probe can use another.
type Runner struct {
	s       *settings
	probers map[runbook.Protocol]Prober
	metrics *Metrics
	logger  log.Logger
}

// NewRunner checks cfg and builds the probers. m may be nil.
func NewRunner(cfg *Config, m *Metrics, logger log.Logger) (*Runner, error) {
	s, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = log.NewNopLogger()
	}
	return &Runner{s: s, probers: newProbers(s), metrics: m, logger: logger}, nil
}

// Probe is one check's outcome, with its target and transcript.
type Probe struct {
	Target     Target
	Result     Result
	Transcript *Transcript // nil unless asked for
}

// Host is what a probe needs to know of a host: its name (the default TLS
// server name and HTTP Host) and its address.
type Host struct {
	Name    string
	Address string
}

// grace is how long after the deadline the runner waits for a prober that
// ignores it before reporting a timeout itself.
const grace = 100 * time.Millisecond

// ProbeHost runs the checks concurrently within ctx's deadline and returns
// their outcomes in the order of checks. The host's address is resolved
// once for all of them.
func (r *Runner) ProbeHost(ctx context.Context, h Host, checks []inventory.HostCheck, debug bool) []Probe {
	start := time.Now()
	out := make([]Probe, len(checks))
	var addrErr error
	address := h.Address
	if net.ParseIP(address) == nil {
		ip, err := resolve(ctx, address)
		if err != nil {
			addrErr = err
		} else {
			address = ip.String()
		}
	}
	type done struct {
		i int
		p Probe
	}
	if len(checks) == 1 && addrErr == nil {
		// One check: no goroutine, no channel (the common case of
		// &check=, and of the remediator's re-probes).
		var tr *Transcript
		if debug {
			tr = NewTranscript()
		}
		t, err := r.target(h.Name, address, checks[0])
		out[0] = Probe{Target: t, Transcript: tr}
		if err != nil {
			out[0].Result = Result{}.fail(err)
		} else {
			out[0].Result = r.run(ctx, t, checks[0].Protocol, tr)
		}
		r.record(h, out[0])
		return out
	}
	results := make(chan done, len(checks))
	for i, hc := range checks {
		var tr *Transcript
		if debug {
			tr = NewTranscript()
		}
		t, err := r.target(h.Name, address, hc)
		out[i] = Probe{Target: t, Transcript: tr}
		switch {
		case err != nil:
			out[i].Result = Result{}.fail(err)
			results <- done{i, out[i]}
		case addrErr != nil && hc.Override.URL == "":
			tr.Printf("resolve %s: %v", h.Address, addrErr)
			out[i].Result = Result{}.fail(addrErr)
			results <- done{i, out[i]}
		default:
			go func() { results <- done{i, Probe{Target: t, Result: r.run(ctx, t, hc.Protocol, tr), Transcript: tr}} }()
		}
	}
	var timer <-chan time.Time
	if dl, ok := ctx.Deadline(); ok {
		tm := time.NewTimer(time.Until(dl) + grace)
		defer tm.Stop()
		timer = tm.C
	}
	got := make([]bool, len(checks))
collect:
	for range checks {
		select {
		case d := <-results:
			out[d.i], got[d.i] = d.p, true
		case <-timer:
			// A prober that ignores its deadline is a bug; the scrape must
			// still answer in time.
			for i := range out {
				if !got[i] {
					out[i].Result = Result{Duration: time.Since(start)}.fail(failf(ReasonTimeout, "prober did not return by the deadline"))
					level.Error(r.logger).Log("msg", "prober ignored the deadline", "check", out[i].Target.Check)
				}
			}
			break collect
		}
	}
	for _, p := range out {
		r.record(h, p)
	}
	return out
}

// Check probes one check of a host.
func (r *Runner) Check(ctx context.Context, h Host, hc inventory.HostCheck, tr *Transcript) Result {
	t, err := r.target(h.Name, h.Address, hc)
	if err != nil {
		return Result{}.fail(err)
	}
	res := r.run(ctx, t, hc.Protocol, tr)
	r.record(h, Probe{Target: t, Result: res})
	return res
}

// run times one prober.
func (r *Runner) run(ctx context.Context, t Target, proto runbook.Protocol, tr *Transcript) Result {
	p, ok := r.probers[proto]
	if !ok {
		return Result{}.fail(failf(ReasonInternal, "no prober for protocol %q", proto))
	}
	start := time.Now()
	res := p.Probe(ctx, t, tr)
	res.Duration = time.Since(start)
	switch {
	case tr == nil:
	case res.Success:
		tr.Printf("success in %s", res.Duration)
	default:
		tr.Printf("failure %s in %s: %v", res.Reason, res.Duration, res.Err)
	}
	return res
}

// record counts a probe on /metrics and logs a failure at debug level.
func (r *Runner) record(h Host, p Probe) {
	r.metrics.observe(p.Target.Check, p.Result)
	if !p.Result.Success {
		level.Debug(r.logger).Log("msg", "probe failed", "host", h.Name, "check", p.Target.Check,
			"port", p.Target.Port, "reason", p.Result.Reason, "err", p.Result.Err)
	}
}

// target is TargetFor with the runner's settings and compiled regexps.
func (r *Runner) target(name, address string, hc inventory.HostCheck) (Target, error) {
	return targetFor(name, address, hc, r.s.HTTPMaxRedirects, r.s.regexps.compile)
}

// TargetFor resolves one check of a host into a Target: the registry's
// defaults with the inventory's overrides (port, server_name,
// insecure_skip_verify, starttls, url, body_match). name is the host's
// name, the default TLS server name and HTTP Host; address is where to
// connect. maxRedirects applies to the url check.
func TargetFor(name, address string, hc inventory.HostCheck, maxRedirects int) (Target, error) {
	return targetFor(name, address, hc, maxRedirects, regexp.Compile)
}

func targetFor(name, address string, hc inventory.HostCheck, maxRedirects int, compile func(string) (*regexp.Regexp, error)) (Target, error) {
	o := hc.Override
	t := Target{
		Check:              hc.ID,
		Host:               address,
		Port:               hc.Port,
		TLS:                hc.TLS,
		StartTLS:           o.StartTLS,
		ServerName:         name,
		InsecureSkipVerify: o.InsecureSkipVerify,
	}
	if o.ServerName != "" {
		t.ServerName = o.ServerName
	}
	if hc.Protocol != runbook.HTTP {
		if hc.Protocol != runbook.ICMP && t.Port == 0 {
			return t, failf(ReasonInternal, "check %s has no port", hc.ID)
		}
		return t, nil
	}
	if o.BodyMatch != "" {
		re, err := compile(o.BodyMatch)
		if err != nil {
			return t, &probeError{reason: ReasonInternal, err: fmt.Errorf("body_match: %w", err)}
		}
		t.BodyMatch = re
	}
	if o.URL != "" {
		u, err := url.Parse(o.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return t, failf(ReasonInternal, "check %s: invalid URL %q", hc.ID, o.URL)
		}
		t.URL = u
		t.Host = u.Hostname()
		t.Port = urlPort(u)
		t.TLS = u.Scheme == "https"
		t.MaxRedirects = maxRedirects
		if o.ServerName == "" {
			t.ServerName = u.Hostname()
		}
		return t, nil
	}
	if t.Port == 0 {
		return t, failf(ReasonInternal, "check %s has no port and no URL", hc.ID)
	}
	u := &url.URL{Scheme: "http", Host: hostPort(t.ServerName, t.Port, 80), Path: "/"}
	if t.TLS {
		u.Scheme, u.Host = "https", hostPort(t.ServerName, t.Port, 443)
	}
	t.URL = u
	return t, nil
}

// hostPort is the URL host for name and port, the port left out when it is
// the scheme's default.
func hostPort(name string, port, defaultPort int) string {
	if port == defaultPort {
		if ip := net.ParseIP(name); ip != nil && ip.To4() == nil {
			return "[" + name + "]"
		}
		return name
	}
	return net.JoinHostPort(name, strconv.Itoa(port))
}

// regexpCache compiles each body_match once; a reloaded inventory adds its
// own, and the cache starts over past a bound.
type regexpCache struct {
	mu sync.Mutex
	m  map[string]*regexp.Regexp
}

func (c *regexpCache) compile(expr string) (*regexp.Regexp, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if re, ok := c.m[expr]; ok {
		return re, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	if c.m == nil || len(c.m) >= 1024 {
		c.m = map[string]*regexp.Regexp{}
	}
	c.m[expr] = re
	return re, nil
}
