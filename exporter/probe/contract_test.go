package probe

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mamori-ops/mamori/internal/generate/contract"
)

// TestAnswerMatchesTheContract: a /probe answer whose probes carry every
// figure (ping statistics, a certificate expiry, a failure) has exactly the
// probe role's metrics of the contract, with their types and labels.
func TestAnswerMatchesTheContract(t *testing.T) {
	probes := []Probe{
		{Target: Target{Check: "ping"}, Result: Result{Success: true, Duration: time.Millisecond,
			Ping: &PingStats{Sent: 3, Received: 3, RTT: 100 * time.Microsecond}}},
		{Target: Target{Check: "https", Port: 443}, Result: Result{Success: true, Duration: time.Millisecond,
			TLSExpiry: time.Unix(1893456000, 0)}},
		{Target: Target{Check: "smtp", Port: 25}, Result: Result{Reason: ReasonRefused, Duration: time.Millisecond}},
	}
	families := map[string]*dto.MetricFamily{}
	for _, f := range gather(probes) {
		families[f.GetName()] = f
	}
	for _, d := range contract.Diff(families, true, contract.ProbeRole) {
		t.Error(d)
	}
	for _, m := range contract.From(contract.ProbeRole) {
		if families[m.Name] == nil {
			t.Errorf("%s: not in an answer that has every figure", m.Name)
		}
	}
}
