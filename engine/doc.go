// Package engine is vactor's client: the one package most programs import.
//
// engine.New dials the configured node and starts the actors; every command
// method then returns a *futures.Future at once, and the engine's connection
// actors send whatever is queued as one pipeline per round trip. Await
// waits for a result:
//
//	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs("127.0.0.1:6379"))
//	if err != nil { ... }
//	defer eng.Close()
//
//	set := eng.Set(ctx, "greeting", "hello", time.Minute) // fire ...
//	get := eng.Get(ctx, "greeting")
//	if _, err := set.Await(ctx); err != nil { ... }       // ... and await
//	v, err := get.Await(ctx)                               // "hello"
//
// # Contexts
//
// The ctx given to a command bounds the command: when it ends, the
// command's future fails with ctx.Err() at once for whoever waits on it,
// whatever the connection actor is doing (writing a long pipeline,
// waiting for a reconnect), also when the future is awaited with a
// context that never ends or has callbacks (OnComplete, Then, All); a
// command still queued then is never written. (A future nobody waits on
// completes when its command is answered or dropped. The engine
// registers on ctx only when a wait needs it: an Await with the
// command's own ctx costs nothing for this.) Once written, a pipeline's round
// trip is bounded by the latest deadline of its commands (when they all
// have one and it comes first) and by the read timeout, which bounds
// silence: a command the server takes longer than ReadTimeout to answer
// (a slow script) fails there whatever its deadline, so raise ReadTimeout
// for such commands; past the bound the connection is treated as failed
// and re-dialled. The ctx given to Await bounds only the wait. A nil ctx,
// anywhere the engine takes one, is taken as context.Background().
//
// A command whose ctx never ends (context.Background) fired while its
// connection actor is idle waits for an Await whose ctx never ends
// either: that Await writes the actor's next batch and reads its replies
// on its own goroutine, as a synchronous client would, sparing the start
// of the actor's goroutine and the hand-off back (standalone and
// sentinel mode). Any other wait (an Await or All with a ctx that can
// end, OnComplete, Then, Done) hands the batch to the actor at once; a
// command nobody waits for is handed to the actor by a 20-microsecond
// timer (mailbox.DefaultClaimDelay), which the Go runtime may round up
// to about a millisecond when the process is otherwise idle: such a
// command goes out 20 µs to 2 ms after it was fired.
//
// # Failures
//
// A command that was not written because the connection could not be made
// is sent again after the reconnect (up to Config.MaxRetries, with
// exponential backoff). A command written on a connection that then failed
// fails with ErrOutcomeUnknown, unless it may be repeated: read-only
// commands and those issued with a context from WithIdempotent are sent
// again (one that cannot be, its retries or the retry budget spent or the
// breaker open, fails with ErrOutcomeUnknown too: for a read that only
// says its reply was lost; the budget's wraps ErrRetryBudget). After
// Config.CircuitBreakerThreshold failures in a row (failed round trips
// and dials, and, while a dial of a node that has been down for a while
// runs, each 50 ms in which queued commands reached their deadlines: see
// docs/reliability.md), the node's circuit breaker opens and commands
// fail at once with ErrCircuitOpen until a probe of the node succeeds.
//
// # Order
//
// Each command is routed by one key: its first key (Do: the first key the
// server's key specs find in its arguments; see Engine.Do), or none.
// Commands routed by the same key and issued by one goroutine complete in
// the order they were issued, across batches, retries and (in cluster
// mode) slot moves. What that means for commands with several keys:
//
//   - Standalone with the default PoolSize of 1: one connection carries
//     everything, so all the commands of one goroutine keep their order,
//     keyless ones included.
//   - Standalone with PoolSize > 1: the routing key picks one of the
//     connections. A multi-key command is ordered only with the commands
//     routed by its first key: after Set(ctx, "b", ...), MGet(ctx, "b", "a")
//     sees the write but MGet(ctx, "a", "b") may run before it, on another
//     connection. Await the earlier command when that matters. Keyless
//     commands share one connection, in order among themselves. One
//     exception: when another connection's failures open the node's
//     breaker, a command refused at once with ErrCircuitOpen may complete
//     before an earlier command for the same key still in flight (its
//     reply, or its failure, comes after).
//   - Cluster mode: the order holds per hash slot, so a multi-key command
//     (its keys share a slot) is ordered with the commands for any of its
//     keys; MGet, MSet, Del, Exists and Unlink split across slots are
//     ordered per slot, each part with that slot's commands. Keyless
//     commands go to the primaries in turn: no order among them (PUBLISH
//     goes by its channel's slot: in order per channel). With
//     ReadFrom replica, reads go to a replica of the slot's shard and
//     are not ordered with the writes.
//   - Sentinel mode: as standalone, on the primary the sentinels name; the
//     primary's connection actors keep their mailboxes across failovers,
//     so the order holds across them too (commands held during a failover
//     go to the new primary in order). With ReadFrom replica, reads go to
//     a replica and are not ordered with the writes.
//   - Tx, Watch (its reads included), Dedicated, blocking commands, a
//     BatchWriter, subscriptions and stream consumers use connections of
//     their own: they are not ordered with commands fired through the
//     engine's methods (or a Pipeline) that have not completed. Await a
//     write that one of them must see: eng.Set(ctx, k, v, 0).Err(ctx),
//     then eng.Watch(ctx, fn, k).
//
// # Errors
//
// A missing key is ErrNil (errors.Is); an error reply from the server is a
// *ServerError carrying its prefix as the server sent it (ERR, WRONGTYPE,
// ...); arguments the
// engine can reject before sending fail with ErrInvalidArgument; a full
// mailbox under the reject policy fails with ErrBackpressure; anything after
// Close fails with ErrClosed. Other errors are transport errors from the
// driver. The engine never panics on bad input. A Pipeline, a Tx, a
// Subscription, a BatchWriter or a Consumer that was not made by the
// engine (a zero value) is not one: its methods fail with an error
// matching ErrNotCreated (a TxReader's with ErrInvalidArgument), a
// Subscription's Channel and a Consumer's Done are closed, and nothing
// panics or waits, except that a nil *Pipeline or *Tx panics as a nil
// pointer does. A zero or nil Engine's Close and Ping report
// ErrNotCreated and IsHealthy false, rather than a health that was never
// there; its other methods may panic.
//
// # Connection state
//
// The engine's connections are shared by every caller, so commands that
// change a connection's state (MULTI, EXEC, WATCH, SELECT, AUTH, HELLO,
// RESET, CLIENT REPLY, CLIENT TRACKING, CLIENT SETNAME, the SUBSCRIBE
// family, MONITOR, QUIT, READONLY, ASKING, SCRIPT DEBUG YES, ...) fail at once when sent
// through Do, Pipeline.Do, Tx.Do, TxReader.Do or BatchWriter.Write, with a
// *ConnectionStateError (ErrConnectionState) naming what to use instead:
// Tx, Watch, Subscribe, Config.DB, Config.ClientName, or Dedicated, which
// lends a connection of one's own for any command sequence and puts it
// back clean (RESET) afterwards.
//
// # Synchronous use
//
// Engine.Sync returns a Client whose methods block and return plain values,
// for code that does not want futures.
//
// # Hooks and logging
//
// Config.Hooks observe the engine (package hooks: commands fired and
// completed, dials, pipelines, breaker changes, retries, redirects,
// subscribers, consumers; package otelvactor: OpenTelemetry). Only
// PreExecution runs on the caller's goroutine; every other hook runs on
// the engine's hook goroutine, fed through a bounded queue that no engine
// goroutine ever waits on (Stats.HookDropped counts what a slow hook
// missed, Stats.HookPanics what panicked). Config.Logger, filtered by
// Config.LogLevel, receives the engine's logs (hooks.Logging) and the
// actor library's; no password, value or (above debug) key is logged.
package engine
