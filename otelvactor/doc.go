// Package otelvactor is vactor's OpenTelemetry hook: metrics following the
// database client semantic conventions, one span per command, and the
// engine's own metrics (pipelines, mailboxes, breakers, retries, redirects,
// pub/sub, stream consumers).
//
//	h, err := otelvactor.New() // the global providers; see the options
//	if err != nil { ... }
//	eng, err := engine.New(ctx, config.DefaultConfig().WithHooks(h))
//	if err != nil { ... }
//	reg, err := h.Observe(eng) // the gauges that read the engine's state
//	defer reg.Unregister()
//
// # Metrics
//
// From the semantic conventions (attributes: db.system.name, "valkey"
// unless WithSystemName; db.operation.name, the command's name in upper
// case, _OTHER past 1,024 distinct names; server.address and
// server.port, for at most 1,024 node addresses (see below);
// db.namespace, the DB index; error.type and, for an error
// reply, db.response.status_code, its prefix; db.client.connection.pool.name,
// the node's "host:port"):
//
//	db.client.operation.duration          histogram, s, buckets DurationBuckets
//	db.client.connection.count            up-down counter, state idle or used (Observe; see below)
//	db.client.connection.create_time      histogram, s
//	db.client.connection.pending_requests up-down counter: queued, in flight and held for a reconnect (Observe)
//
// The engine's own:
//
//	vactor.pipeline.size                  histogram of commands per pipeline (PipelineSizeBuckets)
//	vactor.pipeline.duration              histogram, s: a pipeline's round trip (error.type when a transport error ended it)
//	vactor.mailbox.depth                  gauge per node (Observe)
//	vactor.mailbox.full                   counter, vactor.rejected
//	vactor.breaker.state                  gauge per node: 0 closed, 1 half-open, 2 open (Observe)
//	vactor.breaker.transitions            counter, vactor.breaker.from and .to
//	vactor.retries                        counter of commands kept to be sent again
//	vactor.redirects                      counter, vactor.redirect.kind
//	vactor.connection.lost                counter
//	vactor.actor.restarts                 counter
//	vactor.slotmap.loads                  counter, vactor.result and vactor.changed
//	vactor.sentinel.switches              counter, vactor.sentinel.master: switches to a new primary
//	vactor.pubsub.reconnects              counter
//	vactor.pubsub.gap                     histogram, s: time without subscription
//	vactor.pubsub.dropped                 counter of messages OverflowDrop dropped
//	vactor.pubsub.refused                 counter of resubscribes the server refused (error.type), a moved shard channel's included
//	vactor.stream.consumer.lag            gauge per server and group (its streams summed), after each reclaim round
//	vactor.stream.consumer.pending        gauge per server and group (its streams summed)
//	vactor.stream.consumer.redeliveries   counter per server and group
//	vactor.stream.consumer.entries        counter per server and group, vactor.event claimed, acked or handler_failed
//	vactor.hooks.dropped                  counter of hook events dropped (Observe)
//
// db.client.connection.count counts, per node, the connection actors'
// connections (pool name "host:port"; used while a pipeline is in flight)
// and the connections of the engine's two dedicated pools, under pool
// names of their own: "host:port/tx" for transactions (Tx, Watch) and
// "host:port/dedicated" for Engine.Dedicated (idle: kept in the pool;
// used: lent out or being dialled). It does not count the connections of
// blocking commands (the driver's own pool, which the engine does not
// see), subscribers (engine.Stats.SubConns), stream consumers or batch
// writers. pending_requests and vactor.mailbox.depth are the connection
// actors' pools' only. db.client.connection.create_time records every
// connection made under its node's "host:port" (a dial does not know its
// pool), with vactor.dedicated true for every connection of its own
// (transactions, Dedicated, subscribers, consumers, blocking commands,
// batch writers) and false for the connection actors'.
//
// One Hook may observe several engines (Observe each): every series is
// then reported once for all of them, the counts, depths and dropped
// events of engines connected to the same node summed, and a node's
// breaker state the worst of the engines'.
//
// No attribute holds a key or a value: the consumer metrics name the group
// (vactor.stream.group) and the server the consumer reads from
// (server.address, server.port), not the stream: groups of the same name
// on two servers are two series. The lag and pending gauges report a
// (server, stream, group) until every consumer whose latest report it is
// has stopped (hooks.Stopped, which the engine never drops for a full
// hook queue) or reports from another server (a failover, a slot moved):
// a stopped or moved consumer's last values are not kept. Consumers are
// told apart by hooks.Consumer.Instance, not by their names.
//
// error.type is the error prefix for an error reply (WRONGTYPE, ERR, ...)
// when it has the shape of an error code (an upper-case letter, then
// upper-case letters, digits, '_' or '-', at most 32): "_OTHER", without
// db.response.status_code, for a reply that begins otherwise (a script's
// error_reply("user:42 not found") would make a series per value), and
// for a code first seen after 64 distinct others (a script whose error
// replies begin with "ORDER-4711" would make a series per order);
// for the engine's errors: timeout (context.DeadlineExceeded), canceled
// (context.Canceled), circuit_open (engine.ErrCircuitOpen), backpressure
// (ErrBackpressure), closed (ErrClosed), outcome_unknown
// (ErrOutcomeUnknown), too_many_redirects (ErrTooManyRedirects),
// invalid_argument (ErrInvalidArgument, ErrConnectionState), tx_aborted
// (ErrTxAborted: a watched key changed, the optimistic lock's normal
// contention), discarded (ErrDiscarded), pool_exhausted
// (ErrPoolExhausted), no_slot_owner (ErrNoSlotOwner), node_removed
// (ErrNodeRemoved), not_primary (ErrNotPrimary) or primary_changed
// (ErrPrimaryChanged: sentinel mode cut it at a switch); _OTHER for transport
// errors (and any other error not named here). A nil reply (engine.ErrNil)
// is not an error. An error that matches several is named after the first
// of: the server's reply, outcome_unknown (a command its ctx cut after it
// was sent matches the ctx's error too, but may have run), then the order
// above.
//
// The attribute set of each series (operation, node, error, DB) is built
// once and kept, so recording a command allocates nothing. A hook keeps
// the attributes and series of at most 1,024 node addresses, so that a
// cluster whose nodes are replaced over months, each under a new address,
// does not make it keep every address it ever saw: when a new address
// comes at that bound, the hook forgets the nodes that no command, event
// or observed engine's state named since its previous such sweep (at most
// one a minute), with their series and their points in a Producer (a
// node that comes back starts its series again, with a new start time).
// While it can forget none (more than 1,024 nodes in use), the new
// addresses are reported as server.address "_OTHER" without
// server.port; one minute later the nodes that fell idle meanwhile make
// room. At high command
// rates, WithProducer and a Producer given to the reader make the hook
// aggregate db.client.operation.duration itself: ~30 ns per command
// instead of the SDK's ~270 (see Producer).
//
// # Spans
//
// Unless WithoutTracing, every command gets a span of kind CLIENT named
// after its operation ("GET"), a child of the span in the command's
// context, from the moment it is fired to the completion of its future.
// It carries db.system.name, db.operation.name, db.namespace,
// server.address and server.port, error.type and db.response.status_code
// on failure (status Error), and the pipeline that carried it as the
// attributes vactor.pipeline.seq (spans with the same one went in one
// write) and vactor.pipeline.size (not db.operation.batch.size: the
// span is one command, not a batch operation, which that attribute
// describes).
// db.query.text is off by default; WithQueryText sets it to the command's
// name followed by one "?" per argument. The attributes are given when
// the span starts, where the sampler sees them; WithoutSamplerAttributes
// sets them right after instead, which costs less and suits samplers that
// do not read attributes (all of the SDK's).
//
// The spans are made, started and ended at once, on the engine's hook
// goroutine, from the completion event with its timestamps: a command
// whose PostExecution event was dropped (the hooks fell behind:
// engine.Stats.HookDropped) has no span and is not in
// db.client.operation.duration; no span is left open.
package otelvactor
