package probe

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/common/expfmt"

	"github.com/mamori-ops/mamori/inventory"
	"github.com/mamori-ops/mamori/runbook"
)

// scrapeTimeoutHeader is where Prometheus says how long it waits.
const scrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

// handler serves /probe.
type handler struct {
	runner *Runner
	inv    func() *inventory.Inventory
	m      *Metrics
	logger log.Logger
	err    error // a configuration error: every request answers 500
}

// NewHandler serves /probe?target=HOST[&check=ID...][&debug=true]: it probes
// every outside check of the inventory host HOST (its name or its address),
// or only the named checks, concurrently within the scrape timeout, and
// answers with the mamori_probe_* metrics. inv returns the inventory in
// force. A configuration error (an unreadable --probe.tls-ca-file) is
// logged here and makes every request answer 500.
func NewHandler(cfg *Config, inv func() *inventory.Inventory, m *Metrics, logger log.Logger) http.Handler {
	if logger == nil {
		logger = log.NewNopLogger()
	}
	h := &handler{inv: inv, m: m, logger: logger}
	h.runner, h.err = NewRunner(cfg, m, logger)
	if h.err != nil {
		level.Error(logger).Log("msg", "probe role misconfigured: /probe answers 500", "err", h.err)
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	if h.err != nil {
		h.m.request(requestConfigError)
		http.Error(w, "probe role misconfigured: "+h.err.Error(), http.StatusInternalServerError)
		return
	}
	q := r.URL.Query()
	target := q.Get("target")
	if target == "" {
		h.reject(w, requestBadRequest, http.StatusBadRequest, "the target parameter is missing")
		return
	}
	host, checks, status, result, err := h.plan(target, q["check"])
	if err != nil {
		h.reject(w, result, status, err.Error())
		return
	}
	debug, _ := strconv.ParseBool(q.Get("debug"))
	timeout := probeTimeout(r.Header.Get(scrapeTimeoutHeader), h.runner.s)
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	h.m.request(requestProbed)
	probes := h.runner.ProbeHost(ctx, host, checks, debug)

	if debug {
		h.debug(w, target, host, timeout, probes)
		return
	}
	format := negotiate(r.Header)
	w.Header().Set("Content-Type", string(format))
	if format.FormatType() == expfmt.TypeTextPlain {
		if _, err := w.Write(appendText(make([]byte, 0, 2048*len(probes)), probes)); err != nil {
			level.Debug(h.logger).Log("msg", "writing the probe answer", "err", err)
		}
		return
	}
	enc := expfmt.NewEncoder(w, format)
	for _, mf := range gather(probes) {
		if err := enc.Encode(mf); err != nil {
			level.Debug(h.logger).Log("msg", "writing the probe answer", "err", err)
			return
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		_ = c.Close()
	}
}

// reject answers a request that probes nothing.
func (h *handler) reject(w http.ResponseWriter, result string, status int, msg string) {
	h.m.request(result)
	level.Debug(h.logger).Log("msg", "probe request rejected", "result", result, "err", msg)
	http.Error(w, msg, status)
}

// plan finds the host and the checks to probe. Unknown targets are refused
// (403) unless --probe.allow-unknown-targets; unknown checks are 400.
func (h *handler) plan(target string, only []string) (Host, []inventory.HostCheck, int, string, error) {
	var inv *inventory.Inventory
	if h.inv != nil {
		inv = h.inv()
	}
	var checks []inventory.HostCheck
	host, hc, err := findHost(inv, target)
	switch {
	case err != nil:
		return Host{}, nil, http.StatusBadRequest, requestBadRequest, err
	case hc != nil:
		checks = hc.CheckList()
	case !h.runner.s.AllowUnknownTargets:
		return Host{}, nil, http.StatusForbidden, requestUnknownTarget,
			fmt.Errorf("target %q is not a host of the inventory (see --probe.allow-unknown-targets)", target)
	case !validTarget(target):
		return Host{}, nil, http.StatusBadRequest, requestBadRequest,
			fmt.Errorf("target %q is neither an IP address nor a host name", target)
	default:
		host = Host{Name: target, Address: target}
		checks = unknownTargetChecks()
	}
	if len(only) == 0 {
		outside := make([]inventory.HostCheck, 0, len(checks))
		for _, c := range checks {
			if c.Kind == runbook.Probe {
				outside = append(outside, c)
			}
		}
		return host, outside, 0, "", nil
	}
	picked := make([]inventory.HostCheck, 0, len(only))
	for _, id := range only {
		if i := indexOf(checks, id); i >= 0 && checks[i].Kind == runbook.Probe {
			if indexOf(picked, id) < 0 {
				picked = append(picked, checks[i])
			}
			continue
		}
		// Not probed here: say why. (runbook.CheckByID builds the whole
		// table, so it is asked only now.)
		c, ok := runbook.CheckByID(id)
		switch {
		case !ok:
			return Host{}, nil, http.StatusBadRequest, requestUnknownCheck, fmt.Errorf("unknown check %q", id)
		case c.Kind != runbook.Probe:
			return Host{}, nil, http.StatusBadRequest, requestUnknownCheck,
				fmt.Errorf("check %q runs on the host itself, not from outside", id)
		}
		return Host{}, nil, http.StatusBadRequest, requestUnknownCheck,
			fmt.Errorf("check %q is not in force on host %s", id, host.Name)
	}
	return host, picked, 0, "", nil
}

func indexOf(checks []inventory.HostCheck, id string) int {
	for i, c := range checks {
		if c.ID == id {
			return i
		}
	}
	return -1
}

// findHost looks target up by host name, then by address. hc is nil when
// the target is not in the inventory; an address shared by several hosts
// is an error (ask by name).
func findHost(inv *inventory.Inventory, target string) (Host, *inventory.Host, error) {
	if inv == nil {
		return Host{}, nil, nil
	}
	var found []*inventory.Host
	for ci := range inv.Customers {
		for _, h := range inv.Customers[ci].Hosts {
			if h.Name == target {
				return Host{Name: h.Name, Address: h.Address}, h, nil
			}
			if strings.EqualFold(h.Address, target) {
				found = append(found, h)
			}
		}
	}
	switch len(found) {
	case 0:
		return Host{}, nil, nil
	case 1:
		return Host{Name: found[0].Name, Address: found[0].Address}, found[0], nil
	}
	names := make([]string, len(found))
	for i, h := range found {
		names[i] = h.Name
	}
	return Host{}, nil, fmt.Errorf("address %s belongs to hosts %s: ask for one by name", target, strings.Join(names, ", "))
}

// unknownTargetChecks are the standard plan's outside checks with the
// registry's defaults, for targets outside the inventory. The url check
// needs a URL from the inventory, so it is not among them.
func unknownTargetChecks() []inventory.HostCheck {
	var out []inventory.HostCheck
	for _, c := range runbook.ChecksFor(inventory.DefaultPlan) {
		if c.Kind == runbook.Probe && (c.Port != 0 || c.Protocol == runbook.ICMP) {
			out = append(out, inventory.HostCheck{Check: c})
		}
	}
	return out
}

var hostNameRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$`)

// validTarget accepts IP addresses and DNS names, nothing with a port, a
// path or a scheme.
func validTarget(s string) bool {
	return net.ParseIP(s) != nil || (len(s) <= 253 && hostNameRE.MatchString(s))
}

// minTimeout is the least time a probe gets, whatever the header says.
const minTimeout = 100 * time.Millisecond

// probeTimeout is the scrape timeout Prometheus sent (or the default) minus
// the offset, never below minTimeout.
func probeTimeout(header string, s *settings) time.Duration {
	t := s.DefaultTimeout
	if header != "" {
		if f, err := strconv.ParseFloat(header, 64); err == nil && f > 0 && !math.IsInf(f, 0) && f < 1e6 {
			t = time.Duration(f * float64(time.Second))
		}
	}
	return max(t-s.TimeoutOffset, minTimeout)
}

// debug writes the dialogue of every check, then the metrics.
func (h *handler) debug(w http.ResponseWriter, target string, host Host, timeout time.Duration, probes []Probe) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Probing %s (host %s, address %s) with a timeout of %s\n", target, host.Name, host.Address, timeout)
	for _, p := range probes {
		res := p.Result
		fmt.Fprintf(w, "\n== check %s, port %s: ", p.Target.Check, portLabel(p.Target))
		if res.Success {
			fmt.Fprintf(w, "success in %s\n", res.Duration)
		} else {
			fmt.Fprintf(w, "failure (%s) in %s: %v\n", res.Reason, res.Duration, res.Err)
		}
		fmt.Fprint(w, p.Transcript.String())
	}
	fmt.Fprint(w, "\n== metrics\n")
	_, _ = w.Write(appendText(nil, probes))
}

// negotiate picks the exposition format the scraper asks for; a request
// without a preference (curl) gets the text format without parsing.
func negotiate(h http.Header) expfmt.Format {
	if a := h.Get("Accept"); a == "" || a == "*/*" {
		return expfmt.NewFormat(expfmt.TypeTextPlain)
	}
	return expfmt.NegotiateAccept(h, expfmt.DefaultAcceptedFormats()...)
}
