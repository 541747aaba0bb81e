package generate

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/mamori-ops/mamori/internal/generate/contract"
)

// targetLabels are the labels Prometheus and the relabelling put on every
// series, besides a metric's own.
func targetLabels() []string {
	return []string{"job", "instance", contract.LabelCustomer, contract.LabelHost}
}

// checkPromQL parses expr and checks every metric it names against the
// contract, and every label it matches on or groups by against the
// metric's labels and the target labels.
func checkPromQL(expr string) error {
	node, err := parser.ParseExpr(expr)
	if err != nil {
		return err
	}
	var errs []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		switch v := n.(type) {
		case *parser.VectorSelector:
			if err := checkSelector(v); err != nil {
				errs = append(errs, err.Error())
			}
		case *parser.AggregateExpr:
			if v.Without {
				break
			}
			allowed := allowedLabels(v.Expr)
			for _, l := range v.Grouping {
				if !allowed[l] {
					errs = append(errs, fmt.Sprintf("%s groups by %q, which none of its series has", v.Op, l))
				}
			}
		}
		return nil
	})
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func selectorName(v *parser.VectorSelector) string {
	if v.Name != "" {
		return v.Name
	}
	for _, m := range v.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

func checkSelector(v *parser.VectorSelector) error {
	name := selectorName(v)
	if name == "" {
		return fmt.Errorf("selector %s names no metric", v)
	}
	m, ok := contract.Lookup(name)
	if !ok {
		return fmt.Errorf("metric %s is not in the contract (internal/generate/contract)", name)
	}
	allowed := labelsOf(m)
	for _, lm := range v.LabelMatchers {
		if lm.Name == model.MetricNameLabel {
			continue
		}
		if !allowed[lm.Name] && m.Name != "ALERTS" {
			return fmt.Errorf("%s has no label %q", name, lm.Name)
		}
	}
	return nil
}

func labelsOf(m contract.Metric) map[string]bool {
	allowed := map[string]bool{}
	for _, l := range append(append([]string{}, m.Labels...), targetLabels()...) {
		allowed[l] = true
	}
	if m.Type == contract.Histogram {
		allowed["le"] = true
	}
	return allowed
}

// allowedLabels is every label a series under n may carry.
func allowedLabels(n parser.Node) map[string]bool {
	allowed := map[string]bool{}
	parser.Inspect(n, func(c parser.Node, _ []parser.Node) error {
		v, ok := c.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if m, ok := contract.Lookup(selectorName(v)); ok {
			for l := range labelsOf(m) {
				allowed[l] = true
			}
			if m.Name == "ALERTS" {
				for _, l := range []string{"check", "service", "severity", "remediate"} {
					allowed[l] = true
				}
			}
		}
		return nil
	})
	return allowed
}

var grafanaVar = regexp.MustCompile(`\$\{?(\w+)\}?`)

// substituteGrafana replaces Grafana's variables in a query by values
// PromQL accepts: a duration for the interval variables, a string otherwise.
func substituteGrafana(expr string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(v string) string {
		name := strings.Trim(v, "${}")
		if strings.HasPrefix(name, "__") {
			return "5m"
		}
		return "x"
	})
}

var labelValues = regexp.MustCompile(`^label_values\((.*),\s*(\w+)\)$`)

// checkVariableQuery checks a label_values(selector, label) variable query.
func checkVariableQuery(q string) error {
	sm := labelValues.FindStringSubmatch(q)
	if sm == nil {
		return fmt.Errorf("not a label_values(selector, label) query: %s", q)
	}
	expr := substituteGrafana(sm[1])
	if err := checkPromQL(expr); err != nil {
		return err
	}
	node, _ := parser.ParseExpr(expr)
	if !allowedLabels(node)[sm[2]] {
		return fmt.Errorf("%s: the series have no label %q", q, sm[2])
	}
	return nil
}

func TestPromQLCheckCatchesMistakes(t *testing.T) {
	for expr, want := range map[string]string{
		`mamori_probe_success{check="http"} == 0`:                                        "",
		`sum by (le, action) (rate(mamori_remediator_step_duration_seconds_bucket[5m]))`: "",
		`mamori_probe_sucess == 0`:                                                       "not in the contract",
		`mamori_process_up{check="http"}`:                                                `no label "check"`,
		`sum by (servce) (mamori_process_up)`:                                            `groups by "servce"`,
		`{__name__=~"mamori_.*"}`:                                                        "names no metric",
		`rate(mamori_load5[5m]`:                                                          "unclosed",
		`ALERTS{alertstate="firing", remediate="true"}`:                                  "",
		`mamori_load5 / mamori_cpus > on (job, instance) group_left () mamori_threshold{check="load"}`: "",
	} {
		err := checkPromQL(expr)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", expr, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: got %v, want an error with %q", expr, err, want)
		}
	}
	if got := substituteGrafana(`increase(x{host=~"$host", c="${check}"}[$__range])`); got != `increase(x{host=~"x", c="x"}[5m])` {
		t.Errorf("substituteGrafana: %s", got)
	}
}
