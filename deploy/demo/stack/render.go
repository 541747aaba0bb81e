package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// render derives the stack's configuration from the repository's generated
// files (deploy/prometheus.yml, deploy/alertmanager.yml, rules/): the same
// jobs, relabelling, routes, inhibitions and alerts, with the stack's
// addresses and shorter intervals. Each substitution must find its text,
// so a change of the generator that breaks one fails loudly here rather
// than giving a demo that silently differs from deploy/.
//
// The result keeps deploy/'s layout (deploy/prometheus.yml names
// ../rules/*.rules.yml), relative to Options.Dir.
func render(o Options, tokenFile string) (map[string][]byte, error) {
	out := map[string][]byte{}
	read := func(rel string) (string, error) {
		b, err := os.ReadFile(filepath.Join(o.Root, rel))
		return string(b), err
	}
	timeout := o.Scrape * 4 / 5
	header := fmt.Sprintf("# mamori demo copy of %%s (deploy/demo/stack): scrape %s, evaluation %s, group_wait %s.\n", o.Scrape, o.Eval, o.GroupWait)

	prom, err := read("deploy/prometheus.yml")
	if err != nil {
		return nil, err
	}
	prom, err = substitute(prom,
		"scrape_interval: 30s", "scrape_interval: "+dur(o.Scrape),
		"scrape_timeout: 10s", "scrape_timeout: "+dur(timeout),
		"scrape_timeout: 20s", "scrape_timeout: "+dur(timeout),
		"evaluation_interval: 15s", "evaluation_interval: "+dur(o.Eval),
		"refresh_interval: 1m", "refresh_interval: "+dur(o.Scrape),
		"127.0.0.1:9796", o.ProberAddr,
		"127.0.0.1:9093", o.AlertmanagerAddr,
		"127.0.0.1:9797", o.RemediatorAddr,
	)
	if err != nil {
		return nil, fmt.Errorf("deploy/prometheus.yml: %w", err)
	}
	out["deploy/prometheus.yml"] = []byte(fmt.Sprintf(header, "deploy/prometheus.yml") + prom)

	am, err := read("deploy/alertmanager.yml")
	if err != nil {
		return nil, err
	}
	am, err = substitute(am,
		"smtp_smarthost: localhost:25", "smtp_smarthost: "+o.SMTPAddr,
		"group_wait: 30s", "group_wait: "+dur(o.GroupWait),
		"group_interval: 5m", "group_interval: 10s",
		"group_interval: 1m", "group_interval: 10s",
		"http://127.0.0.1:9797/api/v1/alerts", "http://"+o.RemediatorAddr+"/api/v1/alerts",
		"credentials_file: /etc/mamori/remediator-webhook.token", "credentials_file: "+tokenFile,
		"to: operators@example.com", "to: "+Operator,
	)
	if err != nil {
		return nil, fmt.Errorf("deploy/alertmanager.yml: %w", err)
	}
	out["alertmanager.yml"] = []byte(fmt.Sprintf(header, "deploy/alertmanager.yml") + am)

	// Rules: the checks fire at once (a stopped service after one failed
	// scrape) instead of after the runbook's minute; the threshold checks
	// (load, swap, disk, mailq: minutes in the runbook) after 10 s.
	rules, err := filepath.Glob(filepath.Join(o.Root, "rules", "*.rules.yml"))
	if err != nil || len(rules) == 0 {
		return nil, fmt.Errorf("no rules in %s/rules: %v", o.Root, err)
	}
	forLine := regexp.MustCompile(`(?m)^(\s+for: )(\S+)$`)
	for _, r := range rules {
		raw, err := os.ReadFile(r)
		if err != nil {
			return nil, err
		}
		text := string(raw)
		if filepath.Base(r) == "mamori-checks.rules.yml" {
			text = forLine.ReplaceAllStringFunc(text, func(line string) string {
				m := forLine.FindStringSubmatch(line)
				d, err := time.ParseDuration(m[2])
				if err != nil || d <= time.Minute {
					return m[1] + "0s"
				}
				return m[1] + "10s"
			})
		}
		out[filepath.Join("rules", filepath.Base(r))] = []byte(text)
	}

	out["remediator.yml"] = []byte(fmt.Sprintf(`# mamori demo remediator configuration (deploy/demo/stack).
inventory_file: inventory.yml
journal: {path: remediator.db}
webhook: {bearer_token_file: %s}
mail: {smarthost: "%s", from: "mamori <mamori@example.com>", tls: none, retry: {initial: 1s, max: 5s}}
operators: {emails: [%s], language: en}
ladder:
  command_timeout: 30s
  verify_delay: 500ms
  verify_interval: 1s
  verify_attempts: 10
  probe_timeout: 3s
  reboot_wait: 90s
`, tokenFile, o.SMTPAddr, Operator))
	return out, nil
}

// substitute replaces each old text by its new one, everywhere, and fails
// when an old text is absent.
func substitute(s string, pairs ...string) (string, error) {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			return "", fmt.Errorf("%q not found: the generated file changed, update deploy/demo/stack", pairs[i])
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return s, nil
}

// dur formats a duration as Prometheus reads it ("5s", "500ms").
func dur(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}
