package generate

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mamori-ops/mamori/internal/generate/contract"
	"github.com/mamori-ops/mamori/runbook"
)

// docsURL is the README the alerts' runbook_url annotations point into;
// each alert has a section there whose anchor is its lower-cased name.
const docsURL = "https://github.com/mamori-ops/mamori/blob/main/README.md"

// Rule groups, in the files under rules/.
const (
	groupChecks = "mamori-checks"
	groupStatus = "mamori-status"
	groupSelf   = "mamori-self"
)

// checkOK is the recorded series that says, per host and check, whether
// the check passes now: the dashboards' status grid reads it.
const checkOK = "mamori:check_ok"

// alertRule is one alerting rule with its documentation and the promtool
// cases that prove it. Nothing here is written twice: the rule file, its
// tests and the README section are all rendered from this value.
type alertRule struct {
	Group       string
	Name        string
	Expr        string
	For         time.Duration
	Labels      map[string]string
	Summary     string // Prometheus template
	Description string // Prometheus template

	// Check is the registry check the alert watches; nil for the alerts on
	// mamori itself.
	Check *runbook.Check
	// Meaning, Threshold and Action document the alert in the README.
	Meaning   string
	Threshold string
	Action    string

	Tests []ruleTest
}

// recordingRule is one recording rule with its tests.
type recordingRule struct {
	Record string
	Expr   string
	Labels map[string]string
	Tests  []ruleTest
}

// ruleTest is a promtool test group: input series and what must hold at
// given times.
type ruleTest struct {
	Name   string
	Series []inputSeries
	Evals  []ruleEval
}

type inputSeries struct {
	Name   string
	Labels map[string]string
	Values string
}

// ruleEval expects, at At, exactly the alerts Fire (none when empty) and,
// for a recording rule, the samples Samples.
type ruleEval struct {
	At      time.Duration
	Fire    []firing
	Samples []firing
}

// firing is one alert expected to fire (or one expected sample): the series
// labels it carries besides the rule's own, and its value.
type firing struct {
	Labels map[string]string
	Value  float64
}

// testHost() is the host the generated tests use; testOther() is a healthy host
// beside it, so that a test also proves the rule picks the right one.
func testHost() map[string]string {
	return map[string]string{"customer": "acme", "host": "web1.acme.example", "instance": "web1.acme.example"}
}

func testOther() map[string]string {
	return map[string]string{"customer": "kobayashi", "host": "mail.kobayashi.example", "instance": "mail.kobayashi.example"}
}

// target returns the target labels of a host-role or probe-role series.
func target(job string, host map[string]string, extra ...string) map[string]string {
	l := map[string]string{"job": job}
	for k, v := range host {
		l[k] = v
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] != "" {
			l[extra[i]] = extra[i+1]
		}
	}
	return l
}

// measure says how a host check that compares a value with its threshold
// reads the value.
type measure struct {
	// Value is the PromQL expression of the value, labelled by target,
	// with %[1]s where a selector's matchers go (see value).
	Value string
	// Many is true when Value has several series per host (filesystems).
	Many bool
	// Noun names the value in annotations; it may use $labels.
	Noun string
	// What names the value in the README.
	What string
	// Format renders $value in a template ("printf \"%.2f\"").
	Format string
	// Doc renders a default threshold for the README.
	Doc func(float64) string
	// Unit is the Grafana unit of the value.
	Unit string
	// Series builds test input: the value's series for one host, at a level
	// above (high) or below the default threshold; fire lists the labels
	// of the alerts expected when high, with the value they carry.
	Series func(job string, host map[string]string, high bool) (in []inputSeries, fire []firing)
}

// value is the measure's expression with matchers ("", or `{host="$host"}`)
// on each of its selectors.
func (m measure) value(matchers string) string { return fmt.Sprintf(m.Value, matchers) }

