// Package quietnet does a TCP connection's system calls the way the Go
// runtime does its own: raw, without the scheduler's system-call
// bookkeeping.
//
// A system call through package syscall enters the scheduler
// (entersyscall). When every P was idle just before, as in a prober that
// spends its time waiting for servers, that call wakes the runtime's
// monitor thread, sysmon, from its deep sleep, and sysmon then polls every
// 20 µs for a millisecond, less often after. A probe's socket is
// non-blocking, so its connect, reads and writes never sleep in the kernel
// and need none of that: done raw, with the poller waiting as net does
// (deadlines included), they leave sysmon asleep. close(2) must go through
// package os, so that the poller forgets the descriptor; a Dialer's
// connections shut down at once and close their descriptors in batches.
// Measured on an SSH probe with one P: sysmon's wake-ups were a fifth of
// its CPU. Of its three chances per probe to wake sysmon (the HTTP request
// and the connect, the connect's end, the close and the answer), only the
// batched close is left.
package quietnet
