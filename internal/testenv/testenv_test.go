package testenv

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
)

// recorder is a testing.TB that records how a helper ended the test.
type recorder struct {
	testing.TB
	ended string // "skip" or "fatal"
	msg   string
}

func (r *recorder) Helper() {}

func (r *recorder) Skip(args ...any) { r.end("skip", fmt.Sprint(args...)) }

func (r *recorder) Skipf(format string, args ...any) { r.end("skip", fmt.Sprintf(format, args...)) }

func (r *recorder) Fatalf(format string, args ...any) { r.end("fatal", fmt.Sprintf(format, args...)) }

// end stops the calling goroutine, as the testing package does.
func (r *recorder) end(how, msg string) {
	r.ended, r.msg = how, msg
	runtime.Goexit()
}

func call(f func(testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestRequireIntegration(t *testing.T) {
	for _, tc := range []struct{ integration, ci, want string }{
		{"", "", "skip"},
		{"", "true", "skip"}, // even under CI: the Makefile decides
		{"0", "true", "skip"},
		{"1", "", ""},
		{"1", "true", ""},
	} {
		t.Setenv("MAMORI_INTEGRATION", tc.integration)
		t.Setenv("CI", tc.ci)
		if got := call(func(tb testing.TB) { RequireIntegration(tb) }); got.ended != tc.want {
			t.Errorf("MAMORI_INTEGRATION=%q CI=%q: %q, want %q", tc.integration, tc.ci, got.ended, tc.want)
		}
	}
}

func TestNeed(t *testing.T) {
	for ci, want := range map[string]string{"": "skip", "false": "skip", "1": "skip", "true": "fatal"} {
		t.Setenv("CI", ci)
		got := call(func(tb testing.TB) { Need(tb, "postfix %s", "missing") })
		if got.ended != want {
			t.Errorf("CI=%q: %s, want %s", ci, got.ended, want)
		}
		if want == "fatal" && got.msg != "CI=true and a prerequisite is missing: postfix missing" {
			t.Errorf("CI=true: message %q", got.msg)
		}
		if want == "skip" && got.msg != "postfix missing" {
			t.Errorf("CI=%q: message %q", ci, got.msg)
		}
	}
}

func TestOutputAndFreeAddr(t *testing.T) {
	var o Output
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); o.Write([]byte("x")) }()
	}
	wg.Wait()
	if got := o.String(); got != "xxxxxxxx" {
		t.Errorf("Output %q after 8 concurrent writes", got)
	}
	l, err := net.Listen("tcp", FreeAddr(t))
	if err != nil {
		t.Fatalf("FreeAddr is not free: %v", err)
	}
	l.Close()
}