// measures maps each registry check that has thresholds to how it is read.
// A check with thresholds but no measure stops the generator.
func measures() map[string]measure {
	pct := func(v float64) string { return fmt.Sprintf("%g%%", v*100) }
	return map[string]measure{
		"load": {
			Value:  `mamori_load5%[1]s / mamori_cpus%[1]s`,
			Noun:   "the 5-minute load average per online CPU",
			What:   "The 5-minute load average per online CPU",
			Format: `printf "%.2f"`,
			Doc:    func(v float64) string { return fmt.Sprintf("%g per CPU", v) },
			Unit:   "short",
			Series: func(job string, h map[string]string, high bool) ([]inputSeries, []firing) {
				load := "1+0x30"
				if high {
					load = "6+0x30"
				}
				return []inputSeries{
					{"mamori_load5", target(job, h), load},
					{"mamori_cpus", target(job, h), "2+0x30"},
				}, []firing{{Labels: target(job, h), Value: 3}}
			},
		},
		"swap": {
			// clamp_min: a host without swap has 0 in use, not 0/0.
			Value:  `(mamori_swap_total_bytes%[1]s - mamori_swap_free_bytes%[1]s) / clamp_min(mamori_swap_total_bytes%[1]s, 1)`,
			Noun:   "the share of swap in use",
			What:   "The share of swap in use",
			Format: `humanizePercentage`,
			Doc:    pct,
			Unit:   "percentunit",
			Series: func(job string, h map[string]string, high bool) ([]inputSeries, []firing) {
				free := "900+0x30"
				if high {
					free = "200+0x30"
				}
				return []inputSeries{
					{"mamori_swap_total_bytes", target(job, h), "1000+0x30"},
					{"mamori_swap_free_bytes", target(job, h), free},
				}, []firing{{Labels: target(job, h), Value: 0.8}}
			},
		},
		"disk": {
			Value:  `mamori_filesystem_used_ratio%[1]s`,
			Many:   true,
			Noun:   "the share of {{ $labels.mountpoint }} ({{ $labels.device }}) in use",
			What:   "The share of a filesystem in use, as df computes it,",
			Format: `humanizePercentage`,
			Doc:    pct,
			Unit:   "percentunit",
			Series: func(job string, h map[string]string, high bool) ([]inputSeries, []firing) {
				varRatio := "0.5+0x30"
				if high {
					varRatio = "0.95+0x30"
				}
				fsVar := target(job, h, "mountpoint", "/var", "device", "/dev/sda2", "fstype", "ext4")
				return []inputSeries{
					{"mamori_filesystem_used_ratio", target(job, h, "mountpoint", "/", "device", "/dev/sda1", "fstype", "xfs"), "0.4+0x30"},
					{"mamori_filesystem_used_ratio", fsVar, varRatio},
				}, []firing{{Labels: fsVar, Value: 0.95}}
			},
		},
		"mailq": {
			Value:  `sum without (queue) (mamori_mailq_messages%[1]s)`,
			Noun:   "the number of messages in the Postfix queues",
			What:   "The number of messages in the Postfix queues",
			Format: `printf "%.0f"`,
			Doc:    func(v float64) string { return fmt.Sprintf("%g messages", v) },
			Unit:   "short",
			Series: func(job string, h map[string]string, high bool) ([]inputSeries, []firing) {
				deferred := "20+0x30"
				if high {
					deferred = "150+0x30"
				}
				return []inputSeries{
					{"mamori_mailq_messages", target(job, h, "queue", "active"), "100+0x30"},
					{"mamori_mailq_messages", target(job, h, "queue", "deferred"), deferred},
				}, []firing{{Labels: target(job, h), Value: 250}}
			},
		},
	}
}

// alertName is the alert of a registry check: MamoriHttpDown, MamoriLoadHigh.
func alertName(c runbook.Check) string {
	suffix := "Down"
	if len(c.Thresholds) > 0 {
		suffix = "High"
	}
	return "Mamori" + strings.ToUpper(c.ID[:1]) + c.ID[1:] + suffix
}

