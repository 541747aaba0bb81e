package generate

import (
	"fmt"
	"strings"

	"github.com/mamori-ops/mamori/runbook"
)

// checkTable is the README's table of checks: one row per registry check.
func checkTable() string {
	var b strings.Builder
	b.WriteString("| check | plan | kind | what is measured | default threshold | what the remediator does |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, c := range runbook.Checks() {
		where := "on the host"
		if c.Kind == runbook.Probe {
			where = "from outside"
			if c.Port != 0 {
				where += fmt.Sprintf(", %s/%d", c.Protocol, c.Port)
			} else {
				where += ", " + string(c.Protocol)
			}
			if c.TLS {
				where += " (TLS)"
			}
		}
		var th []string
		for _, t := range c.Thresholds {
			s := fmt.Sprintf("%s %g", t.Level, t.Value)
			if t.Off {
				s += " (off unless set)"
			}
			th = append(th, s)
		}
		thresholds := strings.Join(th, ", ")
		if thresholds == "" {
			thresholds = "–"
		}
		measured := c.Measures
		if c.Service != "" {
			measured += fmt.Sprintf(" (service `%s`)", c.Service)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n",
			c.ID, c.Plan, where, measured, thresholds, c.Ladder.Summary())
	}
	return b.String()
}
