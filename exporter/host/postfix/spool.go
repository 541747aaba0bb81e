// Package postfix reads the depth of Postfix's queues and the arrival time
// of the oldest queued message straight from the spool, as showq(8) does
// for mailq, but without forking and without reading what has not changed:
// a scrape costs one stat per queue and hash directory, plus a listing of
// the directories that changed and the first bytes of each new queue file.
// Linux only: it lists directories with getdents(2).
package postfix

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Queues returns the five queue names in this order: maildrop, incoming,
// active, deferred, hold.
func Queues() []string {
	return []string{"maildrop", "incoming", "active", "deferred", "hold"}
}

// Stats is one reading of the queues.
type Stats struct {
	// Messages holds every queue of Queues(), 0 when it is empty or its
	// directory is missing.
	Messages map[string]int
	// Oldest is the arrival time of the oldest message, never after the
	// scan's now; zero when the queues are empty.
	Oldest time.Time
}

const (
	// racyWindow: a directory listed within this time of its mtime may
	// change again without its mtime changing, because timestamps are
	// coarse (a kernel tick on ext4, 1 s or 2 s elsewhere). Such a listing
	// is not reused, as git distrusts racily clean index entries.
	racyWindow = 2 * time.Second
	// maxHashDepth is the deepest hash_queue_depth supported: deferred/A/B/ID.
	maxHashDepth = 2
	// A scan with at least parallelReads new queue files (a cold start)
	// reads them on up to maxReaders goroutines: opening a file costs
	// microseconds of system time, and the queue may hold 50,000.
	parallelReads = 256
	maxReaders    = 4
)

// Spool scans the queues under one Postfix queue_directory and caches what
// it read. It is safe for concurrent use; scans run one at a time.
type Spool struct {
	dir string

	mu    sync.Mutex
	gen   uint64                // scans so far
	dirs  map[string]*dirState  // by path below dir: "deferred", "deferred/A"
	files map[string]*fileState // by queue ID, shared by all queues: a message keeps its ID when it moves
	buf   []byte                // getdents buffer

	// afterList, when set by a test, runs between the listings and the
	// reading of new queue files.
	afterList func()
}

// dirState is the cached listing of one queue or hash directory.
type dirState struct {
	queue   string
	path    string
	mtime   unix.Timespec
	dev     uint64
	ino     uint64
	trusted bool         // the listing stands while mtime, dev and ino do
	files   []*fileState // queue files directly inside
	subdirs []string     // hash subdirectories, as keys of Spool.dirs
	oldest  int64        // earliest known arrival of files, µs since the epoch; 0 when none
	seen    uint64       // the last scan that found the directory
}

// fileState is what is known of one queue file.
type fileState struct {
	id      string
	arrival int64 // µs since the epoch; 0 when unknown
	kind    arrivalKind
	// refs counts the listings holding the file: 1, or 2 for a moment when
	// a move between queues is seen from both sides.
	refs   int
	queued uint64 // the last scan that queued the file for reading
}

// pendingRead is a queue file to read in this scan.
type pendingRead struct {
	dir  *dirState
	file *fileState
}

// scan is the state of one Scan call.
type scan struct {
	now     time.Time
	listed  []*dirState   // directories listed afresh
	pending []pendingRead // files whose arrival time is to be read
	dropped []*fileState  // files whose refs fell to 0
}

// NewSpool returns a scanner of the queues under dir, Postfix's
// queue_directory (postconf -h queue_directory), usually /var/spool/postfix.
// It does no I/O until the first Scan.
func NewSpool(dir string) *Spool {
	return &Spool{
		dir:   filepath.Clean(dir),
		dirs:  map[string]*dirState{},
		files: map[string]*fileState{},
	}
}