// hostDownAlert is the alert that says a host is unreachable: the check
// that pings. It inhibits the host's other alerts.
func hostDownAlert() (string, error) {
	for _, c := range runbook.Checks() {
		if c.Protocol == runbook.ICMP {
			return alertName(c), nil
		}
	}
	return "", fmt.Errorf("the registry has no ICMP check to tell that a host is down")
}

func runbookURL(name string) string { return docsURL + "#" + strings.ToLower(name) }

// promDuration renders a duration as Prometheus writes it: 1m, 5m, 90s.
func promDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	default:
		return fmt.Sprintf("%ds", d/time.Second)
	}
}

// checkRules returns one alert per registry check, plus the certificate
// expiry alert of the TLS checks, and the recording rules of the status grid.
func checkRules() ([]alertRule, []recordingRule, error) {
	var alerts []alertRule
	var records []recordingRule
	ms := measures()
	for _, c := range runbook.Checks() {
		c := c
		var a alertRule
		var r recordingRule
		switch {
		case c.Kind == runbook.Probe:
			a, r = probeRule(c)
		case len(c.Thresholds) > 0:
			m, ok := ms[c.ID]
			if !ok {
				return nil, nil, fmt.Errorf("check %s has thresholds but the generator does not know how to read its value (measures)", c.ID)
			}
			if _, ok := c.Threshold(runbook.LevelAlert); !ok {
				return nil, nil, fmt.Errorf("check %s has thresholds but no %q level", c.ID, runbook.LevelAlert)
			}
			a, r = thresholdRule(c, m)
		case c.Service != "":
			a, r = processRule(c)
		default:
			return nil, nil, fmt.Errorf("check %s: neither a probe, a threshold nor a service", c.ID)
		}
		a.Group, a.Check = groupChecks, &c
		a.Name = alertName(c)
		a.For, a.Labels = c.For, checkLabels(c)
		a.Action = remediation(c)
		alerts = append(alerts, a)
		records = append(records, r)
	}
	alerts = append(alerts, certificateRule())
	return alerts, records, nil
}

func checkLabels(c runbook.Check) map[string]string {
	l := map[string]string{contract.LabelCheck: c.ID, "severity": c.Severity}
	if c.Service != "" {
		l[contract.LabelService] = c.Service
	}
	if c.Remediates() {
		l["remediate"] = "true"
	}
	return l
}

func remediation(c runbook.Check) string {
	if !c.Remediates() {
		return "Nothing: the alert goes to the operators."
	}
	return "Alertmanager hands the alert to mamori_remediator, which runs the ladder " + c.Ladder.Summary() + "."
}

// sel renders a selector: metric{k="v",...} with the matchers in order.
func sel(metric string, kv ...string) string {
	var m []string
	for i := 0; i+1 < len(kv); i += 2 {
		m = append(m, fmt.Sprintf("%s=%q", kv[i], kv[i+1]))
	}
	return metric + "{" + strings.Join(m, ", ") + "}"
}

// failingTests are the cases every check alert gets: it fires after its
// for: duration on the failing host only, not before, not on a healthy host,
// and not after one bad sample among good ones.
func failingTests(c runbook.Check, name string, bad, good func(h map[string]string) []inputSeries, fire []firing) []ruleTest {
	forD := c.For
	// bad and good list the same series in the same order, with values
	// that differ where the check fails.
	var blip []inputSeries
	b, g := bad(testHost()), good(testHost())
	for i, s := range b {
		if s.Values != g[i].Values {
			s.Values = blipOf(g[i].Values, s.Values)
		}
		blip = append(blip, s)
	}
	return []ruleTest{
		{
			Name:   name + " fires on the failing host after " + promDuration(forD),
			Series: append(bad(testHost()), good(testOther())...),
			Evals: []ruleEval{
				{At: forD - time.Minute},
				{At: forD, Fire: fire},
				{At: forD + 5*time.Minute, Fire: fire},
			},
		},
		{
			Name:   name + " stays quiet while the check passes",
			Series: append(good(testHost()), good(testOther())...),
			Evals:  []ruleEval{{At: forD + 5*time.Minute}},
		},
		{
			Name:   name + " does not page on one bad sample",
			Series: blip,
			Evals:  []ruleEval{{At: 2 * time.Minute}, {At: 2*time.Minute + forD}, {At: 3*time.Minute + forD}},
		},
	}
}

