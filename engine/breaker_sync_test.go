package engine

import (
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/hooks"
)

// A node's breaker closed by the supervisor's Reset (sentinel switch)
// while a connection's failures open it: failsafe-go runs the state
// listeners outside its lock, so they may run in the opposite order to the
// transitions. The engine's listener recorded each event's new state, so
// the node could stay open (every command refused with ErrCircuitOpen,
// its actors never restarted, probes succeeding without closing it) while
// its breaker was closed, with nothing left to change it. Here the two
// race many times through the engine's own wiring; once both settled the
// node must match its breaker. The BreakerChanged events must form a
// chain ending in the breaker's state: they reported each transition's
// own from and to, in the order the listeners ran, so a hook could read
// "open -> closed" then "closed -> open" and believe the node open.
func TestBreakerListenersRaceReset(t *testing.T) {
	rec := &breakerEvents{}
	ctx, e, conn := orderEngine(t, rec)
	n := conn.Node
	threshold := max(e.cfg.CircuitBreakerThreshold, 1)
	deadline := time.Now().Add(10 * time.Second)
	rounds := 0
	for i := 0; i < 20000 && time.Now().Before(deadline); i++ {
		rounds++
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
	final := n.Breaker.State().String()
	if err := e.Close(); err != nil { // delivers the events queued
		t.Fatal(err)
	}
	evs := rec.take()
	if len(evs) < rounds { // each round ends with an opening and a Reset
		t.Fatalf("%d breaker events in %d rounds, want at least %d", len(evs), rounds, rounds)
	}
	prev := hooks.BreakerClosed
	for i, ev := range evs {
		if ev.From != prev || ev.From == ev.To {
			t.Fatalf("event %d of %d: %s -> %s after one ending in %s: the events do not form a chain", i, len(evs), ev.From, ev.To, prev)
		}
		prev = ev.To
	}
	if prev != final {
		t.Fatalf("the last event ends in %s, the breaker is %s", prev, final)
	}
	t.Logf("%d rounds, %d breaker events in a chain", rounds, len(evs))
}

// breakerEvents records the BreakerChanged events.
type breakerEvents struct {
	mu  sync.Mutex
	evs []hooks.BreakerChange
}

func (r *breakerEvents) OnBreakerChanged(ev hooks.BreakerChange) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *breakerEvents) take() []hooks.BreakerChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.evs
}
