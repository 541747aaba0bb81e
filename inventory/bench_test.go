package inventory

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParse200Hosts loads a fleet of 200 hosts, as the central
// prober and the remediator do at start and on every reload.
func BenchmarkParse200Hosts(b *testing.B) {
	var y strings.Builder
	y.WriteString("customers:\n")
	for c := 0; c < 20; c++ {
		fmt.Fprintf(&y, "  - name: c%d\n    plan: plus\n    contacts: [ops@c%d.example]\n    hosts:\n", c, c)
		for h := 0; h < 10; h++ {
			fmt.Fprintf(&y, "      - name: h%d-%d\n        address: 127.0.%d.%d\n        checks:\n          url: {url: \"http://h%d.example/\"}\n          mailq: {thresholds: {alert: 300}}\n", c, h, c, h+1, h)
		}
	}
	data := []byte(y.String())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Parse(data, "fleet.yml"); err != nil {
			b.Fatal(err)
		}
	}
}