// blipOf is a good series with a single bad sample at the third interval.
func blipOf(good, bad string) string {
	first := func(v string) string { return strings.SplitN(v, "+", 2)[0] }
	return fmt.Sprintf("%s %s %s %s", first(good), first(good), first(bad), good)
}

func probeRule(c runbook.Check) (alertRule, recordingRule) {
	port := ""
	if c.Port != 0 {
		port = fmt.Sprint(c.Port)
	} else if c.Protocol == runbook.HTTP {
		port = "443"
	}
	name := alertName(c)
	series := func(v string) func(h map[string]string) []inputSeries {
		return func(h map[string]string) []inputSeries {
			return []inputSeries{{"mamori_probe_success", target(contract.JobProbe, h, "check", c.ID, "port", port), v + "+0x30"}}
		}
	}
	labels := target(contract.JobProbe, testHost(), "check", c.ID, "port", port)
	a := alertRule{
		Expr:    sel("mamori_probe_success", "check", c.ID) + " == 0",
		Summary: fmt.Sprintf("%s down on {{ $labels.host }}", c.Title),
		Description: fmt.Sprintf("The %s check of {{ $labels.host }} (customer {{ $labels.customer }})"+
			" has failed from outside{{ with $labels.port }} on port {{ . }}{{ end }} for %s."+
			" It watches %s with: %s. %s",
			c.Title, promDuration(c.For), c.Watches, c.Measures, remediation(c)),
		Meaning: fmt.Sprintf("The central prober's %s dialogue with the host failed (%s); "+
			"`mamori_probe_failure{reason}` says why.", c.Protocol, c.Measures),
		Threshold: "`mamori_probe_success` is 0",
	}
	if c.Protocol == runbook.ICMP {
		a.Meaning = "The host does not answer ICMP echo from the central prober: it is down or unreachable. " +
			"While this alert fires, Alertmanager holds back the host's other alerts."
	}
	a.Tests = failingTests(c, name, series("0"), series("1"), []firing{{Labels: labels, Value: 0}})
	r := recordingRule{
		Record: checkOK,
		Expr:   "min without (port) (" + sel("mamori_probe_success", "check", c.ID) + ")",
		Labels: map[string]string{contract.LabelCheck: c.ID},
	}
	r.Tests = statusTests(series("0"), series("1"), target(contract.JobProbe, testHost(), "check", c.ID), target(contract.JobProbe, testOther(), "check", c.ID))
	return a, r
}

func processRule(c runbook.Check) (alertRule, recordingRule) {
	name := alertName(c)
	series := func(v string) func(h map[string]string) []inputSeries {
		return func(h map[string]string) []inputSeries {
			return []inputSeries{{"mamori_process_up", target(contract.JobHost, h, "service", c.Service), v + "+0x30"}}
		}
	}
	labels := target(contract.JobHost, testHost(), "service", c.Service)
	a := alertRule{
		Expr:    sel("mamori_process_up", "service", c.Service) + " == 0",
		Summary: fmt.Sprintf("%s: %s not running on {{ $labels.host }}", c.Title, c.Service),
		Description: fmt.Sprintf("No live %s process (%s) has run on {{ $labels.host }} (customer {{ $labels.customer }}) for %s. %s",
			c.Service, c.Watches, promDuration(c.For), remediation(c)),
		Meaning: fmt.Sprintf("No live process of the service `%s` (%s) runs on the host; "+
			"zombies do not count.", c.Service, c.Measures),
		Threshold: "`mamori_process_up` is 0",
	}
	a.Tests = failingTests(c, name, series("0"), series("1"), []firing{{Labels: labels, Value: 0}})
	r := recordingRule{
		Record: checkOK,
		Expr:   "max without (service) (" + sel("mamori_process_up", "service", c.Service) + ")",
		Labels: map[string]string{contract.LabelCheck: c.ID},
	}
	strip := func(h map[string]string) map[string]string {
		l := target(contract.JobHost, h)
		l[contract.LabelCheck] = c.ID
		return l
	}
	r.Tests = statusTests(series("0"), series("1"), strip(testHost()), strip(testOther()))
	return a, r
}

