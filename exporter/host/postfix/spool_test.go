package postfix

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testSpool is a queue_directory made by a test.
type testSpool struct {
	t   testing.TB
	dir string
}

func newTestSpool(t testing.TB) *testSpool {
	return &testSpool{t: t, dir: t.TempDir()}
}

// add writes a queue file at rel (e.g. "deferred/A/A1B2C3D4E") arriving at
// the given time, creating its directories.
func (ts *testSpool) add(rel string, arrival time.Time) {
	ts.t.Helper()
	ts.write(rel, queueFile(filepath.Base(rel), arrival))
}

func (ts *testSpool) write(rel string, data []byte) {
	ts.t.Helper()
	p := filepath.Join(ts.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		ts.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o700); err != nil {
		ts.t.Fatal(err)
	}
}

func (ts *testSpool) remove(rel string) {
	ts.t.Helper()
	if err := os.Remove(filepath.Join(ts.dir, rel)); err != nil {
		ts.t.Fatal(err)
	}
}

func (ts *testSpool) rename(from, to string) {
	ts.t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(ts.dir, to)), 0o700); err != nil {
		ts.t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(ts.dir, from), filepath.Join(ts.dir, to)); err != nil {
		ts.t.Fatal(err)
	}
}

// touch sets the mtime of rel, a file or directory.
func (ts *testSpool) touch(rel string, mtime time.Time) {
	ts.t.Helper()
	if err := os.Chtimes(filepath.Join(ts.dir, rel), mtime, mtime); err != nil {
		ts.t.Fatal(err)
	}
}

// age sets the mtime of every directory of the spool an hour back, as on a
// queue that has not changed lately: the scanner may then reuse listings.
func (ts *testSpool) age() {
	ts.t.Helper()
	old := time.Now().Add(-time.Hour)
	err := filepath.WalkDir(ts.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chtimes(p, old, old)
		}
		return err
	})
	if err != nil {
		ts.t.Fatal(err)
	}
}

