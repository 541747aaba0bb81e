package inventory

import (
	"bufio"
	"bytes"
	"strings"

	"github.com/mamori-ops/mamori/runbook"
)

// DefaultCustomer names the customer of the embedded default inventory.
const DefaultCustomer = "local"

// Default is the inventory used when no file is given: the machine itself,
// on the standard plan, with its OS family detected. Checks whose product is
// not installed here (a service with a marker path that is absent, such as
// Plesk's panel) are left out rather than reported down forever.
func Default(hostname string, family runbook.OSFamily, exists func(path string) bool) *Inventory {
	h := &Host{
		Name:           hostname,
		Address:        "127.0.0.1",
		OSFamily:       family,
		ServiceManager: Systemd,
	}
	for _, c := range runbook.ChecksFor(DefaultPlan) {
		if s, ok := runbook.ServiceByName(c.Service); ok && s.Marker != "" && !exists(s.Marker) {
			h.Disable = append(h.Disable, c.ID)
		}
	}
	inv := &Inventory{
		File: "(embedded default)",
		Customers: []Customer{{
			Name:     DefaultCustomer,
			Plan:     DefaultPlan,
			Language: DefaultLanguage,
			Contacts: []string{"root@localhost"},
			Hosts:    []*Host{h},
		}},
	}
	inv.applyDefaults()
	inv.resolve()
	return inv
}

// DetectOSFamily reads /etc/os-release content (ID and ID_LIKE) and names the
// family; it falls back to the runbook's own, rhel.
func DetectOSFamily(osRelease []byte) runbook.OSFamily {
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(osRelease))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || (k != "ID" && k != "ID_LIKE") {
			continue
		}
		ids = append(ids, strings.Fields(strings.Trim(v, `"'`))...)
	}
	for _, id := range ids {
		switch id {
		case "debian", "ubuntu":
			return runbook.Debian
		case "rhel", "centos", "fedora", "almalinux", "rocky", "ol", "cloudlinux":
			return runbook.RHEL
		}
	}
	return DefaultOSFamily
}
