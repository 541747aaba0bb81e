package remediator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/internal/testenv"
)

// buildBinary builds mamori_remediator for tests that run it as a process.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mamori_remediator")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/mamori_remediator")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// running is the built binary, running.
type running struct {
	t   testing.TB
	cmd *exec.Cmd
	url string
	out *testenv.Output
	err chan error
}

// startBinary runs the binary on a loopback port and waits until it is
// ready.
func startBinary(t testing.TB, bin, cfg string, args ...string) *running {
	t.Helper()
	return startBinaryLevel(t, bin, cfg, "debug", args...)
}

// startBinaryLevel is startBinary with a log level.
func startBinaryLevel(t testing.TB, bin, cfg, logLevel string, args ...string) *running {
	t.Helper()
	addr := testenv.FreeAddr(t)
	p := &running{t: t, url: "http://" + addr, out: &testenv.Output{}, err: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"--config.file=" + cfg, "--web.listen-address=" + addr, "--log.level=" + logLevel}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.err
		}
		if t.Failed() {
			t.Logf("mamori_remediator output:\n%s", p.out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mamori_remediator not ready after 15s:\n%s", p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL: no shutdown, no last write.
func (p *running) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	<-p.err
}

// term sends SIGTERM and waits for the orderly stop.
func (p *running) term() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.err:
		if err != nil {
			p.t.Errorf("mamori_remediator exited: %v", err)
		}
	case <-time.After(30 * time.Second):
		p.t.Fatal("mamori_remediator did not stop within 30s of SIGTERM")
	}
}

func (p *running) incident(id int64) incidentJSON {
	p.t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/api/v1/incidents/%d", p.url, id))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var j incidentJSON
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
		p.t.Fatal(err)
	}
	return j
}

// waitFor polls the incident until cond holds.
func (p *running) waitFor(id int64, what string, cond func(incidentJSON) bool) incidentJSON {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		j := p.incident(id)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("incident %d: %s did not happen within 20s: %+v", id, what, j)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stepsOf(j incidentJSON) string {
	parts := make([]string, 0, len(j.Steps))
	for _, s := range j.Steps {
		parts = append(parts, s.Action+":"+s.Outcome)
	}
	return strings.Join(parts, " ")
}

func postTo(t testing.TB, url string, body []byte) intakeAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+WebhookPath, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans intakeAnswer
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != 200 {
		t.Fatalf("webhook: %d %v %+v", resp.StatusCode, err, ans)
	}
	return ans
}

// TestSIGKILLBetweenRestartAndVerify: the built binary is killed with
// SIGKILL after the restart and before the verify; started again, it
// finishes the incident: verify, notify, one restart in total, one email.
// A second case kills it while the restart command itself runs: the
// restart is not repeated, verify decides.
func TestSIGKILLBetweenRestartAndVerify(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		name  string
		delay string // the restart command's own duration on the host
		kill  func(incidentJSON) bool
		steps string
	}{
		{"after restart", "", func(j incidentJSON) bool {
			return len(j.Steps) >= 2 && j.Steps[1].Action == "restart" && j.Steps[1].State == "finished"
		}, "check:unhealthy restart:done verify:healthy notify:queued"},
		{"during restart", "3", nil, "check:unhealthy restart:interrupted verify:healthy notify:queued"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ladder := strings.Replace(baseConfig()["ladder"], "verify_delay: 10ms", "verify_delay: 3s", 1)
			e := newEnv(t, envOptions{noStart: true, config: map[string]string{"ladder": ladder}})
			e.fake.Stop("apache2")
			if tc.delay != "" {
				e.fake.Set(t, "restart-delay", tc.delay)
			}
			p := startBinary(t, bin, e.cfgPath)
			id := postTo(t, p.url, mustJSON(t, apacheDown(t, "firing"))).Incidents[0]
			if tc.kill != nil {
				p.waitFor(id, "restart finished", tc.kill)
			} else {
				deadline := time.Now().Add(10 * time.Second)
				for len(e.fake.Restarts()) == 0 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
			}
			p.kill()
			if r := e.fake.Restarts(); len(r) != 1 {
				t.Fatalf("restarts before the kill: %v", r)
			}
			os.Remove(filepath.Join(e.fake.State, "restart-delay"))

			p = startBinary(t, bin, e.cfgPath)
			j := p.waitFor(id, "done", func(j incidentJSON) bool { return j.State == "done" })
			if j.Result != ResultRecovered || stepsOf(j) != tc.steps {
				t.Fatalf("result %s, steps %s, want %s", j.Result, stepsOf(j), tc.steps)
			}
			// The same payload again after the restart is a duplicate.
			if ans := postTo(t, p.url, mustJSON(t, apacheDown(t, "firing"))); ans.Duplicates != 1 {
				t.Fatalf("repeat after restart: %+v", ans)
			}
			msgs := e.smtp.Wait(1, 10*time.Second)
			time.Sleep(200 * time.Millisecond)
			if r := e.fake.Restarts(); len(r) != 1 || len(e.smtp.Messages()) != 1 {
				t.Fatalf("restarts %v, emails %d", r, len(msgs))
			}
			p.term()
		})
	}
}

// TestBinaryReloadsOnSIGHUP: the built binary re-reads its configuration
// and inventory on SIGHUP.
func TestBinaryReloadsOnSIGHUP(t *testing.T) {
	bin := buildBinary(t)
	e := newEnv(t, envOptions{noStart: true})
	p := startBinary(t, bin, e.cfgPath)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.out.String(), `msg=reloaded`) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged:\n%s", p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.term()
	if !strings.Contains(p.out.String(), "msg=stopped") {
		t.Fatalf("no orderly stop:\n%s", p.out.String())
	}
}
