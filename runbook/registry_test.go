package runbook

import (
	"strings"
	"testing"
)

func TestRegistryHasEveryCheckOfTheRunbook(t *testing.T) {
	want := map[Plan][]string{
		Standard: {"ping", "http", "https", "plesk", "imap", "imaps", "pop3", "pop3s", "smtp", "smtps",
			"ssh", "ftp", "load", "swap", "disk", "mysql", "rsyslog", "fail2ban", "spam", "xinetd"},
		Plus: {"url", "mailq"},
	}
	got := map[Plan][]string{}
	for _, c := range Checks() {
		got[c.Plan] = append(got[c.Plan], c.ID)
	}
	for p, ids := range want {
		if len(got[p]) != len(ids) {
			t.Fatalf("plan %s: got %v, want %v", p, got[p], ids)
		}
		for i := range ids {
			if got[p][i] != ids[i] {
				t.Errorf("plan %s check %d: got %q, want %q", p, i, got[p][i], ids[i])
			}
		}
	}
	if n := len(ChecksFor(Plus)); n != 22 {
		t.Errorf("plus plan has %d checks, want 22", n)
	}
	if n := len(ChecksFor(Standard)); n != 20 {
		t.Errorf("standard plan has %d checks, want 20", n)
	}
}

func TestRegistryIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Checks() {
		if seen[c.ID] {
			t.Errorf("check %q listed twice", c.ID)
		}
		seen[c.ID] = true
		if c.Kind != Probe && c.Kind != Host {
			t.Errorf("%s: kind %q", c.ID, c.Kind)
		}
		if c.Kind == Probe && c.Protocol == "" {
			t.Errorf("%s: probe without protocol", c.ID)
		}
		if c.Kind == Probe && c.Protocol != ICMP && c.ID != "url" && c.Port == 0 {
			t.Errorf("%s: probe without default port", c.ID)
		}
		if c.Kind == Host && c.Service == "" && len(c.Thresholds) == 0 {
			t.Errorf("%s: host check measures neither a service nor a threshold", c.ID)
		}
		if c.Service != "" {
			if _, ok := ServiceByName(c.Service); !ok {
				t.Errorf("%s: unknown service %q", c.ID, c.Service)
			}
		}
		if c.Severity != critical && c.Severity != warning {
			t.Errorf("%s: severity %q", c.ID, c.Severity)
		}
		if c.For <= 0 {
			t.Errorf("%s: no for duration", c.ID)
		}
		if !c.Remediates() {
			t.Errorf("%s: the runbook gives every check a procedure", c.ID)
		}
		steps := c.Ladder.Steps
		if steps[len(steps)-1].Action != ActNotify {
			t.Errorf("%s: ladder does not end by telling the customer: %s", c.ID, c.Ladder.Summary())
		}
		for _, s := range steps {
			if !s.Action.Valid() {
				t.Errorf("%s: unknown action %q", c.ID, s.Action)
			}
			if (s.Action == ActCollect) != (len(s.Collect) > 0) {
				t.Errorf("%s: collect step and command list disagree", c.ID)
			}
			for _, name := range s.Collect {
				if _, ok := CommandByName(name); !ok {
					t.Errorf("%s: unknown command %q", c.ID, name)
				}
			}
			if (s.Action == ActRestart || s.Action == ActConsoleRestart) && c.Service == "" {
				t.Errorf("%s: restarts without a service", c.ID)
			}
		}
	}
	if th, ok := mustCheck(t, "mailq").Threshold(LevelAlert); !ok || th.Value != 200 {
		t.Errorf("mailq threshold = %v, want 200 (the runbook's standard)", th.Value)
	}
}

func TestServicesHaveUnitsForEveryFamily(t *testing.T) {
	for _, s := range Services() {
		if len(s.Processes) == 0 {
			t.Errorf("%s: no process names", s.Name)
		}
		for _, f := range OSFamilies() {
			if s.Unit(f) == "" {
				t.Errorf("%s: no unit on %s", s.Name, f)
			}
		}
	}
	// The runbook's names, and the Debian names it notes.
	for svc, want := range map[string][2]string{
		"httpd": {"httpd", "apache2"}, "mariadb": {"mariadb", "mariadb"},
		"sshd": {"sshd", "ssh"}, "spamd": {"spamassassin", "spamd"},
	} {
		s, _ := ServiceByName(svc)
		if s.Unit(RHEL) != want[0] || s.Unit(Debian) != want[1] {
			t.Errorf("%s units = %v, want %v", svc, s.Units, want)
		}
	}
}

func TestCommandsAreArgvWithOnlyTheirPlaceholders(t *testing.T) {
	for _, c := range Commands() {
		for _, argv := range [][]string{c.Systemd, c.SysV} {
			if len(argv) == 0 {
				t.Errorf("%s: empty argv", c.Name)
			}
			for _, a := range argv {
				if a != UnitPlaceholder && a != QueueIDPlaceholder && strings.ContainsAny(a, "{}$`;|&<>") {
					t.Errorf("%s: argument %q looks like shell or a template", c.Name, a)
				}
			}
		}
	}
}

func TestRegistryCannotBeChangedByCallers(t *testing.T) {
	cs := Checks()
	cs[0].ID = "changed"
	cs[1].Ladder.Steps[0].Action = ActNotify
	if c := Checks(); c[0].ID != "ping" || c[1].Ladder.Steps[0].Action != ActCheck {
		t.Fatal("a caller's change reached the registry")
	}
}

func mustCheck(t *testing.T, id string) Check {
	t.Helper()
	c, ok := CheckByID(id)
	if !ok {
		t.Fatalf("no check %q", id)
	}
	return c
}
