package journal

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BenchmarkAccept is one webhook of one alert, from 64 goroutines at once
// (group commit at work).
func BenchmarkAccept(b *testing.B) {
	j, err := OpenSQLite(filepath.Join(b.TempDir(), "j.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	var mu sync.Mutex
	n := 0
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n++
			i := n
			mu.Unlock()
			a := arrival(fmt.Sprint(i), "firing", true)
			if _, err := j.Accept(ctx, []Arrival{a}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStep is a step with one command, begun and ended: four writes.
func BenchmarkStep(b *testing.B) {
	j, err := OpenSQLite(filepath.Join(b.TempDir(), "j.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	got, _ := j.Accept(ctx, []Arrival{arrival("a", "firing", true)})
	id := got[0].IncidentID
	b.ResetTimer()
	for i := range b.N {
		sid, err := j.BeginStep(ctx, Step{IncidentID: id, Index: i, Action: "check", Host: "web1"})
		if err != nil {
			b.Fatal(err)
		}
		code := 0
		cid, _ := j.BeginCommand(ctx, Command{IncidentID: id, StepID: sid, Name: "is_active", Target: "ssh", Line: "systemctl is-active x"})
		_ = j.EndCommand(ctx, Command{ID: cid, ExitCode: &code, Output: "active", FinishedAt: time.Now()})
		_ = j.EndStep(ctx, Step{ID: sid, Outcome: "healthy"})
	}
}
