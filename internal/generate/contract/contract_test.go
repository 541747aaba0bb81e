package contract

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

func TestContractIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range Metrics() {
		if seen[m.Name] {
			t.Errorf("%s listed twice", m.Name)
		}
		seen[m.Name] = true
		if !metricName.MatchString(m.Name) {
			t.Errorf("%s: not a metric name", m.Name)
		}
		if m.Help == "" || m.Type == "" || m.Source == "" {
			t.Errorf("%s: help, type and source are required", m.Name)
		}
		for _, l := range m.Labels {
			if !labelName.MatchString(l) || strings.HasPrefix(l, "__") {
				t.Errorf("%s: label %q", m.Name, l)
			}
			if slices.Contains([]string{"job", "instance", LabelCustomer}, l) {
				t.Errorf("%s: label %q is a target label: it would clash with the one Prometheus sets", m.Name, l)
			}
		}
		for l, vs := range m.Values {
			if !slices.Contains(m.Labels, l) {
				t.Errorf("%s: values for %q, which is not a label", m.Name, l)
			}
			if len(vs) == 0 {
				t.Errorf("%s: no values for %q", m.Name, l)
			}
		}
		// promtool check metrics' naming rules, for what mamori exports.
		if m.Source == Prometheus || m.Source == Alertmanager || m.Source == Recording {
			continue
		}
		if !strings.HasPrefix(m.Name, "mamori_") {
			t.Errorf("%s: not in the mamori_ namespace", m.Name)
		}
		switch {
		case m.Type == Counter && !strings.HasSuffix(m.Name, "_total"):
			t.Errorf("%s: a counter's name ends in _total", m.Name)
		case m.Type != Counter && strings.HasSuffix(m.Name, "_total"):
			t.Errorf("%s: only counters end in _total", m.Name)
		case m.Type == Gauge && (strings.HasSuffix(m.Name, "_count") || strings.HasSuffix(m.Name, "_sum") || strings.HasSuffix(m.Name, "_bucket")):
			t.Errorf("%s: _count, _sum and _bucket belong to histograms and summaries", m.Name)
		}
	}
}

// The remediator's budget metric has its own host label: the remediator's
// target has none, so it survives the scrape unrenamed.
func TestOnlyTheRemediatorNamesAHostLabel(t *testing.T) {
	for _, m := range Metrics() {
		if slices.Contains(m.Labels, LabelHost) && m.Source != Remediator {
			t.Errorf("%s (%s): a host label clashes with the target label", m.Name, m.Source)
		}
	}
}

func TestLookupFindsHistogramSeries(t *testing.T) {
	for name, want := range map[string]bool{
		"mamori_remediator_step_duration_seconds_bucket": true,
		"mamori_remediator_step_duration_seconds_count":  true,
		"mamori_remediator_step_duration_seconds":        true,
		"mamori_load5_bucket":                            false,
		"mamori_probe_success":                           true,
		"mamori_nope":                                    false,
	} {
		if _, ok := Lookup(name); ok != want {
			t.Errorf("Lookup(%s) = %v, want %v", name, ok, want)
		}
	}
}
