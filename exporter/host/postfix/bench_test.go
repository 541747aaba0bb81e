package postfix

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"
	"time"
)

// benchSpool writes n queue files in real format, laid out as on a host
// whose mail is stuck: 94% deferred (hashed one level by the first
// character of the ID, as hash_queue_depth = 1 does), 3% hold, 2% active,
// the rest incoming and maildrop. IDs are short queue IDs: five hex digits
// of microseconds, then the inode number in hex.
func benchSpool(b *testing.B, n int) string {
	b.Helper()
	ts := newTestSpool(b)
	now := time.Now()
	for i := range n {
		id := fmt.Sprintf("%05X%X", i*7919%1_000_000, 0xC4400+i)
		var rel string
		switch p := i % 200; {
		case p < 188:
			rel = "deferred/" + id[:1] + "/" + id
		case p < 194:
			rel = "hold/" + id
		case p < 198:
			rel = "active/" + id
		case p < 199:
			rel = "incoming/" + id
		default:
			rel = "maildrop/" + id
		}
		ts.add(rel, now.Add(-time.Duration(n-i)*time.Second))
	}
	ts.age()
	return ts.dir
}

func scanBench(b *testing.B, s *Spool, want int) {
	b.Helper()
	st, err := s.Scan(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	total := 0
	for _, n := range st.Messages {
		total += n
	}
	if total != want || st.Oldest.IsZero() {
		b.Fatalf("scan found %d messages, oldest %v; want %d", total, st.Oldest, want)
	}
}

// BenchmarkScan10k is the cost of a scrape on a queue of 10,000 messages
// that did not change since the last scrape: a stat per directory.
func BenchmarkScan10k(b *testing.B) {
	dir := benchSpool(b, 10_000)
	s := NewSpool(dir)
	scanBench(b, s, 10_000)
	b.ReportAllocs()
	for b.Loop() {
		scanBench(b, s, 10_000)
	}
}

// BenchmarkScan10kBusy moves a message between a deferred hash directory
// and active at every scrape, as qmgr does: both directories are listed
// again (and stay racy, so listed at every scan), no file is read again.
// The two renames are part of the time.
func BenchmarkScan10kBusy(b *testing.B) {
	dir := benchSpool(b, 10_000)
	s := NewSpool(dir)
	scanBench(b, s, 10_000)
	id := fmt.Sprintf("%05X%X", 0, 0xC4400)
	deferred, active := filepath.Join(dir, "deferred", id[:1], id), filepath.Join(dir, "active", id)
	ts := &testSpool{t: b, dir: dir}
	b.ReportAllocs()
	for b.Loop() {
		ts.rename(deferred[len(dir)+1:], active[len(dir)+1:])
		scanBench(b, s, 10_000)
		ts.rename(active[len(dir)+1:], deferred[len(dir)+1:])
	}
}

// BenchmarkScan50kCold is the first scrape after the exporter starts on a
// queue of 50,000 messages: every directory listed, every file's first
// bytes read (from the page cache).
func BenchmarkScan50kCold(b *testing.B) {
	dir := benchSpool(b, 50_000)
	b.ReportAllocs()
	for b.Loop() {
		scanBench(b, NewSpool(dir), 50_000)
	}
}

// BenchmarkList50kCold is the counting part of BenchmarkScan50kCold alone:
// the queue depth, without the arrival times.
func BenchmarkList50kCold(b *testing.B) {
	dir := benchSpool(b, 50_000)
	b.ReportAllocs()
	for b.Loop() {
		s := NewSpool(dir)
		s.gen++
		sc := &scan{now: time.Now()}
		total := 0
		for _, q := range Queues() {
			n, err := s.walk(sc, q, q, 0)
			if err != nil {
				b.Fatal(err)
			}
			total += n
		}
		if total != 50_000 {
			b.Fatalf("listed %d", total)
		}
	}
}

// BenchmarkPlainWalk50k is the yardstick: a plain walk of the five queues
// counting regular files, as filepath.WalkDir does it.
func BenchmarkPlainWalk50k(b *testing.B) {
	dir := benchSpool(b, 50_000)
	b.ReportAllocs()
	for b.Loop() {
		if n := plainWalk(b, dir); n != 50_000 {
			b.Fatalf("walk counted %d", n)
		}
	}
}

func plainWalk(b *testing.B, dir string) int {
	n := 0
	for _, q := range Queues() {
		err := filepath.WalkDir(filepath.Join(dir, q), func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				n++
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return n
}
