package probe

import (
	"encoding/json"
	"net/http"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/mamori-ops/mamori/inventory"
)

// targetGroup is one entry of Prometheus' HTTP service discovery format.
type targetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// NewSDHandler serves /sd: the inventory's hosts for Prometheus'
// http_sd_configs, one target group per host, in inventory order:
//
//	[{"targets": ["198.18.0.2"],
//	  "labels": {"customer": "acme", "host": "web1.acme.example", "plan": "plus"}}]
//
// The target is the host's address; /probe accepts it, or the host label
// (unambiguous when hosts share an address) as target.
func NewSDHandler(inv func() *inventory.Inventory, logger log.Logger) http.Handler {
	if logger == nil {
		logger = log.NewNopLogger()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "use GET", http.StatusMethodNotAllowed)
			return
		}
		groups := []targetGroup{}
		if i := inv(); i != nil {
			groups = sdGroups(i)
		}
		b, err := json.Marshal(groups)
		if err != nil {
			level.Error(logger).Log("msg", "service discovery", "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(b, '\n'))
	})
}

func sdGroups(inv *inventory.Inventory) []targetGroup {
	groups := []targetGroup{}
	for _, h := range inv.Hosts() {
		labels := map[string]string{"host": h.Name}
		if h.Customer != nil {
			labels["customer"] = h.Customer.Name
			labels["plan"] = string(h.Customer.Plan)
		}
		groups = append(groups, targetGroup{Targets: []string{h.Address}, Labels: labels})
	}
	return groups
}