// thresholdSelector is the threshold a check's value is compared with.
func thresholdSelector(c runbook.Check) string {
	return sel("mamori_threshold", "check", c.ID, "level", string(runbook.LevelAlert))
}

// thresholdJoin matches a value with its host's threshold. group_left keeps
// every label of the value (filesystem, target labels); a plain on (...)
// would keep only job and instance.
const thresholdJoin = "on (job, instance) group_left ()"

func thresholdRule(c runbook.Check, m measure) (alertRule, recordingRule) {
	name := alertName(c)
	th, _ := c.Threshold(runbook.LevelAlert)
	thSeries := func(h map[string]string, v float64) []inputSeries {
		s := []inputSeries{{"mamori_threshold", target(contract.JobHost, h, "check", c.ID, "level", string(runbook.LevelAlert)),
			fmt.Sprintf("%g+0x30", v)}}
		// The other levels of the check sit beside it, lower, as the exporter
		// exports them: the rule must compare with the alert level only.
		for _, t := range c.Thresholds {
			if t.Level != runbook.LevelAlert {
				s = append(s, inputSeries{"mamori_threshold", target(contract.JobHost, h, "check", c.ID, "level", string(t.Level)),
					fmt.Sprintf("%g+0x30", th.Value/10)})
			}
		}
		return s
	}
	bad := func(h map[string]string) []inputSeries {
		in, _ := m.Series(contract.JobHost, h, true)
		return append(in, thSeries(h, th.Value)...)
	}
	good := func(h map[string]string) []inputSeries {
		in, _ := m.Series(contract.JobHost, h, false)
		return append(in, thSeries(h, th.Value)...)
	}
	_, fire := m.Series(contract.JobHost, testHost(), true)
	value := "{{ $value | " + m.Format + " }}"
	a := alertRule{
		Expr:    fmt.Sprintf("%s > %s %s", m.value(""), thresholdJoin, thresholdSelector(c)),
		Summary: fmt.Sprintf("%s: %s on {{ $labels.host }}", c.Title, value),
		Description: fmt.Sprintf("On {{ $labels.host }} (customer {{ $labels.customer }}), %s has stayed above the host's "+
			"alert threshold (%s, default %s) for %s; it is %s now. %s",
			m.Noun, thresholdSelector(c), m.Doc(th.Value), promDuration(c.For), value, remediation(c)),
		Meaning: m.What + " is above the host's threshold.",
		Threshold: fmt.Sprintf("above `%s`: default %s, set per host in the inventory (`checks.%s.thresholds.alert`)",
			thresholdSelector(c), m.Doc(th.Value), c.ID),
	}
	a.Tests = failingTests(c, name, bad, good, fire)
	// A host whose inventory raises the threshold stays quiet at the value
	// that fires elsewhere: no rule edit is needed for a per-host change.
	raised := func(h map[string]string) []inputSeries {
		in, _ := m.Series(contract.JobHost, h, true)
		return append(in, thSeries(h, 1000*th.Value)...)
	}
	unset := func(h map[string]string) []inputSeries {
		in, _ := m.Series(contract.JobHost, h, true)
		return in
	}
	a.Tests = append(a.Tests,
		ruleTest{
			Name:   name + " follows the host's own threshold",
			Series: raised(testHost()),
			Evals:  []ruleEval{{At: c.For + 5*time.Minute}},
		},
		ruleTest{
			Name:   name + " stays quiet where the check is off (no threshold exported)",
			Series: unset(testHost()),
			Evals:  []ruleEval{{At: c.For + 5*time.Minute}},
		})
	ok := fmt.Sprintf("%s <= bool %s %s", m.value(""), thresholdJoin, thresholdSelector(c))
	if m.Many {
		ok = "min without (mountpoint, device, fstype) (" + ok + ")"
	}
	r := recordingRule{Record: checkOK, Expr: ok, Labels: map[string]string{contract.LabelCheck: c.ID}}
	strip := func(h map[string]string) map[string]string {
		l := target(contract.JobHost, h)
		l[contract.LabelCheck] = c.ID
		return l
	}
	r.Tests = statusTests(bad, good, strip(testHost()), strip(testOther()))
	return a, r
}

