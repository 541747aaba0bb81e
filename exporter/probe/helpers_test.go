package probe

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mamori-ops/mamori/inventory"
)

// testConfig is the flags' defaults with args applied.
func testConfig(t testing.TB, args ...string) *Config {
	t.Helper()
	a := kingpin.New("test", "")
	c := AddFlags(a)
	if _, err := a.Parse(args); err != nil {
		t.Fatalf("flags %v: %v", args, err)
	}
	return c
}

// testSettings compiles a test config.
func testSettings(t testing.TB, args ...string) *settings {
	t.Helper()
	s, err := testConfig(t, args...).compile()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// parseInventory loads an inventory from YAML text.
func parseInventory(t testing.TB, yml string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Parse([]byte(yml), "test.yml")
	if err != nil {
		t.Fatalf("inventory: %v", err)
	}
	return inv
}

// testLogger writes to the test's log.
func testLogger(t testing.TB) log.Logger {
	return log.NewLogfmtLogger(log.NewSyncWriter(testWriter{t}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// get requests path from h, with a scrape timeout header when timeout is
// not empty.
func get(t testing.TB, h http.Handler, path, timeout string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if timeout != "" {
		req.Header.Set(scrapeTimeoutHeader, timeout)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// metrics parses an exposition.
func metrics(t testing.TB, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse exposition: %v\n%s", err, body)
	}
	return mfs
}

// valueOf returns the value of name with exactly these labels.
func valueOf(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if len(got) != len(labels)/2 {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if got[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}
