package engine

import "sync"

// execGate counts the Pipeline and Tx Execs in progress. An Exec enters
// before it checks whether the engine is closed and leaves once every
// future it holds is complete or posted to an actor; Close waits for the
// gate to empty after it has stopped the actors and the services. So the
// futures of an Exec called before Close returned are complete when Close
// returns, and an Exec that enters after that finds the engine closed and
// fails them itself.
type execGate struct {
	mu    sync.Mutex
	n     int
	empty chan struct{} // made by wait; closed when n drops to 0
}

func (g *execGate) enter() {
	g.mu.Lock()
	g.n++
	g.mu.Unlock()
}

func (g *execGate) leave() {
	g.mu.Lock()
	g.n--
	if g.n == 0 && g.empty != nil {
		close(g.empty)
		g.empty = nil
	}
	g.mu.Unlock()
}

// wait returns a channel closed once no Exec is in progress.
func (g *execGate) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == 0 {
		return closedChan
	}
	if g.empty == nil {
		g.empty = make(chan struct{})
	}
	return g.empty
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
