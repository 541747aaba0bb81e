package remediator

import (
	"context"

	"github.com/mamori-ops/mamori/exporter/probe"
	"github.com/mamori-ops/mamori/inventory"
)

// probeReprober re-probes with the exporter's own probers: the same
// dialogue, ports and TLS settings as the check that fired.
type probeReprober struct{ r *probe.Runner }

// NewProbeReprober adapts the exporter's probe runner.
func NewProbeReprober(r *probe.Runner) Reprober { return probeReprober{r: r} }

// Reprobe implements Reprober.
func (p probeReprober) Reprobe(ctx context.Context, h *inventory.Host, hc inventory.HostCheck) ProbeResult {
	res := p.r.Check(ctx, probe.Host{Name: h.Name, Address: h.Address}, hc, nil)
	return ProbeResult{Success: res.Success, Reason: string(res.Reason), Err: res.Err}
}

var _ Reprober = probeReprober{}
