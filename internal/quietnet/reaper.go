package quietnet

import (
	"os"
	"sync"
	"time"
)

// reapDelay is how long a shut-down socket's descriptor may wait for the
// others closed with it.
const reapDelay = 10 * time.Millisecond

// reaper closes the descriptors of shut-down sockets in batches. close(2)
// has to go through package os, which wakes a sleeping sysmon; batched, a
// busy prober pays that once per batch instead of once per probe. The
// connection itself ends at shutdown(2): the peer has its FIN then, and
// the descriptor only waits to be released.
type reaper struct {
	mu      sync.Mutex
	pending []*os.File
}

// close queues f; the first of a batch arms the timer that closes them all.
func (r *reaper) close(f *os.File) {
	r.mu.Lock()
	r.pending = append(r.pending, f)
	first := len(r.pending) == 1
	r.mu.Unlock()
	if first {
		time.AfterFunc(reapDelay, r.flush)
	}
}

func (r *reaper) flush() {
	r.mu.Lock()
	batch := r.pending
	r.pending = nil
	r.mu.Unlock()
	for _, f := range batch {
		_ = f.Close()
	}
}
