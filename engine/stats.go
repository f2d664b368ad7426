package engine

import (
	"slices"
	"strings"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/mailbox"
)

// Stats is a snapshot of the engine's counters, from Engine.Stats.
type Stats struct {
	// Commands counts commands whose reply (or transport error) came back
	// through the connection actors' pipelines, once per attempt; the
	// engine's own (slot-map loads in cluster mode) included, those sent
	// on connections of their own (a Tx's, Watch reads, Dedicated,
	// blocking commands) not: Transactions and TxFailed count those, and
	// the hooks and otelvactor see every command. Per attempt: a command sent again (after a transport error or a
	// cluster redirect) counts once each time it was sent; one a former
	// primary refused with READONLY or MASTERDOWN in sentinel mode (it did
	// not run there) counts once, when the new primary answers it, or in
	// CircuitOpen when the breaker fails it before. A command is counted here (and in Errors)
	// before its future completes: once a caller has awaited one, Stats
	// counts it.
	Commands uint64
	// Errors counts those that failed: error replies and transport errors
	// (nil replies are not errors), per attempt too: in cluster mode the
	// MOVED, ASK and TRYAGAIN replies the engine then followed are in it
	// (and in Redirects), so an error rate for alerts is (Errors -
	// Redirects) / Commands.
	Errors uint64
	// InFlight is the number of commands being written or written and
	// awaiting replies (counted as their pipeline is handed to the
	// driver).
	InFlight int64
	// Queued is the number of commands waiting in the mailboxes (in
	// cluster mode, those its slot actors hold too).
	Queued int
	// Waiting is the number of commands waiting for room in a full
	// mailbox (Backpressure block), not in Queued yet: those of callers
	// blocked in the call that fired them, and, in cluster mode, those a
	// slot actor handed on to its node's connection actor. Fired and not
	// complete, a command is in Queued, Waiting, InFlight or Held, or
	// about to be in one (a batch taken from the mailbox and not yet
	// written, a command the cluster redirected on its way to its new
	// owner).
	Waiting int
	// Held is the number of commands the connection actors keep to send
	// again once they have reconnected: those a broken connection hit
	// (not written, or repeatable: see ErrOutcomeUnknown), and in sentinel
	// mode those a switch took off the former primary or that it refused
	// as no longer primary. While a node is down they are in no mailbox
	// and not in flight.
	Held int
	// Expired counts commands failed because their context ended before
	// they were written; Rejected those failed with ErrBackpressure;
	// CircuitOpen those failed with ErrCircuitOpen before they were
	// written (refused when fired, or queued when their node's breaker
	// opened; in cluster mode a queued one the engine moves to the slot's
	// owner as the map names it then is counted once, where it is refused
	// in the end, and not at all if that owner runs it).
	Expired, Rejected, CircuitOpen uint64
	// NoSlotOwner counts commands failed with ErrNoSlotOwner before they
	// were written: in cluster mode, no node of the slot map served their
	// slot (a shard without primary during a failover): commands and
	// pipelines' commands (a Tx or a batch writer's command refused so is
	// not in it).
	NoSlotOwner uint64
	// Batches counts pipelines sent; MeanBatch and MaxBatch describe their
	// sizes and BatchSizes is their histogram (see mailbox.Stats).
	Batches    uint64
	MeanBatch  float64
	MaxBatch   uint64
	BatchSizes [mailbox.BatchBuckets]uint64
	// Restarts counts connection actor restarts; Reconnects the new
	// connections they made; Retries the commands sent again;
	// OutcomeUnknown the commands failed with ErrOutcomeUnknown (those
	// of blocking commands, transactions, Watch reads, Dedicated
	// connections and batch writers, which no connection actor sends, in
	// Stats.OutcomeUnknown only, not in a ConnStats);
	// RetryBudget those of them the retry budget kept from being sent
	// again (their error matches ErrRetryBudget too: a node that keeps
	// losing what it was sent).
	Restarts, Reconnects, Retries, OutcomeUnknown, RetryBudget uint64
	// Nodes has the circuit breaker state of each node.
	Nodes []NodeStats
	// Redirects counts commands the cluster redirected (MOVED, ASK,
	// TRYAGAIN, CLUSTERDOWN) and the engine followed: those sent through
	// the connection actors, as Commands and Errors count them (a Tx's
	// and blocking commands' redirects are reported to the Redirected
	// hooks only); SlotActors is the
	// number of slot actors running. Cluster mode only.
	Redirects  uint64
	SlotActors int
	// Conns has one entry per connection actor.
	Conns []actors.ConnStats
	// Subscriptions is the number of live subscriptions (Subscribe ...
	// until Close); SubConns the number of connections their subscriber
	// actors hold open (dedicated pub/sub connections, each costing one
	// more idle TCP connection with the valkey-go driver).
	Subscriptions, SubConns int
	// SubMessages counts the messages delivered to subscriptions
	// (channel or Handler; a message read from Channel, or passed to a
	// Handler, is in the count by then); SubDropped those OverflowDrop
	// dropped; SubReconnects the connections that resubscribed after a
	// disconnect (Resubscribed events of whole connections); SubMoved the shard
	// channels subscribed again on their new owner after their slot moved,
	// or subscribed at last on a node that was down when nobody waited for
	// them (Resubscribed events with a ShardChannel).
	SubMessages, SubDropped, SubReconnects, SubMoved uint64
	// SubPanics counts the SubscribeOptions.Handler calls that panicked:
	// each is recovered (the item is lost, the subscription goes on) and
	// the first of each subscription logged.
	SubPanics uint64
	// DedicatedConns has the connections of the engine's dedicated pools,
	// per node: the transactions' (Tx, Watch; Pool "tx") and Dedicated's
	// (Pool "dedicated"), sorted by Pool and Addr. The connections of
	// blocking commands (the driver's own pool), subscribers, stream
	// consumers and batch writers are not in it.
	DedicatedConns []PoolStats
	// Transactions counts the transactions (Tx.Exec, Watch) whose EXEC
	// ran; TxAborted those a changed watched key aborted (ErrTxAborted);
	// TxFailed those sent on a connection that failed otherwise (refused,
	// transport, closed). One that never got a connection is not counted.
	Transactions, TxAborted, TxFailed uint64
	// Sentinel is what the engine did in sentinel mode (nil otherwise):
	// the primary it follows, switches, failovers held.
	Sentinel *SentinelStats
	// HookEvents counts the events handed to the hooks (Config.Hooks, and
	// the logging of Config.Logger) on the engine's hook goroutine;
	// HookDropped the events dropped because the hooks fell behind (the
	// queue was full: no engine goroutine waits for a hook) or because
	// Close gave up on a hook that had not returned (or a hook called
	// Close); HookPanics the hook calls that panicked (recovered; the
	// first of each hook is logged). Each event is counted once, in
	// HookEvents or HookDropped: the hook goroutine counts the events it
	// takes from the queue, a batch at a time, in HookEvents, and those of
	// that batch it then does not deliver (Close gave up) move to
	// HookDropped once the hook it waited for returns.
	HookEvents, HookDropped, HookPanics uint64
}

