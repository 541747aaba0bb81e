package procs

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	g := &Governor{Raise: 0.5, Lower: 0.25, LowerAfter: 3}
	const dflt = 4 // the runtime's default, in this test
	s := state{procs: 1}
	// CPU use in each interval, and the Ps in force after it.
	steps := []struct {
		use  float64
		want int
	}{
		{0.1, 1}, {0.4, 1}, // under Raise: one P
		{0.6, dflt},                           // busy: the default at once
		{0.3, dflt}, {0.1, dflt}, {0.2, dflt}, // two quiet intervals
		{0.3, dflt},                        // between the thresholds: not quiet
		{0.1, dflt}, {0.1, dflt}, {0.1, 1}, // three in a row: one P
		{0.45, 1},
	}
	for i, st := range steps {
		if want, change := g.decide(&s, st.use); change {
			if s.procs = want; want == 0 {
				s.procs = dflt
			}
		}
		if s.procs != st.want {
			t.Fatalf("step %d (use %.2f): %d Ps, want %d", i, st.use, s.procs, st.want)
		}
	}
}

// TestGovernorFollowsLoad runs the governor on this process: one P while
// idle, the default under load, one P again when the load is gone, and
// the default once it stops. The thresholds are low so that a busy test
// machine, where the burner gets a fraction of a CPU, still raises them.
func TestGovernorFollowsLoad(t *testing.T) {
	if !Enabled() {
		t.Skip("GOMAXPROCS is set in the environment, or the default is one P: the governor does not run")
	}
	// The governor returns to the runtime's default, whatever go test -cpu set.
	start := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(start) })
	runtime.SetDefaultGOMAXPROCS()
	dflt := runtime.GOMAXPROCS(0)
	g := New(nil)
	g.Interval, g.Raise, g.Lower, g.LowerAfter = 20*time.Millisecond, 0.1, 0.05, 3
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { g.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()

	waitFor := func(what string, ok func(int) bool) {
		t.Helper()
		for i := 0; i < 500; i++ {
			if ok(runtime.GOMAXPROCS(0)) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("GOMAXPROCS is %d after 5s, want %s", runtime.GOMAXPROCS(0), what)
	}
	waitFor("1 while idle", func(n int) bool { return n == 1 })

	var burn atomic.Bool
	burn.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for x := 0; burn.Load(); x++ {
		}
	}()
	waitFor("the default under load", func(n int) bool { return n == dflt })
	burn.Store(false)
	<-done
	waitFor("1 once the load is gone", func(n int) bool { return n == 1 })

	cancel()
	<-stopped
	if n := runtime.GOMAXPROCS(0); n != dflt {
		t.Errorf("GOMAXPROCS %d after the governor stopped, want the default %d", n, dflt)
	}
}

func TestProcessCPUAdvances(t *testing.T) {
	before, err := processCPU()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for x := 0; time.Now().Before(deadline); x++ {
		if after, _ := processCPU(); after > before {
			return
		}
	}
	t.Fatal("the process's CPU time did not advance in 5s of busy loop")
}
