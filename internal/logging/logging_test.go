package logging

import (
	"bytes"
	"strings"
	"testing"

	"github.com/go-kit/log/level"
)

func TestLevelsFormatsAndCaller(t *testing.T) {
	var b bytes.Buffer
	l, s, err := New(Config{Level: "warn", Format: "logfmt"}, &b)
	if err != nil {
		t.Fatal(err)
	}
	level.Info(l).Log("msg", "hidden")
	level.Warn(l).Log("msg", "shown")
	s.Info("hidden too")
	s.Error("bridged", "k", "v")
	out := b.String()
	if strings.Contains(out, "hidden") {
		t.Errorf("below-level records written:\n%s", out)
	}
	if !strings.Contains(out, "caller=logging_test.go:") || !strings.Contains(out, "msg=shown") {
		t.Errorf("go-kit record lacks its caller or message:\n%s", out)
	}
	if !strings.Contains(out, "msg=bridged") || !strings.Contains(out, "k=v") {
		t.Errorf("slog record not bridged:\n%s", out)
	}

	b.Reset()
	l, _, _ = New(Config{Level: "debug", Format: "json"}, &b)
	level.Debug(l).Log("msg", "x")
	if !strings.HasPrefix(b.String(), "{") {
		t.Errorf("json format wrote %q", b.String())
	}
	if _, _, err := New(Config{Format: "xml"}, &b); err == nil {
		t.Error("unknown format accepted")
	}
	if _, _, err := New(Config{Level: "loud"}, &b); err == nil {
		t.Error("unknown level accepted")
	}
}