// Stats returns a snapshot of the engine's counters. Safe for concurrent use.
func (e *Engine) Stats() Stats {
	var s Stats
	var mb mailbox.Stats
	primary := ""
	if e.sn != nil {
		s.Sentinel = e.sn.stats()
		primary = s.Sentinel.Primary
	}
	for _, c := range e.connStates() {
		cs := c.Stats()
		if e.sn != nil && c.Node == e.sn.node {
			cs.Addr = primary // the primary's actors: whichever node it is now
		}
		s.Conns = append(s.Conns, cs)
		s.Commands += cs.Commands
		s.Errors += cs.Errors
		s.InFlight += cs.InFlight
		s.Held += cs.Held
		s.Restarts += cs.Restarts
		s.Reconnects += cs.Reconnects
		s.Retries += cs.Retries
		s.OutcomeUnknown += cs.OutcomeUnknown
		s.RetryBudget += cs.RetryBudget
		s.CircuitOpen += cs.CircuitOpen
		mb.Add(cs.Mailbox)
	}
	s.OutcomeUnknown += e.unknown.Load() // blocking calls, Tx, Dedicated: in no ConnStats
	e.mu.Lock()
	nodes := slices.Clone(e.nodes)
	e.mu.Unlock()
	for _, n := range nodes {
		addr := n.Addr
		if e.sn != nil && n == e.sn.node {
			addr = primary
		}
		s.Nodes = append(s.Nodes, NodeStats{Addr: addr, Breaker: n.Breaker.State().String()})
	}
	if e.cl != nil {
		for i := range e.cl.slots {
			if st := e.cl.slots[i].Load(); st != nil {
				if st.Live() {
					s.SlotActors++
				}
				s.Redirects += st.Redirects()
				s.NoSlotOwner += st.NoOwner()
				s.OutcomeUnknown += st.OutcomeUnknown()
				mb.Queued += st.Queued()
			}
		}
	}
	s.Queued, s.Waiting = mb.Queued, mb.Waiting
	s.Expired, s.Rejected = mb.Expired, mb.Rejected
	s.Batches, s.MeanBatch, s.MaxBatch, s.BatchSizes = mb.Batches, mb.MeanBatch(), mb.MaxBatch, mb.BatchSizes
	s.Subscriptions, s.SubConns = int(e.subs.live.Load()), int(e.subs.conns.Load())
	s.SubMessages, s.SubDropped = e.subs.messages.Load(), e.subs.dropped.Load()
	s.SubPanics = e.subs.panics.Load()
	s.SubReconnects, s.SubMoved = e.subs.reconnects.Load(), e.subs.movers.Load()
	s.Transactions, s.TxAborted, s.TxFailed = e.tx.execs.Load(), e.tx.aborted.Load(), e.tx.failed.Load()
	s.DedicatedConns = e.ded.poolStats(PoolDedicated, e.tx.poolStats(PoolTx, nil))
	hs := e.bus.Stats()
	s.HookEvents, s.HookDropped, s.HookPanics = hs.Events, hs.Dropped, hs.Panics
	return s
}

// NodeStats is the state of one node.
type NodeStats struct {
	Addr string
	// Breaker is the circuit breaker state: "closed", "open" or "half-open".
	Breaker string
}

// Pool names of PoolStats.
const (
	PoolTx        = "tx"        // Tx and Watch
	PoolDedicated = "dedicated" // Dedicated and DedicatedFor
)

// PoolStats is the connections of one dedicated pool to one node.
type PoolStats struct {
	Addr string
	// Pool is PoolTx or PoolDedicated.
	Pool string
	// Idle counts the connections kept open in the pool between uses;
	// Used those lent out (and being dialled).
	Idle, Used int
}

// poolStats appends p's connections per node to out, sorted by address;
// nothing once p is closed. (An accessor of the pool in tx_conns.go, kept
// here with the other Stats code.)
func (p *txConns) poolStats(pool string, out []PoolStats) []PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return out
	}
	from := len(out)
	for addr, n := range p.count { // n: open (idle included) or being dialled
		if n > 0 {
			idle := len(p.idle[addr])
			out = append(out, PoolStats{Addr: addr, Pool: pool, Idle: idle, Used: n - idle})
		}
	}
	slices.SortFunc(out[from:], func(a, b PoolStats) int { return strings.Compare(a.Addr, b.Addr) })
	return out
}
