package remediator

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/inventory"
)

// TestExampleConfigLoads: the shipped example is a complete, valid
// reference. Its webhook token file is replaced by a test file of the same
// role.
func TestExampleConfigLoads(t *testing.T) {
	data, err := os.ReadFile("remediator.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "/etc/mamori/remediator-webhook.token", token, 1)
	c, err := ParseConfig([]byte(text), "remediator.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Webhook.BearerToken.Reveal() != "s3cret" || c.InventoryFile != "/etc/mamori/inventory.yml" {
		t.Fatalf("config %+v", c)
	}
	if c.Budgets.Restarts.Max != 3 || time.Duration(c.Budgets.Restarts.Window) != time.Hour ||
		c.Budgets.Reboots.Max != 1 || time.Duration(c.Budgets.Reboots.Window) != 6*time.Hour || c.Budgets.ConcurrentActions != 5 {
		t.Fatalf("budgets %+v", c.Budgets)
	}
	if c.Location.String() != "Asia/Tokyo" || c.Operators.Language != inventory.Japanese {
		t.Fatalf("time zone %s, operators %+v", c.Location, c.Operators)
	}
	// The example documents every field: its values are the defaults, so a
	// minimal file gives the same configuration.
	minimal := fmt.Sprintf("inventory_file: /etc/mamori/inventory.yml\nexternal_url: http://remediator.example:9797/\nwebhook: {bearer_token_file: %s}\nmail: {smarthost: \"localhost:25\", from: \"mamori <mamori@example.com>\", tls: none}\noperators: {emails: [operators@example.com]}\n", token)
	m, err := ParseConfig([]byte(minimal), "minimal.yml")
	if err != nil {
		t.Fatal(err)
	}
	m.File, c.File = "", ""
	if fmt.Sprintf("%+v", *m) != fmt.Sprintf("%+v", *c) {
		t.Errorf("the example's values differ from the defaults:\nexample %+v\ndefaults %+v", *c, *m)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte("inventory_file: inv.yml\nwebhook: {insecure_no_auth: true}\nmail: {smarthost: \"h:25\", from: m@x.example}\noperators: {emails: [o@x.example]}\n"), "/etc/mamori/r.yml")
	if err != nil {
		t.Fatal(err)
	}
	if c.InventoryFile != "/etc/mamori/inv.yml" || c.Journal.Path != DefaultJournalPath || c.Mail.TLS != "starttls" ||
		c.Workers != DefaultWorkers || time.Duration(c.Ladder.CommandTimeout) != DefaultCommandTimeout {
		t.Fatalf("defaults %+v", c)
	}
}

// TestConfigRejections: every rejection, with its exact message.
func TestConfigRejections(t *testing.T) {
	const ok = "inventory_file: inv.yml\nwebhook: {bearer_token: t}\nmail: {smarthost: \"h:25\", from: m@x.example}\noperators: {emails: [o@x.example]}\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"empty", "", "c.yml: configuration is empty"},
		{"syntax", "inventory_file: [\n", "c.yml:1: did not find expected node content"},
		{"unknown field", ok + "workerz: 3\n", "c.yml:5: workerz: unknown field"},
		{"unknown nested field", ok + "budgets:\n  restart: {max: 1}\n", "c.yml:6: budgets.restart: unknown field"},
		{"wrong type", ok + "workers: many\n", "c.yml:5: workers: !!str `many` into int"},
		{"two documents", ok + "---\nworkers: 2\n", "c.yml:5: more than one YAML document"},
		{"no inventory", strings.Replace(ok, "inventory_file: inv.yml\n", "", 1), "c.yml: inventory_file: the inventory file is required"},
		{"no auth", strings.Replace(ok, "webhook: {bearer_token: t}\n", "", 1),
			"c.yml: webhook: set bearer_token(_file) or basic_auth, as Alertmanager's webhook http_config sends it (or insecure_no_auth: true, for a remediator only Alertmanager can reach)"},
		{"token and file", strings.Replace(ok, "{bearer_token: t}", "{bearer_token: t, bearer_token_file: f}", 1),
			"c.yml:2: webhook.bearer_token: set bearer_token or bearer_token_file, not both"},
		{"missing token file", strings.Replace(ok, "{bearer_token: t}", "{bearer_token_file: /nonexistent/token}", 1),
			"c.yml:2: webhook.bearer_token_file: open /nonexistent/token: no such file or directory"},
		{"auth and insecure", strings.Replace(ok, "{bearer_token: t}", "{bearer_token: t, insecure_no_auth: true}", 1),
			"c.yml:2: webhook.insecure_no_auth: authentication is configured: remove insecure_no_auth"},
		{"basic without user", strings.Replace(ok, "{bearer_token: t}", "{basic_auth: {password: p}}", 1),
			"c.yml:2: webhook.basic_auth.username: username is required"},
		{"body limit", strings.Replace(ok, "{bearer_token: t}", "{bearer_token: t, max_body_bytes: 10}", 1),
			"c.yml:2: webhook.max_body_bytes: must be 1024 to 268435456, got 10"},
		{"duplicate key", ok + "workers: 2\nworkers: 3\n", "c.yml:6: workers: mapping key \"workers\" already defined at line 5"},
		{"workers zero is the default", ok + "workers: 0\n", ""},
		{"workers high", ok + "workers: 1000\n", "c.yml:5: workers: must be 1-256, got 1000"},
		{"negative budget", ok + "budgets: {restarts: {max: -1}}\n",
			"c.yml:5: budgets.restarts.max: must not be negative (0 is the default; a budget cannot be switched off)"},
		{"bad duration", ok + "ladder: {command_timeout: soon}\n", "c.yml:5: ladder.command_timeout: invalid duration \"soon\" (want 30s, 5m, 1h, ...)"},
		{"verify attempts", ok + "ladder: {verify_attempts: 1000}\n", "c.yml:5: ladder.verify_attempts: must be 1-100, got 1000"},
		{"retry max below initial", strings.Replace(ok, "from: m@x.example}", "from: m@x.example, retry: {initial: 1m, max: 10s}}", 1),
			"c.yml:3: mail.retry.max: must not be below mail.retry.initial"},
		{"smarthost without port", strings.Replace(ok, `"h:25"`, `"h"`, 1), "c.yml:3: mail.smarthost: invalid host:port \"h\""},
		{"bad from", strings.Replace(ok, "from: m@x.example", "from: nobody", 1), "c.yml:3: mail.from: invalid email address \"nobody\""},
		{"tls mode", strings.Replace(ok, "from: m@x.example}", "from: m@x.example, tls: ssl}", 1),
			"c.yml:3: mail.tls: unknown mode \"ssl\" (want starttls, opportunistic, tls or none)"},
		{"user without password", strings.Replace(ok, "from: m@x.example}", "from: m@x.example, username: u}", 1),
			"c.yml:3: mail.password: username \"u\" without a password"},
		{"time zone", strings.Replace(ok, "from: m@x.example}", "from: m@x.example, timezone: Mars/Olympus}", 1),
			"c.yml:3: mail.timezone: unknown time zone \"Mars/Olympus\""},
		{"no operators", strings.Replace(ok, "operators: {emails: [o@x.example]}\n", "", 1),
			"c.yml: operators.emails: at least one address is required: escalations go there"},
		{"bad operator", strings.Replace(ok, "[o@x.example]", "[o@x.example, not-an-address]", 1),
			"c.yml:4: operators.emails[1]: invalid email address \"not-an-address\""},
		{"operators language", strings.Replace(ok, "{emails: [o@x.example]}", "{emails: [o@x.example], language: fr}", 1),
			"c.yml:4: operators.language: unknown language \"fr\" (want ja or en)"},
		{"external url", ok + "external_url: remediator:9797\n", "c.yml:5: external_url: invalid URL \"remediator:9797\" (want http:// or https:// with a host)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), "c.yml")
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestConfigSecretsNeverPrinted: errors and printed configurations show no
// secret.
func TestConfigSecretsNeverPrinted(t *testing.T) {
	c, err := ParseConfig([]byte("inventory_file: i.yml\nwebhook: {basic_auth: {username: am, password: hunter2}}\nmail: {smarthost: \"h:25\", from: m@x.example, username: u, password: swordfish}\noperators: {emails: [o@x.example]}\n"), "c.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "swordfish") {
			t.Fatalf("a secret is printed: %s", s)
		}
	}
	_, err = ParseConfig([]byte("inventory_file: i.yml\nwebhook: {bearer_token: hunter2, bearer_token_file: x}\nmail: {smarthost: \"h:25\", from: m@x.example}\noperators: {emails: [o@x.example]}\n"), "c.yml")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v", err)
	}
}

// FuzzConfig: the loader never panics and either loads or names the file.
func FuzzConfig(f *testing.F) {
	b, err := os.ReadFile("remediator.example.yml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("inventory_file: i.yml\nwebhook: {insecure_no_auth: true}\nmail: {smarthost: \"h:25\", from: m@x.example}\noperators: {emails: [o@x.example]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ParseConfig(data, "f.yml")
		if err != nil && !strings.HasPrefix(err.Error(), "f.yml") {
			t.Fatalf("error without the file name: %v", err)
		}
	})
}
