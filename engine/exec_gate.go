package engine

import "sync"

// execGate counts the Pipeline and Tx Execs in progress. An Exec enters
// before it checks whether the engine is closed and leaves once every
// future it holds is complete or posted to an actor; Close waits for the
// gate to empty after it has stopped the actors and the services. So the
// futures of an Exec called before Close returned are complete when Close
// returns, and an Exec that enters after that finds the engine closed and
// fails them itself.
//
// An Exec runs its commands' PreExecution hooks inside the gate, on its
// own goroutine, and a hook may call Close: such an Exec enters with its
// goroutine's id (only when PreExecution hooks are configured: reading it
// costs about 2 µs), and Close, which waits for every other Exec, does not
// wait for those of its own goroutine (they find the engine closed once
// the hook returns and fail their futures).
type execGate struct {
	mu    sync.Mutex
	n     int
	by    map[int64]int // Execs in progress per goroutine id, for those that gave one
	skip  int64         // the goroutine whose Execs wait does not wait for (0: none)
	empty chan struct{} // made by wait; closed when no Exec but skip's is in progress
}

// enter records an Exec on goroutine g (0: not given).
func (g *execGate) enter(id int64) {
	g.mu.Lock()
	g.n++
	if id != 0 {
		if g.by == nil {
			g.by = map[int64]int{}
		}
		g.by[id]++
	}
	g.mu.Unlock()
}

// leave records the end of an Exec that entered with id.
func (g *execGate) leave(id int64) {
	g.mu.Lock()
	g.n--
	if id != 0 {
		if g.by[id]--; g.by[id] == 0 {
			delete(g.by, id)
		}
	}
	if g.empty != nil && g.doneLocked() {
		close(g.empty)
		g.empty = nil
	}
	g.mu.Unlock()
}

// doneLocked reports whether no Exec is in progress but those of skip.
func (g *execGate) doneLocked() bool {
	own := 0
	if g.skip != 0 {
		own = g.by[g.skip]
	}
	return g.n == own
}

// wait returns a channel closed once no Exec is in progress but those of
// goroutine skip (0: every Exec), the caller's own.
func (g *execGate) wait(skip int64) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.skip = skip
	if g.doneLocked() {
		return closedChan
	}
	if g.empty == nil {
		g.empty = make(chan struct{})
	}
	return g.empty
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
