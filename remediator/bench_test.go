package remediator

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/remediator/journal"
)

// finishedLadders reads mamori_remediator_incidents_total{result="dry_run"}
// summed over checks.
func finishedLadders(url string) int {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	n := 0
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, "mamori_remediator_incidents_total{") && strings.Contains(l, `result="dry_run"`) {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += int(v)
		}
	}
	return n
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestBenchWebhook posts distinct alerts to the built binary in dry-run
// mode at a fixed rate (MAMORI_BENCH_RATE, default 500 alerts/s, one alert
// per webhook) for MAMORI_BENCH_SECONDS (default 60), from an open loop:
// each request has its planned time, and its acknowledgement latency counts
// from then, so a slow answer delays nobody's measurement. Then it stops
// the binary and counts the journal: every alert must be there. Run it
// with `make bench-remediator`.
func TestBenchWebhook(t *testing.T) {
	if os.Getenv("MAMORI_BENCH_REMEDIATOR") != "1" {
		t.Skip("benchmark: run `make bench-remediator` or set MAMORI_BENCH_REMEDIATOR=1")
	}
	rate := envInt("MAMORI_BENCH_RATE", 500)
	seconds := envInt("MAMORI_BENCH_SECONDS", 60)
	hosts := 50
	n := rate * seconds
	dir := t.TempDir()

	var inv strings.Builder
	inv.WriteString("defaults:\n  os_family: debian\n  ssh: {key_file: /nonexistent/id_ed25519, known_hosts_file: /nonexistent/known_hosts}\ncustomers:\n")
	for c := range 5 {
		fmt.Fprintf(&inv, "  - name: customer%d\n    contacts: [ops@customer%d.example]\n    hosts:\n", c, c)
		for h := range hosts / 5 {
			fmt.Fprintf(&inv, "      - {name: host%02d.customer%d.example, address: 127.0.0.1}\n", c*10+h, c)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.yml"), []byte(inv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "journal.db")
	cfg := filepath.Join(dir, "remediator.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`inventory_file: inventory.yml
dry_run: true
journal: {path: %s}
webhook: {bearer_token: %s}
mail: {smarthost: "127.0.0.1:1", from: mamori@example.com, tls: none}
operators: {emails: [noc@example.com]}
`, dbPath, testToken)), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	p := startBinaryLevel(t, bin, cfg, "warn")

	checks := []string{"http", "https", "imap", "pop3", "smtp", "ssh", "ftp", "mysql", "ping", "disk", "swap", "load"}
	bodies := make([][]byte, n)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range bodies {
		c := i % 5
		h := (i / 5) % (hosts / 5)
		check := checks[i%len(checks)]
		bodies[i] = mustJSON(t, alert("firing", fmt.Sprintf("%016x", i), base.Add(time.Duration(i)*time.Millisecond), map[string]string{
			"alertname": "MamoriBench", "check": check, "host": fmt.Sprintf("host%02d.customer%d.example", c*10+h, c),
			"customer": fmt.Sprintf("customer%d", c), "remediate": "true"}))
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 128}, Timeout: 30 * time.Second}
	lat := make([]time.Duration, n)
	codes := make([]int, n)
	jobs := make(chan int, n)
	start := time.Now().Add(100 * time.Millisecond)
	var wg sync.WaitGroup
	for range 128 {
		wg.Go(func() {
			for i := range jobs {
				planned := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
				req, _ := http.NewRequest(http.MethodPost, p.url+WebhookPath, bytes.NewReader(bodies[i]))
				req.Header.Set("Authorization", "Bearer "+testToken)
				resp, err := client.Do(req)
				if err != nil {
					codes[i] = -1
					lat[i] = time.Since(planned)
					continue
				}
				resp.Body.Close()
				lat[i], codes[i] = time.Since(planned), resp.StatusCode
			}
		})
	}
	if out := os.Getenv("MAMORI_BENCH_CPUPROFILE"); out != "" {
		go func() {
			resp, err := http.Get(p.url + "/debug/pprof/profile?seconds=" + strconv.Itoa(max(seconds-5, 1)))
			if err != nil {
				return
			}
			defer resp.Body.Close()
			f, err := os.Create(out)
			if err != nil {
				return
			}
			defer f.Close()
			_, _ = f.ReadFrom(resp.Body)
		}()
	}
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
			time.Sleep(d)
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)

	// How far the dry-run ladders got while the load ran, and how long the
	// rest took.
	ladders := finishedLadders(p.url)
	drainStart := time.Now()
	drained := time.Duration(0)
	for time.Since(drainStart) < 5*time.Minute {
		if finishedLadders(p.url) >= n {
			drained = time.Since(drainStart)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.term()

	ok := 0
	for _, c := range codes {
		if c == 200 {
			ok++
		}
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	pct := func(q float64) time.Duration { return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))] }

	j, err := journal.OpenSQLite(dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	incidents, decisions, err := j.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	results, err := j.Results(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var windows []string
	for w := 0; w < n; w += rate * 10 {
		win := slices.Clone(lat[w:min(n, w+rate*10)])
		slices.Sort(win)
		windows = append(windows, win[int(.99*float64(len(win)))].Round(100*time.Microsecond).String())
	}
	report := fmt.Sprintf(`remediator webhook benchmark (dry-run, built binary, SQLite journal synchronous=FULL, %d hosts)
  offered:   %d alerts in %s (%d alerts/s, one alert per webhook, open loop)
  answered:  %d × 200, %d other
  ack:       p50 %s  p90 %s  p99 %s  p99.9 %s  max %s
  ack p99 by 10 s window: %s
  journal:   %d incidents, %d decisions (every alert: %v)
  ladders:   %d dry-run ladders finished while the load ran; the other %d within %s after it
  results:   %v
`, hosts, n, elapsed.Round(time.Millisecond), rate, ok, n-ok,
		pct(.5).Round(10*time.Microsecond), pct(.9).Round(10*time.Microsecond), pct(.99).Round(10*time.Microsecond),
		pct(.999).Round(10*time.Microsecond), sorted[len(sorted)-1].Round(10*time.Microsecond), strings.Join(windows, " "),
		incidents, decisions, incidents == n, ladders, n-ladders, drained.Round(100*time.Millisecond), results)
	t.Log("\n" + report)
	if out := os.Getenv("MAMORI_BENCH_OUT"); out != "" {
		_ = os.WriteFile(out, []byte(report), 0o644)
	}
	if ok != n {
		t.Errorf("%d of %d webhooks not answered 200", n-ok, n)
	}
	if incidents != n {
		t.Errorf("journal holds %d incidents, want %d", incidents, n)
	}
	if results[ResultDryRun] != n {
		t.Errorf("%d incidents ended dry_run, want %d: %v", results[ResultDryRun], n, results)
	}
	if p99 := pct(.99); p99 > 20*time.Millisecond {
		t.Errorf("p99 acknowledgement %s, want ≤ 20ms", p99)
	}
}
