package engine

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// SetSlotIdleTimeout sets how long idle slot actors live on, for slots
// first used after the call; it returns a func that restores the default.
func SetSlotIdleTimeout(d time.Duration) (restore func()) {
	old := slotIdleTimeout
	slotIdleTimeout = d
	return func() { slotIdleTimeout = old }
}

// SetClusterRefreshInterval sets the cluster engines' slot map refresh
// interval below Config's 100ms floor (engines created after the call);
// it returns a func that restores Config's.
func SetClusterRefreshInterval(d time.Duration) (restore func()) {
	old := refreshInterval
	refreshInterval = d
	return func() { refreshInterval = old }
}

// SetHookQueue sets how many events wait for the hooks (engines created
// after the call); it returns a func that restores the default.
func SetHookQueue(n int) (restore func()) {
	old := hookQueue
	hookQueue = n
	return func() { hookQueue = old }
}

// SetHookWait sets how long Close waits for a hook that has not
// returned; it returns a func that restores the default.
func SetHookWait(d time.Duration) (restore func()) {
	old := hookWait
	hookWait = d
	return func() { hookWait = old }
}

// SentinelSwitched reports a sentinel switch as the sentinel code does.
func SentinelSwitched(e *Engine, master, from, to string) { e.sentinelSwitched(master, from, to) }

// SetNodeGoneAfter sets how long a node must be absent from the slot map
// before its connection actors stop; it returns a func restoring it.
func SetNodeGoneAfter(d time.Duration) (restore func()) {
	old := nodeGoneAfter
	nodeGoneAfter = d
	return func() { nodeGoneAfter = old }
}

// ReloadSlotMap reads the cluster slot map as the topology actor does and
// installs it.
func ReloadSlotMap(ctx context.Context, e *Engine) error {
	t, err := e.cl.load(ctx)
	if err == nil {
		e.cl.setTopology(t)
	}
	return err
}

// SetSentinelEvents turns the sentinel event subscriptions of engines
// created afterwards on or off; it returns a func restoring the default.
func SetSentinelEvents(on bool) (restore func()) {
	old := sentinelEvents
	sentinelEvents = on
	return func() { sentinelEvents = old }
}

// WriterLanes returns how many lanes (connections with their goroutine)
// w holds, over all nodes.
func WriterLanes(w *BatchWriter) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, node := range w.nodes {
		n += len(node.lanes)
	}
	return n
}

// SentinelTracked returns how many dedicated connections the engine
// tracks in sentinel mode (closed when the primary changes).
func SentinelTracked(e *Engine) int {
	e.sn.mu.Lock()
	defer e.sn.mu.Unlock()
	return len(e.sn.tracked)
}

// WriterHoldWaits returns the WAITs w's lanes sent at held sentinel
// failovers.
func WriterHoldWaits(w *BatchWriter) uint64 { return w.holdWaits.Load() }

// SendDeadLetter sends a message to an actor that does not exist in e's
// actor system: a dead letter.
func SendDeadLetter(e *Engine) {
	e.system.Root.Send(actor.NewPID(e.system.Address(), "no-such-actor"), struct{}{})
}

// SentinelReaders returns how many replica pools reads go to (sentinel
// mode with ReadFrom replica): the view lists a replica before its pool
// is dialled and published.
func SentinelReaders(e *Engine) int {
	if e.sn == nil {
		return 0
	}
	p := e.sn.readers.Load()
	if p == nil {
		return 0
	}
	return len(*p)
}

// WriterBusy reports whether a lane of w has taken a batch and not come
// back for more: the batch is being sent or awaits its replies.
func WriterBusy(w *BatchWriter) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, node := range w.nodes {
		for _, l := range node.lanes {
			if !l.idle && len(l.queue) == 0 {
				return true
			}
		}
	}
	return false
}

// TxExecAtForTest sends tx's commands as a transaction to addr, with ASKING
// first when asking, as Tx.exec's loop does after an ASK.
func TxExecAtForTest(e *Engine, ctx context.Context, tx *Tx, addr string, asking bool) error {
	q, _, err := tx.begin()
	if err != nil {
		return err
	}
	for _, en := range q {
		en.cmd.prepare(e, ctx, true, false)
	}
	return e.execAt(ctx, addr, q, asking, true, nil)
}

// RetryBudgets returns the retry budget of each connection actor's node,
// by node address, and whether every actor of a node shares its node's.
func RetryBudgets(e *Engine) (map[string]any, bool) {
	out := map[string]any{}
	shared := true
	for _, c := range e.connStates() {
		if c.Policy == nil {
			continue
		}
		if b, ok := out[c.Addr]; ok && b != any(c.Policy.Budget) {
			shared = false
		}
		out[c.Addr] = c.Policy.Budget
	}
	return out, shared
}

// HeldUpSince puts s in the state a reader held up by the full channel
// leaves: the channel filled up ago, and a delivery waited for room just
// now.
func HeldUpSince(s *Subscription, ago time.Duration) {
	s.backlog.Store(time.Now().Add(-ago).UnixNano())
	s.unblocked.Store(time.Now().UnixNano())
}
