// Package deploy holds what installs mamori: systemd units, the compose
// file, container images and the local demo. Its tests check those files.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mamori-ops/mamori/internal/testenv"
)

// TestComposeConfig validates compose.yml with docker-compose v1, which
// needs no daemon. Without docker-compose it skips (fails under CI=true).
func TestComposeConfig(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		testenv.Need(t, "docker-compose is not installed (scripts/setup-test.sh installs it): %v", err)
	}
	out, err := exec.Command(bin, "-f", "compose.yml", "config", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
}

// TestUnitsHardened keeps the units' sandbox: a dedicated user, no new
// privileges, a read-only system, and exactly the capability each needs.
func TestUnitsHardened(t *testing.T) {
	want := map[string]string{
		"mamori-exporter.service":   "CAP_DAC_READ_SEARCH",
		"mamori-prober.service":     "CAP_NET_RAW",
		"mamori-remediator.service": "",
	}
	for name, capability := range want {
		raw, err := os.ReadFile(filepath.Join("systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]string{}
		for _, line := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
				keys[k] = v
			}
		}
		for k, v := range map[string]string{
			"NoNewPrivileges": "yes", "ProtectSystem": "strict",
			"CapabilityBoundingSet": capability, "ExecReload": "/bin/kill -HUP $MAINPID",
		} {
			if keys[k] != v {
				t.Errorf("%s: %s=%q, want %q", name, k, keys[k], v)
			}
		}
		if u := keys["User"]; u == "" || u == "root" {
			t.Errorf("%s: User=%q, want a dedicated user", name, u)
		}
		if keys["AmbientCapabilities"] != capability && !(capability == "" && keys["AmbientCapabilities"] == "") {
			t.Errorf("%s: AmbientCapabilities=%q, want %q", name, keys["AmbientCapabilities"], capability)
		}
	}
}