func scanOK(t testing.TB, s *Spool, now time.Time) Stats {
	t.Helper()
	st, err := s.Scan(now)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// counts is a compact Messages literal: maildrop, incoming, active,
// deferred, hold.
func counts(n ...int) map[string]int {
	m := map[string]int{}
	for i, q := range Queues() {
		m[q] = n[i]
	}
	return m
}

func checkStats(t testing.TB, what string, got Stats, messages map[string]int, oldest time.Time) {
	t.Helper()
	if !maps.Equal(got.Messages, messages) {
		t.Errorf("%s: messages %v, want %v", what, got.Messages, messages)
	}
	if !got.Oldest.Equal(oldest) {
		t.Errorf("%s: oldest %v, want %v", what, got.Oldest.UTC(), oldest.UTC())
	}
}

func TestQueues(t *testing.T) {
	want := "maildrop incoming active deferred hold"
	if got := strings.Join(Queues(), " "); got != want {
		t.Errorf("Queues() = %s, want %s", got, want)
	}
	Queues()[0] = "changed"
	if Queues()[0] != "maildrop" {
		t.Error("Queues() shares its slice")
	}
}

// TestScanFixture scans the real queue files committed in testdata/spool.
func TestScanFixture(t *testing.T) {
	s := NewSpool("testdata/spool")
	now := time.Now()
	want := time.UnixMicro(1795675337_228052) // deferred/3/3980DC45B5
	if want.After(now) {
		t.Fatalf("the clock reads %v, before the fixture was made", now)
	}
	for i := range 2 {
		st := scanOK(t, s, now)
		checkStats(t, fmt.Sprint("scan ", i+1), st, counts(1, 1, 1, 3, 1), want)
	}
}

// TestScanTempSpool covers hashed directories one and two levels deep,
// entries that are not queue files, and changes between scans.
func TestScanTempSpool(t *testing.T) {
	ts := newTestSpool(t)
	base := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	at := func(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }
	ts.add("maildrop/5C2D1C4470", at(9))
	ts.add("incoming/94BC1C4792", at(8))
	ts.add("active/7C2A3C4493", at(7))
	ts.add("deferred/3/3AFF9C45B3", at(1))
	ts.add("deferred/3/3980DC45B5", at(2))
	ts.add("deferred/A/A1B2C3D4E5", at(3))
	ts.add("deferred/F/F00D1C4471", at(4))
	ts.add("hold/1FAE9C45AA", at(5))
	ts.add("hold/C/4/C4FE1C4472", at(6))
	ts.add("hold/C/4/C4AA1C4473", at(10))
	// Not queue files: cleanup's temporary name, a symlink, a deeper level,
	// a directory that is no hash directory, and a file in it.
	ts.write("incoming/241657.31337", queueFile("x", at(0)))
	if err := os.Symlink("3AFF9C45B3", filepath.Join(ts.dir, "deferred/3/3AFF9C45B4")); err != nil {
		t.Fatal(err)
	}
	ts.add("hold/C/4/D/D00D1C4474", at(0))
	ts.add("deferred/lost+found/AB12CD34EF", at(0))
	ts.age()

	s := NewSpool(ts.dir)
	now := time.Now()
	checkStats(t, "first scan", scanOK(t, s, now), counts(1, 1, 1, 4, 3), at(1))
	checkStats(t, "unchanged", scanOK(t, s, now), counts(1, 1, 1, 4, 3), at(1))

	ts.add("deferred/A/A9B8C7D6E5", at(11))
	ts.remove("hold/C/4/C4FE1C4472")
	ts.remove("deferred/3/3AFF9C45B3") // the oldest
	checkStats(t, "after add and removes", scanOK(t, s, now.Add(time.Minute)), counts(1, 1, 1, 4, 2), at(2))

	if err := os.RemoveAll(filepath.Join(ts.dir, "deferred")); err != nil {
		t.Fatal(err)
	}
	checkStats(t, "deferred gone", scanOK(t, s, now.Add(2*time.Minute)), counts(1, 1, 1, 0, 2), at(5))
	if len(s.files) != 5 {
		t.Errorf("cache holds %d files after the deferred queue went, want 5", len(s.files))
	}
}

// TestScanKeepsArrivalAcrossQueues moves a message between queues, in both
// directions of the scan order, under the same queue ID: its arrival time
// is not read again. The moved file's record is rewritten to tell a re-read
// from the cached time.
func TestScanKeepsArrivalAcrossQueues(t *testing.T) {
	ts := newTestSpool(t)
	arrival := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ts.add("deferred/B/B0B0B0B0B0", arrival)
	ts.add("active/C1C1C1C1C1", arrival.Add(time.Hour))
	ts.age()
	s := NewSpool(ts.dir)
	now := time.Now()
	checkStats(t, "before", scanOK(t, s, now), counts(0, 0, 1, 1, 0), arrival)

	ts.rename("deferred/B/B0B0B0B0B0", "active/B0B0B0B0B0") // deferred → active: found first in active
	ts.write("active/B0B0B0B0B0", queueFile("B0B0B0B0B0", arrival.Add(2*time.Hour)))
	checkStats(t, "after deferred → active", scanOK(t, s, now), counts(0, 0, 2, 0, 0), arrival)

	ts.rename("active/B0B0B0B0B0", "hold/B0B0B0B0B0") // active → hold: first gone from active
	checkStats(t, "after active → hold", scanOK(t, s, now), counts(0, 0, 1, 0, 1), arrival)

	ts.remove("hold/B0B0B0B0B0")
	checkStats(t, "after delete", scanOK(t, s, now), counts(0, 0, 1, 0, 0), arrival.Add(time.Hour))
	if _, ok := s.files["B0B0B0B0B0"]; ok {
		t.Error("the deleted message is still cached")
	}
}

// TestScanCountsAMoveDuringTheScanOnce: qmgr renamed a message from active
// to deferred between the two listings, so both hold it (as a hard link
// shows here); it is one message, counted in the queue listed last.
func TestScanCountsAMoveDuringTheScanOnce(t *testing.T) {
	ts := newTestSpool(t)
	arrival := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ts.add("active/B0B0B0B0B0", arrival)
	ts.add("deferred/C/C1C1C1C1C1", arrival)
	if err := os.MkdirAll(filepath.Join(ts.dir, "deferred/B"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(ts.dir, "active/B0B0B0B0B0"), filepath.Join(ts.dir, "deferred/B/B0B0B0B0B0")); err != nil {
		t.Fatal(err)
	}
	s := NewSpool(ts.dir)
	checkStats(t, "mid-move", scanOK(t, s, time.Now()), counts(0, 0, 0, 2, 0), arrival)
	ts.remove("active/B0B0B0B0B0")
	checkStats(t, "move done", scanOK(t, s, time.Now()), counts(0, 0, 0, 2, 0), arrival)
}

// TestScanRacyDirectory changes a directory within the granularity of its
// timestamp: the entry is added and the mtime put back, as happens when the
// change falls in the same clock tick as the listing. A listing taken
// within racyWindow of the directory's mtime is not trusted, so the change
// is seen; an older listing is trusted, so the same trick goes unseen,
// which shows that the listing is really reused.
func TestScanRacyDirectory(t *testing.T) {
	ts := newTestSpool(t)
	ts.add("deferred/A/A1A1A1A1A1", time.Now().Add(-time.Hour))
	now := time.Now()
	s := NewSpool(ts.dir)

	mtime := now.Add(-racyWindow / 2)
	ts.touch("deferred/A", mtime)
	checkMessages(t, "racy listing", scanOK(t, s, now), "deferred", 1)
	ts.add("deferred/A/A2A2A2A2A2", now)
	ts.touch("deferred/A", mtime)
	checkMessages(t, "change within the racy window", scanOK(t, s, now), "deferred", 2)

	// The same, with a listing taken well after the mtime.
	mtime = now.Add(-2 * racyWindow)
	ts.touch("deferred/A", mtime)
	checkMessages(t, "clean listing", scanOK(t, s, now), "deferred", 2)
	ts.add("deferred/A/A3A3A3A3A3", now)
	ts.touch("deferred/A", mtime)
	checkMessages(t, "mtime unchanged", scanOK(t, s, now), "deferred", 2)
	ts.touch("deferred/A", now.Add(-time.Second))
	checkMessages(t, "mtime changed", scanOK(t, s, now), "deferred", 3)
}

func checkMessages(t *testing.T, what string, st Stats, queue string, want int) {
	t.Helper()
	if st.Messages[queue] != want {
		t.Errorf("%s: %s holds %d, want %d", what, queue, st.Messages[queue], want)
	}
}

func TestScanMissingQueues(t *testing.T) {
	for name, dir := range map[string]string{
		"empty spool":   t.TempDir(),
		"missing spool": filepath.Join(t.TempDir(), "nonexistent"),
	} {
		st, err := NewSpool(dir).Scan(time.Now())
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		checkStats(t, name, st, counts(0, 0, 0, 0, 0), time.Time{})
	}
}

func TestScanNotADirectory(t *testing.T) {
	ts := newTestSpool(t)
	ts.write("active", []byte("not a directory"))
	_, err := NewSpool(ts.dir).Scan(time.Now())
	want := "read postfix queue active: stat " + ts.dir + "/active: not a directory"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestScanUnparseableFile: a file without a usable arrival record counts,
// and its mtime stands in for its arrival time.
func TestScanUnparseableFile(t *testing.T) {
	ts := newTestSpool(t)
	mtime := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	ts.write("deferred/E/E0E0E0E0E0", append(record('C', "1"), record('M', "")...))
	ts.touch("deferred/E/E0E0E0E0E0", mtime)
	ts.add("hold/H0H0H0H0H0", mtime.Add(time.Hour))
	ts.age()
	s := NewSpool(ts.dir)
	checkStats(t, "scan", scanOK(t, s, time.Now()), counts(0, 0, 0, 1, 1), mtime)
	if f := s.files["E0E0E0E0E0"]; f == nil || f.kind != arrivalMtime {
		t.Errorf("unparseable file cached as %+v, want its mtime for good", f)
	}
}

// TestScanFileBeingWritten: cleanup(8) may not have flushed the 'T' record
// yet. The file counts with its mtime for now, and is read again at the
// next scan although its directory did not change.
func TestScanFileBeingWritten(t *testing.T) {
	ts := newTestSpool(t)
	arrival := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	mtime := arrival.Add(-time.Hour) // unrealistic, to tell it from the arrival
	whole := queueFile("I0I0I0I0I0", arrival)
	ts.write("incoming/I0I0I0I0I0", whole[:40])
	ts.touch("incoming/I0I0I0I0I0", mtime)
	ts.age()
	s := NewSpool(ts.dir)
	now := time.Now()
	checkStats(t, "partly written", scanOK(t, s, now), counts(0, 1, 0, 0, 0), mtime)

	// Completing the file leaves the directory's mtime alone.
	fi, err := os.Stat(filepath.Join(ts.dir, "incoming"))
	if err != nil {
		t.Fatal(err)
	}
	ts.write("incoming/I0I0I0I0I0", whole)
	ts.touch("incoming", fi.ModTime())
	checkStats(t, "written", scanOK(t, s, now), counts(0, 1, 0, 0, 0), arrival)
	if d := s.dirs["incoming"]; d == nil || !d.trusted {
		t.Error("incoming is not trusted once its file was read")
	}
}

// TestScanFileVanishes removes and moves files between the listings and
// the reading of the files, as Postfix does at any moment: no error.
func TestScanFileVanishes(t *testing.T) {
	ts := newTestSpool(t)
	t1 := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	ts.add("deferred/D/D1D1D1D1D1", t1)
	ts.add("deferred/D/D2D2D2D2D2", t1.Add(time.Minute))
	ts.add("active/A3A3A3A3A3", t1.Add(2*time.Minute))
	ts.age()
	s := NewSpool(ts.dir)
	s.afterList = func() {
		ts.remove("deferred/D/D1D1D1D1D1")                      // delivered
		ts.rename("deferred/D/D2D2D2D2D2", "active/D2D2D2D2D2") // picked by qmgr
	}
	now := time.Now()
	// The listing saw three files; only active/A3 could be read.
	checkStats(t, "during the moves", scanOK(t, s, now), counts(0, 0, 1, 2, 0), t1.Add(2*time.Minute))
	s.afterList = nil
	checkStats(t, "next scan", scanOK(t, s, now), counts(0, 0, 2, 0, 0), t1.Add(time.Minute))
	if _, ok := s.files["D1D1D1D1D1"]; ok {
		t.Error("the delivered message is still cached")
	}
}

// TestScanOldestNotAfterNow: an arrival after now (a clock step back) reads
// as now, never as a negative age.
func TestScanOldestNotAfterNow(t *testing.T) {
	ts := newTestSpool(t)
	now := time.Now()
	ts.add("active/A1A1A1A1A1", now.Add(time.Hour))
	checkStats(t, "scan", scanOK(t, NewSpool(ts.dir), now), counts(0, 0, 1, 0, 0), now)
}

// TestScanConcurrent runs scans from several goroutines (go test -race)
// while the queue changes.
func TestScanConcurrent(t *testing.T) {
	ts := newTestSpool(t)
	for i := range 20 {
		h := "ABCD"[i%4]
		ts.add(fmt.Sprintf("deferred/%c/%c%09X", h, h, i), time.Now())
	}
	s := NewSpool(ts.dir)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				if _, err := s.Scan(time.Now()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 10 {
		ts.add(fmt.Sprintf("active/F%09X", i), time.Now())
	}
	wg.Wait()
	checkMessages(t, "after", scanOK(t, s, time.Now()), "active", 10)
	checkMessages(t, "after", scanOK(t, s, time.Now()), "deferred", 20)
}

func TestScanErrorResetsCache(t *testing.T) {
	ts := newTestSpool(t)
	ts.add("active/A1A1A1A1A1", time.Now())
	s := NewSpool(ts.dir)
	scanOK(t, s, time.Now())
	ts.remove("active/A1A1A1A1A1")
	ts.write("deferred", nil)
	if _, err := s.Scan(time.Now()); err == nil {
		t.Fatal("no error with a file for a queue directory")
	}
	if len(s.dirs) != 0 || len(s.files) != 0 {
		t.Errorf("cache not reset: %d dirs, %d files", len(s.dirs), len(s.files))
	}
	ts.remove("deferred")
	checkStats(t, "after the error", scanOK(t, s, time.Now()), counts(0, 0, 0, 0, 0), time.Time{})
}