// statusTests prove a check's mamori:check_ok: 0 on the failing host, 1 on
// the healthy one.
func statusTests(bad, good func(map[string]string) []inputSeries, badLabels, goodLabels map[string]string) []ruleTest {
	return []ruleTest{{
		Name:   checkOK + "{check=\"" + badLabels[contract.LabelCheck] + "\"} is 0 on a failing host, 1 on a healthy one",
		Series: append(bad(testHost()), good(testOther())...),
		Evals: []ruleEval{{At: 10 * time.Minute, Samples: []firing{
			{Labels: badLabels, Value: 0}, {Labels: goodLabels, Value: 1},
		}}},
	}}
}

// certificateRule warns before a certificate a TLS check sees expires. It
// is not a check of the runbook: it goes to the operators, not to the
// remediator, which could not renew a certificate anyway.
func certificateRule() alertRule {
	const name = "MamoriTLSCertificateExpiring"
	var tlsChecks []string
	for _, c := range runbook.Checks() {
		if c.TLS {
			tlsChecks = append(tlsChecks, c.ID)
		}
	}
	lbl := target(contract.JobProbe, testHost(), "check", "https", "port", "443")
	other := target(contract.JobProbe, testOther(), "check", "https", "port", "443")
	return alertRule{
		Group:  groupChecks,
		Name:   name,
		Expr:   "mamori_tls_cert_expiry_timestamp_seconds - time() < 14 * 86400",
		For:    time.Hour,
		Labels: map[string]string{"severity": "warning"},
		Summary: "TLS certificate of {{ $labels.host }} port {{ $labels.port }} expires in " +
			"{{ $value | humanizeDuration }}",
		Description: "The certificate that {{ $labels.host }} (customer {{ $labels.customer }}) presents to the " +
			"{{ $labels.check }} check on port {{ $labels.port }} expires in {{ $value | humanizeDuration }}. " +
			"Renew it: the remediator does not act on certificates.",
		Meaning: "A certificate seen by a TLS check (" + strings.Join(tlsChecks, ", ") +
			") expires in less than 14 days.",
		Threshold: "expiry less than 14 days away",
		Action:    "Nothing: the alert goes to the operators.",
		Tests: []ruleTest{
			{
				Name: name + " fires when a certificate expires within 14 days",
				Series: []inputSeries{
					{"mamori_tls_cert_expiry_timestamp_seconds", lbl, "1000000+0x90"},
					{"mamori_tls_cert_expiry_timestamp_seconds", other, "100000000+0x90"},
				},
				Evals: []ruleEval{
					{At: 30 * time.Minute},
					{At: time.Hour, Fire: []firing{{Labels: lbl, Value: 1000000 - 3600}}},
				},
			},
			{
				Name:   name + " stays quiet for a certificate valid for months",
				Series: []inputSeries{{"mamori_tls_cert_expiry_timestamp_seconds", other, "100000000+0x90"}},
				Evals:  []ruleEval{{At: 90 * time.Minute}},
			},
		},
	}
}

// sortedKeys returns a map's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
