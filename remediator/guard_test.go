package remediator

import (
	"testing"

	"github.com/prometheus/alertmanager/template"

	"github.com/mamori-ops/mamori/inventory"
)

// TestGuardAcceptsTheRegistryServiceOfAnOverriddenCheck: the rules carry
// the registry's service (ftp: xinetd); a host whose FTP runs standalone
// (ftp: {service: vsftpd}) still gets its alert, and a service that is
// neither is refused.
func TestGuardAcceptsTheRegistryServiceOfAnOverriddenCheck(t *testing.T) {
	inv, err := inventory.Parse([]byte(`customers:
  - name: acme
    contacts: [ops@acme.example]
    hosts:
      - name: ftp1
        address: 127.0.0.1
        os_family: debian
        checks:
          ftp: {service: vsftpd}
`), "inv.yml")
	if err != nil {
		t.Fatal(err)
	}
	for service, accepted := range map[string]bool{"xinetd": true, "vsftpd": true, "mariadb": false} {
		s := &alertState{alert: template.Alert{Labels: template.KV{
			"alertname": "MamoriFtpDown", "check": "ftp", "host": "ftp1", "customer": "acme",
			"service": service, "remediate": "true",
		}}}
		match(inv, s)
		guard(s)
		if s.accepted() != accepted {
			t.Errorf("service=%s: accepted %t (%s: %s), want %t", service, s.accepted(), s.reason, s.detail, accepted)
		}
	}
}
