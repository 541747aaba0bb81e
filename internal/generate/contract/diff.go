package contract

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// Diff compares what a producer exported (parsed families) with the
// contract's metrics of the given sources. Every mamori_ family exported
// must be one of them, with the contract's type and labels, and label
// values among its Values. With complete, every one of them but the Lazy
// ones must also be exported, counters and histograms with every
// combination of their Values. It returns one line per difference; none
// when they agree.
func Diff(families map[string]*dto.MetricFamily, complete bool, sources ...Source) []string {
	want := map[string]Metric{}
	for _, s := range sources {
		for _, m := range From(s) {
			want[m.Name] = m
		}
	}
	var diffs []string
	for _, name := range slices.Sorted(maps.Keys(families)) {
		f := families[name]
		if !strings.HasPrefix(name, "mamori_") {
			continue
		}
		m, ok := want[name]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s is exported but not in the contract (sources %v)", name, sources))
			continue
		}
		if got := strings.ToLower(f.GetType().String()); got != string(m.Type) {
			diffs = append(diffs, fmt.Sprintf("%s: type %s, contract says %s", name, got, m.Type))
		}
		wantLabels := slices.Sorted(slices.Values(m.Labels))
		seen := map[string]map[string]bool{}
		for _, metric := range f.GetMetric() {
			var got []string
			for _, lp := range metric.GetLabel() {
				got = append(got, lp.GetName())
				if seen[lp.GetName()] == nil {
					seen[lp.GetName()] = map[string]bool{}
				}
				seen[lp.GetName()][lp.GetValue()] = true
			}
			slices.Sort(got)
			if !slices.Equal(got, wantLabels) {
				diffs = append(diffs, fmt.Sprintf("%s: labels %v, contract says %v", name, got, wantLabels))
				break
			}
		}
		for _, label := range slices.Sorted(maps.Keys(m.Values)) {
			for _, v := range slices.Sorted(maps.Keys(seen[label])) {
				if !slices.Contains(m.Values[label], v) {
					diffs = append(diffs, fmt.Sprintf("%s: %s=%q is none of the contract's values", name, label, v))
				}
			}
			// Counters and histograms start with every combination at 0,
			// so that increase() sees the first event.
			if !complete || m.Type == Gauge {
				continue
			}
			for _, v := range m.Values[label] {
				if !seen[label][v] {
					diffs = append(diffs, fmt.Sprintf("%s: %s=%q not exported from the start", name, label, v))
				}
			}
		}
	}
	if complete {
		for _, name := range slices.Sorted(maps.Keys(want)) {
			if _, ok := families[name]; !ok && !want[name].Lazy {
				diffs = append(diffs, fmt.Sprintf("%s is in the contract but not exported", name))
			}
		}
	}
	return diffs
}
