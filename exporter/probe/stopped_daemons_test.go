package probe

import (
	"net/http"
	"os/exec"
	"testing"
	"time"
)

// TestStoppedDaemons stops each real daemon in turn: its checks read 0
// with reason refused, and 1 again once it is started. `make test` runs one
// package at a time, so no other test sees the daemons down.
func TestStoppedDaemons(t *testing.T) {
	needDaemons(t)
	h, _ := daemonsHandler(t)
	for _, d := range []struct {
		service string
		checks  []string
		ports   []string
	}{
		{"apache2", []string{"http", "https", "plesk", "url"}, []string{"80", "443", "8443", "80"}},
		{"dovecot", []string{"imap", "imaps", "pop3", "pop3s"}, []string{"143", "993", "110", "995"}},
		{"postfix", []string{"smtp", "smtps"}, []string{"25", "465"}},
		{"vsftpd", []string{"ftp"}, []string{"21"}},
		{"ssh", []string{"ssh"}, []string{"22"}},
		{"mariadb", []string{"mysql"}, []string{"3306"}},
	} {
		query := "/probe?target=localhost"
		for _, c := range d.checks {
			query += "&check=" + c
		}
		daemon(t, d.service, "stop")
		code, body := get(t, h, query, "3")
		daemon(t, d.service, "start")
		if code != http.StatusOK {
			t.Fatalf("%s stopped: status %d: %s", d.service, code, body)
		}
		mfs := metrics(t, body)
		for i, c := range d.checks {
			if v, _ := valueOf(mfs, "mamori_probe_success", "check", c, "port", d.ports[i]); v != 0 {
				t.Errorf("%s stopped: %s succeeded", d.service, c)
			}
			if v, _ := valueOf(mfs, "mamori_probe_failure", "check", c, "port", d.ports[i], "reason", "refused"); v != 1 {
				t.Errorf("%s stopped: %s failed for another reason than refused\n%s", d.service, c, body)
			}
		}
		// Back up: every check of the daemon succeeds again (bounded).
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, body := get(t, h, query, "3")
			mfs := metrics(t, body)
			up := 0
			for i, c := range d.checks {
				if v, _ := valueOf(mfs, "mamori_probe_success", "check", c, "port", d.ports[i]); v == 1 {
					up++
				}
			}
			if up == len(d.checks) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s started again but %d of %d checks succeed after 30 s", d.service, up, len(d.checks))
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// daemon runs `service NAME ACTION` with its stdio detached: dovecot keeps
// the caller's stderr open, and capturing it would never return.
func daemon(t *testing.T, name, action string) {
	t.Helper()
	if err := exec.Command("service", name, action).Run(); err != nil {
		t.Fatalf("service %s %s: %v", name, action, err)
	}
}
