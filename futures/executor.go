package futures

import (
	"sync"
	"time"
)

// stallAfter is how long the callback queue may wait while every callback
// worker is inside a callback that has not returned before another worker
// is started. A variable for tests.
var stallAfter = time.Millisecond

// callbacks runs the callbacks of futures completed while pending
// (OnComplete, Then, Join) off the goroutine that completes them: a
// completer (for vactor's command futures, a connection actor) only queues
// them, which never blocks, so a callback that blocks can never stall it.
var callbacks executor

// executor runs queued funcs in the order queued on worker goroutines
// started on demand. One worker runs them one at a time; when work waits
// while no callback has begun for stallAfter (every worker is inside a
// callback that does not return: it blocks, or waits for a later
// callback), a timer starts one more worker, as the Go runtime hands a
// processor off from a thread stuck in a system call. Workers exit as soon
// as the queue is empty and the timer stops when no worker is left, so an
// idle executor holds no goroutine. Safe for concurrent use.
type executor struct {
	mu      sync.Mutex
	queue   []func() // queue[head:] waits, in order
	head    int
	workers int    // running worker goroutines
	begun   uint64 // callbacks begun, for the stall check
	seen    uint64 // begun at the last stall check
	timer   *time.Timer
	armed   bool // timer set to fire; cleared by the check that finds no worker
}

// push queues fs, in order, and starts a worker when none runs. It never
// blocks on a callback.
func (e *executor) push(fs ...func()) {
	e.mu.Lock()
	if e.head > 0 && len(e.queue)+len(fs) > cap(e.queue) {
		// Reuse the room the run part left before growing.
		n := copy(e.queue, e.queue[e.head:])
		clear(e.queue[n:])
		e.queue, e.head = e.queue[:n], 0
	}
	e.queue = append(e.queue, fs...)
	if e.workers == 0 {
		e.workers = 1
		go e.work()
		if !e.armed {
			e.armed, e.seen = true, e.begun
			if e.timer == nil {
				e.timer = time.AfterFunc(stallAfter, e.check)
			} else {
				e.timer.Reset(stallAfter)
			}
		}
	}
	e.mu.Unlock()
}

// work runs queued funcs until the queue is empty.
func (e *executor) work() {
	e.mu.Lock()
	for e.head < len(e.queue) {
		f := e.queue[e.head]
		e.queue[e.head] = nil
		e.head++
		if e.head == len(e.queue) {
			e.queue, e.head = e.queue[:0], 0
		}
		e.begun++
		e.mu.Unlock()
		f()
		e.mu.Lock()
	}
	e.workers--
	e.mu.Unlock()
}

// check runs on the timer while workers run: it starts one more worker
// when work waits and no callback has begun since the last check.
func (e *executor) check() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.workers == 0 {
		e.armed = false
		return
	}
	if e.head < len(e.queue) && e.begun == e.seen {
		e.workers++
		go e.work()
	}
	e.seen = e.begun
	e.timer.Reset(stallAfter)
}