// Scan counts the messages in each queue and finds the oldest arrival time.
// now must be the current time: it decides which directory listings are
// too recent to reuse, and bounds Oldest. A missing queue directory counts
// as empty; a queue file that vanishes during the scan is normal. A
// directory or file that cannot be read fails the scan.
func (s *Spool) Scan(now time.Time) (Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	sc := &scan{now: now}
	st := Stats{Messages: make(map[string]int, 5)}
	for _, q := range Queues() {
		n, err := s.walk(sc, q, q, 0)
		if err != nil {
			s.reset()
			return Stats{}, queueError(q, err)
		}
		st.Messages[q] = n
	}
	s.countMovedOnce(sc, st.Messages)
	if s.afterList != nil {
		s.afterList()
	}
	if q, err := s.readPending(sc.pending); err != nil {
		s.reset()
		return Stats{}, queueError(q, err)
	}
	s.settle(sc)
	s.sweep(sc)
	if oldest := s.oldest(); oldest != 0 {
		st.Oldest = time.UnixMicro(oldest)
		if st.Oldest.After(now) { // a clock step, or an mtime standing in for a deferred file's arrival
			st.Oldest = now
		}
	}
	return st, nil
}

// countMovedOnce corrects the counts for messages that qmgr moved from one
// queue to another while the scan listed them (active to deferred, say),
// and so stand in two listings: each counts once, in the queue listed last.
// Only listings made in this scan can disagree with each other.
func (s *Spool) countMovedOnce(sc *scan, counts map[string]int) {
	var seen map[*fileState]bool
	for _, d := range sc.listed {
		for _, f := range d.files {
			if f.refs < 2 || seen[f] {
				continue
			}
			if seen == nil {
				seen = map[*fileState]bool{}
			}
			seen[f] = true
			counts[d.queue]--
		}
	}
}

// queueError names the queue and, for a permission error, the remedy.
func queueError(queue string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("read postfix queue %s: %w (the exporter needs read access to the spool: run as root or with CAP_DAC_READ_SEARCH)", queue, err)
	}
	return fmt.Errorf("read postfix queue %s: %w", queue, err)
}

// reset forgets everything after a failed scan, whose listings may be half
// applied; the next scan starts cold.
func (s *Spool) reset() {
	s.dirs = map[string]*dirState{}
	s.files = map[string]*fileState{}
}

// walk returns the number of queue files in the directory rel (a path below
// the spool) and its hash subdirectories, listing only the directories that
// changed since their last listing.
func (s *Spool) walk(sc *scan, queue, rel string, depth int) (int, error) {
	d := s.dirs[rel]
	var path string
	if d != nil {
		path = d.path
	} else {
		path = s.dir + "/" + rel
	}
	var st unix.Stat_t
	if err := statDir(path, &st); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil // not created yet, or a hash directory just removed: empty
		}
		return 0, err
	}
	if d == nil {
		d = &dirState{queue: queue, path: path}
		s.dirs[rel] = d
	}
	if !d.trusted || d.mtime != st.Mtim || d.dev != st.Dev || d.ino != st.Ino {
		if err := s.list(sc, rel, d, depth); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return 0, nil // removed between stat and open
			}
			return 0, err
		}
		d.mtime, d.dev, d.ino = st.Mtim, st.Dev, st.Ino
		d.trusted = time.Unix(st.Mtim.Unix()).Before(sc.now.Add(-racyWindow))
	}
	d.seen = s.gen
	n := len(d.files)
	for _, sub := range d.subdirs {
		k, err := s.walk(sc, queue, sub, depth+1)
		if err != nil {
			return 0, err
		}
		n += k
	}
	return n, nil
}

// list reads the directory afresh: queue files (regular files named as
// queue IDs; cleanup's temporary "usec.pid" files are not messages yet) and
// hash subdirectories (one letter or digit, as dir_forest makes them).
func (s *Spool) list(sc *scan, rel string, d *dirState, depth int) error {
	if s.buf == nil {
		s.buf = make([]byte, dirBufSize)
	}
	files := make([]*fileState, 0, len(d.files))
	var subdirs []string
	err := readDir(d.path, s.buf, func(name []byte, typ byte) {
		switch {
		case typ == unix.DT_REG && queueID(name):
			f := s.files[string(name)]
			if f == nil {
				f = &fileState{id: string(name)}
				s.files[f.id] = f
			}
			f.refs++
			files = append(files, f)
			if (f.kind == arrivalUnknown || f.kind == arrivalRetry) && f.queued != s.gen {
				f.queued = s.gen
				sc.pending = append(sc.pending, pendingRead{dir: d, file: f})
			}
		case typ == unix.DT_DIR && depth < maxHashDepth && hashDir(name):
			subdirs = append(subdirs, subdirKey(d.subdirs, rel, name[0]))
		}
	})
	if err != nil {
		return err // any refs counted so far are dropped with the cache by Scan
	}
	// Release the old listing only now, so that a file seen here keeps its
	// state instead of being dropped and read again.
	for _, f := range d.files {
		if f.refs--; f.refs == 0 {
			sc.dropped = append(sc.dropped, f)
		}
	}
	d.files, d.subdirs = files, subdirs
	sc.listed = append(sc.listed, d)
	return nil
}

