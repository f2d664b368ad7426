package engine

import (
	"sync"
	"testing"
	"time"
)

// A node's breaker closed by the supervisor's Reset (sentinel switch)
// while a connection's failures open it: failsafe-go runs the state
// listeners outside its lock, so they may run in the opposite order to the
// transitions. The engine's listener recorded each event's new state, so
// the node could stay open (every command refused with ErrCircuitOpen,
// its actors never restarted, probes succeeding without closing it) while
// its breaker was closed, with nothing left to change it. Here the two
// race many times through the engine's own wiring; once both settled the
// node must match its breaker.
func TestBreakerListenersRaceReset(t *testing.T) {
	ctx, e, conn := orderEngine(t)
	n := conn.Node
	threshold := max(e.cfg.CircuitBreakerThreshold, 1)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 20000 && time.Now().Before(deadline); i++ {
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { // a connection's failures open the breaker
			<-start
			for range threshold {
				n.RecordFailure(nil)
			}
		})
		wg.Go(func() { // the supervisor's Reset
			<-start
			n.Breaker.Close()
		})
		close(start)
		wg.Wait()
		if open, closed := n.Open(), n.Breaker.IsClosed(); open == closed {
			t.Fatalf("round %d: node Open() = %v with its breaker %v", i, open, n.Breaker.State())
		}
		n.Breaker.Open() // a fresh closed state for the next round
		n.Breaker.Close()
	}
	if err := e.Set(ctx, "k", "v", 0).Err(ctx); err != nil {
		t.Fatalf("SET after the races: %v", err)
	}
}
