package hooks

import "context"

// Hook is a value that observes the engine: anything that implements one or
// more of the interfaces of this package (PreExecution, PostExecution,
// PreConnection, ...). The engine checks which ones once, in engine.New,
// and from then on calls each hook only for the events it implements: an
// engine without hooks, or without hooks of a kind, pays nothing for that
// kind beyond a nil check. config.Config.Validate refuses a Hook that
// implements none of them.
//
// Several hooks in config.Config.Hooks form a composite: each event goes to
// every hook that implements its interface, in the order of the slice. A
// value listed twice is two hooks: it gets every event twice (and its
// first panic is logged once per entry).
//
// Which goroutine calls what: PreExecution runs on the goroutine that fires
// the command, before the command is queued. Every other method runs on the
// engine's hook goroutine (one per engine), in the order the events
// happened, after they happened: the engine hands each event over without
// waiting (a copy into a bounded queue) and never waits for a hook. A hook
// that falls behind makes the queue fill up; events that find it full are
// dropped and counted (engine.Stats.HookDropped), never waited for, except
// the lifecycle events, which observers keep state from: a consumer's
// Stopped, a subscriber connection's Disconnected, Refused and
// Resubscribed, a
// breaker's change, a connection actor's connection dialled (Dial,
// Dialed: not Dedicated), lost or restarted, a slot map loaded, a
// sentinel switch. Those wait in a second queue of their own (as large,
// which the engine's backoffs keep nearly empty) and reach the hooks
// after the events queued before them, so that a hook that keeps a
// state from them (a consumer's lag, a node that is down) is never left
// with a stale one. A hook
// that panics is recovered: the engine logs the first panic of each hook
// (Config.Logger, error level) and counts every one
// (engine.Stats.HookPanics); the event is lost for that hook only.
//
// A hook value is shared by the engine's goroutines: PreExecution may run on
// many goroutines at once and concurrently with the other methods, which
// run one at a time.
type Hook = any

// PreExecution is called when a command is fired: on the caller's
// goroutine, before the command is queued, once per command (a pipeline's
// or transaction's commands when Exec runs; a DedicatedConn's and a
// Watch read's when they are sent, before their round trip). The command
// hooks see the commands the program sends (a multi-key command split
// across cluster slots: each part), not those the engine sends for itself
// (slot-map loads, handshakes, MULTI and EXEC, WATCH and UNWATCH, a batch
// writer's, a stream consumer's, a subscription's): the table "Which
// commands reach the command hooks" in docs/hooks-observability.md lists
// them. The context it returns replaces
// ctx for the command: return ctx itself, or a context derived from it
// (context.WithValue, a span): its deadline and cancellation bound the
// command (not a transaction's commands nor those of one
// DedicatedConn.DoMulti: they go out together, bound by Exec's or
// DoMulti's ctx), and PostExecution gets it back. A nil return keeps ctx.
// It must be quick: the caller waits for it. It must not fire commands on
// its own engine (nor PostExecution): such a command comes back to the
// hook, PreExecution recursing until the stack overflows, PostExecution
// in a loop that never ends; use an engine of its own for that.
type PreExecution interface {
	PreExecution(ctx context.Context, cmd Command) context.Context
}

// PostExecution is called once per command fired (after PreExecution, when
// both are implemented) once its future has completed, on the engine's hook
// goroutine, with the context PreExecution returned (the caller's when
// there is no PreExecution hook).
type PostExecution interface {
	PostExecution(ctx context.Context, ev Executed)
}

// PreConnection is called when the engine starts dialling a connection:
// a connection actor's (at New, on a cluster node's first use, on
// reconnects and breaker probes) or a dedicated one (subscriber, stream
// consumer, transaction, blocking command, batch writer).
type PreConnection interface {
	PreConnection(ev Dial)
}

// PostConnection is called when a dial started by PreConnection ends,
// connected or failed (the handshake included: TLS, HELLO, AUTH, SELECT).
type PostConnection interface {
	PostConnection(ev Dialed)
}

// ConnectionLost is called when a connection actor's connection fails (a
// transport error in a round trip): the supervisor replaces it.
type ConnectionLost interface {
	OnConnectionLost(ev Lost)
}

// ActorRestarted is called when a connection actor restarts: after its
// connection was replaced, or after it failed.
type ActorRestarted interface {
	OnActorRestarted(ev Restart)
}

// PipelineWritten is called when a connection actor writes a batch as one
// pipeline (just before the driver writes it).
type PipelineWritten interface {
	OnPipelineWritten(ev Pipeline)
}

// PipelineAnswered is called when a pipeline's round trip has ended:
// every reply read, or a transport error.
type PipelineAnswered interface {
	OnPipelineAnswered(ev Pipeline)
}

// MailboxFull is called when a command (or a group of them: a pipeline's,
// a slot actor's forward) finds its connection actor's mailbox full: it
// waits (BackpressureBlock) or is rejected (BackpressureReject).
type MailboxFull interface {
	OnMailboxFull(ev Backpressure)
}

// BreakerChanged is called when a node's circuit breaker changes state.
// A node's events arrive in order and form a chain: each one's From is
// the previous one's To (the first one's From is closed), and the last
// one's To is the state the engine acts on, even when two transitions
// race (a state the breaker left before the engine recorded it is not
// reported), unless the hook queue overflowed and events were dropped.
// In sentinel mode the primary's breaker is one whichever node is the
// primary, and each event names the primary of its moment: after a
// failover its chain goes on under the new primary's address (the old
// primary's last event may say open; the new one's first, open to
// closed).
type BreakerChanged interface {
	OnBreakerChanged(ev BreakerChange)
}

// RetryScheduled is called when a connection actor keeps commands to send
// again after its connection failed: they go out once the supervisor has
// reconnected, after a backoff.
type RetryScheduled interface {
	OnRetryScheduled(ev Retry)
}

// Redirected is called when the cluster redirects a command (MOVED, ASK,
// TRYAGAIN, CLUSTERDOWN) and the engine follows the redirect (or gives up
// after Config.MaxRedirects).
type Redirected interface {
	OnRedirected(ev Redirect)
}

// SlotMapLoaded is called after each load of the cluster slot map, loaded
// or failed.
type SlotMapLoaded interface {
	OnSlotMapLoaded(ev SlotMap)
}

// SentinelSwitched is called when the sentinels name a new primary and the
// engine switches to it (sentinel mode).
type SentinelSwitched interface {
	OnSentinelSwitched(ev SentinelSwitch)
}

// SubscriberEvents is called for the life of subscriptions: subscribed,
// disconnected, resubscribed (with the gap), messages dropped.
type SubscriberEvents interface {
	OnSubscriberEvent(ev Subscriber)
}

// ConsumerEvents is called for stream consumers (engine.Consume): entries
// claimed, redelivered, acknowledged, handler failures, lag, and the
// consumer's stop (Stopped, its last event: a hook that keeps a
// consumer's lag, keyed by Consumer.Instance, drops it then; Stopped is
// never dropped for a full queue).
type ConsumerEvents interface {
	OnConsumerEvent(ev Consumer)
}

// Implements reports whether h implements at least one of the interfaces
// of this package.
func Implements(h Hook) bool {
	switch h.(type) {
	case PreExecution, PostExecution, PreConnection, PostConnection, ConnectionLost,
		ActorRestarted, PipelineWritten, PipelineAnswered, MailboxFull, BreakerChanged,
		RetryScheduled, Redirected, SlotMapLoaded, SentinelSwitched, SubscriberEvents,
		ConsumerEvents:
		return true
	}
	return false
}