// subdirKey returns rel/c, reusing the string of the previous listing.
func subdirKey(old []string, rel string, c byte) string {
	for _, k := range old {
		if k[len(k)-1] == c {
			return k
		}
	}
	return rel + "/" + string(c)
}

// queueID reports whether name is a queue ID as mail_queue_id_ok() accepts
// it: 1 to 100 letters, digits or underscores.
func queueID(name []byte) bool {
	if len(name) == 0 || len(name) > 100 {
		return false
	}
	for _, c := range name {
		if !alnum(c) && c != '_' {
			return false
		}
	}
	return true
}

func hashDir(name []byte) bool { return len(name) == 1 && alnum(name[0]) }

func alnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// readPending reads the arrival times of new queue files, on several
// goroutines when there are many. It returns the queue of the first file
// that could not be read and why.
func (s *Spool) readPending(pending []pendingRead) (string, error) {
	readers := 1
	if len(pending) >= parallelReads {
		readers = min(maxReaders, runtime.GOMAXPROCS(0))
	}
	chunk := (len(pending) + readers - 1) / readers
	failed := make([]*dirState, readers)
	errs := make([]error, readers)
	var wg sync.WaitGroup
	for r := range readers {
		part := pending[min(r*chunk, len(pending)):min((r+1)*chunk, len(pending))]
		if readers == 1 {
			failed[r], errs[r] = readFiles(part)
			break
		}
		wg.Go(func() { failed[r], errs[r] = readFiles(part) })
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			return failed[r].queue, err
		}
	}
	return "", nil
}

// readFiles reads the arrival time of each file, stopping at the first
// error, which it returns with the directory concerned. Files come grouped
// by directory, in listing order.
func readFiles(part []pendingRead) (*dirState, error) {
	buf := make([]byte, headSize)
	dirfd := -1
	var dir *dirState
	defer func() {
		if dirfd >= 0 {
			unix.Close(dirfd)
		}
	}()
	for _, p := range part {
		if p.dir != dir {
			if dirfd >= 0 {
				unix.Close(dirfd)
			}
			var err error
			dirfd, err = openDir(p.dir.path)
			dir = p.dir
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return dir, err
			}
		}
		if dirfd < 0 { // the directory went with its files
			p.file.kind = arrivalRetry
			continue
		}
		arrival, kind, err := readArrival(dirfd, dir.path, p.file.id, buf)
		if err != nil {
			return dir, err
		}
		p.file.arrival, p.file.kind = arrival, kind
	}
	return nil, nil
}

// settle computes the earliest arrival of each directory listed in this
// scan, and distrusts the listing of a directory with a file to read again.
func (s *Spool) settle(sc *scan) {
	for _, d := range sc.listed {
		d.oldest = 0
		for _, f := range d.files {
			if f.kind == arrivalRetry {
				d.trusted = false
			}
			if f.arrival != 0 && (d.oldest == 0 || f.arrival < d.oldest) {
				d.oldest = f.arrival
			}
		}
	}
}

// sweep forgets the directories this scan did not find, and the files no
// listing holds any more.
func (s *Spool) sweep(sc *scan) {
	for rel, d := range s.dirs {
		if d.seen == s.gen {
			continue
		}
		for _, f := range d.files {
			if f.refs--; f.refs == 0 {
				sc.dropped = append(sc.dropped, f)
			}
		}
		delete(s.dirs, rel)
	}
	for _, f := range sc.dropped {
		if f.refs == 0 {
			delete(s.files, f.id)
		}
	}
}

// oldest returns the earliest arrival in any queue, 0 when none is known.
func (s *Spool) oldest() int64 {
	var oldest int64
	for _, d := range s.dirs {
		if d.oldest != 0 && (oldest == 0 || d.oldest < oldest) {
			oldest = d.oldest
		}
	}
	return oldest
}
