package hooks

import (
	"strconv"
	"time"
)

// The events are plain values: a hook may keep them. Their strings and
// errors are never modified after the call, except Command.Args (see
// there). Node fields are "host:port" as the engine dials them (in
// sentinel mode the primary's address of the moment: its connection
// actors keep their name across failovers, the events name the server).

// Command is a command being fired, for PreExecution.
type Command struct {
	// Name is the command's name as it is sent: "GET", "SET", the name
	// given to Do (in the case given).
	Name string
	// Args are the command's arguments after Name. They belong to the
	// engine and are valid only during the call: copy what you keep. They
	// hold keys and values: never log or export them as they are.
	Args []string
}

// Executed is a command that completed, for PostExecution.
type Executed struct {
	// Name is the command's name, as in Command; Args the number of its
	// arguments (their values are not kept). A hook that wants them at
	// completion (a slow-command log, say) asks for them this way: its
	// PreExecution copies what it needs into the context it returns, and
	// its PostExecution gets that context back; only such hooks pay for
	// the copy. Whether the reply was an error is Err; the reply itself is
	// the future's.
	Name string
	Args int
	// Node is the node whose connection actor carried the command's last
	// attempt, the node of a blocking command's, a transaction's or a
	// DedicatedConn's own connection, or the node whose open circuit
	// breaker refused the command (Err an *engine.CircuitOpenError); ""
	// when nothing carried it otherwise (refused before: full mailbox,
	// expired context, a cluster slot no node serves). A command fired on a closed engine reaches no hook
	// at all: the hooks stopped with the engine.
	Node string
	// Err is the error the command's future completed with: nil on
	// success; the engine's ErrNil for a nil reply (not a failure); a
	// *engine.ServerError for an error reply; a transport, context or
	// engine error otherwise. An error reply's text is the server's and
	// may quote the command's arguments ("ERR unknown command 'X', with
	// args beginning with: ..."): do not log or export it where
	// arguments must not go.
	Err error
	// Duration is the time from firing (before PreExecution) to the
	// completion of the future, which happened at Done. For a command
	// answered in a pipeline, the completion is when the pipeline's round
	// trip ended (one clock reading per pipeline).
	Duration time.Duration
	Done     time.Time
	// Retries counts the times the command was sent again after a
	// transport failure; Redirects the cluster redirects it followed and
	// the times it was moved to its slot's new owner after a failed node
	// refused it unrun (those have no Redirected event and are not in
	// the engine's Stats.Redirects, which count the cluster's MOVED, ASK,
	// TRYAGAIN and CLUSTERDOWN replies only).
	Retries, Redirects int
	// Pipeline is the sequence number (per engine, from 1) of the pipeline
	// that carried the command's last attempt, and PipelineSize the number
	// of commands in it (a transaction's: its commands, MULTI and EXEC);
	// 0 when no pipeline of the engine's did (blocking commands, a
	// DedicatedConn's).
	Pipeline     uint64
	PipelineSize int
	// DB is the logical database (config.Config.DB).
	DB int
}

// Dial is a connection being dialled, for PreConnection. A node's pool
// (Config.PoolSize connections) is dialled at once, so the Dial and
// Dialed events of one node's dials may interleave; nothing pairs them
// but their order per goroutine.
type Dial struct {
	Node string
	// TLS is true when the connection uses TLS.
	TLS bool
	// Dedicated is true for a connection of its own (subscriber, stream
	// consumer, transaction, blocking command, batch writer), false for a
	// connection actor's shared, pipelined one.
	Dedicated bool
	// Initial is true for a connection actor's first connection (at New,
	// or a cluster node's first use), false for a reconnect or a probe.
	Initial bool
	// Probe is true for a probe of a node whose circuit breaker is open: a
	// connection made to check that the node answers PING, closed at once.
	Probe bool
	// Sentinel is true for a connection to a sentinel (sentinel mode: its
	// event subscription, a lookup of the primary); Node is the
	// sentinel's address, Dedicated is true.
	Sentinel bool
}

// Dialed is the end of a dial, for PostConnection.
type Dialed struct {
	Node                                     string
	TLS, Dedicated, Initial, Probe, Sentinel bool
	// Err is why the dial failed, nil when connected.
	Err error
	// Duration is the time the dial took, handshake included.
	Duration time.Duration
}

// Lost is a connection actor's connection that failed, for
// ConnectionLost.
type Lost struct {
	Node string
	// Err is the transport error.
	Err error
	// Kept is the number of the pipeline's commands kept to be sent again
	// after the reconnect; the others failed.
	Kept int
}

// Restart is a connection actor's restart, for ActorRestarted.
type Restart struct {
	Node string
	// Restarts counts this actor's restarts so far, this one included.
	Restarts uint64
}

// Pipeline is one pipeline of a connection actor, for PipelineWritten and
// PipelineAnswered.
type Pipeline struct {
	Node string
	// Seq numbers the engine's pipelines, from 1 (Executed.Pipeline).
	Seq uint64
	// Size is the number of commands in it.
	Size int
	// Bytes is the size of the request as written (RESP), computed only
	// when a PipelineWritten or PipelineAnswered hook is registered.
	Bytes int
	// Queued is the number of commands still waiting in the actor's
	// mailbox when the pipeline was written.
	Queued int
	// RTT is the round trip, from the write to the last reply (answered
	// only).
	RTT time.Duration
	// Err is the transport error that ended the round trip (answered
	// only); error replies to single commands are not transport errors.
	Err error
}

// Backpressure is a full mailbox, for MailboxFull.
type Backpressure struct {
	// Node is the connection actor's node; "" for a cluster slot actor's
	// mailbox.
	Node string
	// Rejected is true when the commands failed with ErrBackpressure,
	// false when they wait for room.
	Rejected bool
	// Commands is the number of commands concerned.
	Commands int
}

// Breaker states, as in BreakerChange and engine.NodeStats.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
)

// BreakerChange is a node's circuit breaker changing state, for
// BreakerChanged.
type BreakerChange struct {
	Node string
	// From and To are BreakerClosed, BreakerOpen or BreakerHalfOpen.
	From, To string
}

// Retry is a connection actor keeping commands to send again, for
// RetryScheduled.
type Retry struct {
	Node string
	// Commands is the number of commands kept to be sent again.
	Commands int
	// Attempt counts the connection's consecutive failed round trips and
	// reconnects, this one included.
	Attempt int
	// Backoff is the delay before the reconnect after which they are sent.
	Backoff time.Duration
	// Reason is the failure.
	Reason error
}

// Redirect kinds, as in Redirect.Kind.
const (
	RedirectMoved       = "MOVED"
	RedirectAsk         = "ASK"
	RedirectTryAgain    = "TRYAGAIN"
	RedirectClusterDown = "CLUSTERDOWN"
)

// Redirect is a cluster redirect the engine followed, for Redirected.
type Redirect struct {
	// Kind is RedirectMoved, RedirectAsk, RedirectTryAgain or
	// RedirectClusterDown.
	Kind string
	// Name is the redirected command's name.
	Name string
	Slot int
	// From is the slot's owner in the engine's slot map when the redirect
	// came back (the node that answered, unless the map changed
	// meanwhile); To is the node named by MOVED or ASK, "" for TRYAGAIN
	// and CLUSTERDOWN (the command is sent again after a backoff).
	From, To string
	// GaveUp is true when the command had used up Config.MaxRedirects: it
	// failed instead.
	GaveUp bool
}

// SlotMap is a load of the cluster slot map, for SlotMapLoaded.
type SlotMap struct {
	// Epoch numbers the engine's slot maps; it grows with each map
	// installed.
	Epoch uint64
	// Shards is the number of shards (primaries) in the new map.
	Shards int
	// Moved is the number of slots whose primary differs from the previous
	// map's.
	Moved int
	// Duration is how long the load took.
	Duration time.Duration
	// Err is why the load failed (the map is unchanged), nil when loaded.
	Err error
}

// SentinelSwitch is a switch to a new primary named by the sentinels, for
// SentinelSwitched.
type SentinelSwitch struct {
	// Master is the name the sentinels monitor the primary under.
	Master string
	// From is the previous primary ("" at the first), To the new one.
	From, To string
}

// SubscriberKind says what a Subscriber event reports.
type SubscriberKind uint8

const (
	// Subscribed: a subscriber connection subscribed for the first time.
	Subscribed SubscriberKind = iota
	// Disconnected: a subscriber connection was lost (Err says why);
	// messages published until the Resubscribed are missed.
	Disconnected
	// Resubscribed: a new connection subscribed again after a Disconnected;
	// Gap is the time without a subscription.
	Resubscribed
	// MessagesDropped: a subscription with engine.OverflowDrop dropped
	// Count messages since the previous such event (at most one a second
	// per subscription).
	MessagesDropped
	// Refused: after a Disconnected, the server refused to subscribe the
	// subscription's set again on a new connection (Err: its error reply,
	// such as NOPERM after an ACL change, or a refused handshake such as
	// WRONGPASS). The subscription keeps trying at the reconnect backoff;
	// one event per distinct error until a Resubscribed. With
	// ShardChannel set: a shard channel whose slot moved, refused by its
	// new owner. Also a subscribe nobody waited for (made from a Handler,
	// or whose ctx ended first) that the server refused.
	Refused
)

func (k SubscriberKind) String() string {
	switch k {
	case Subscribed:
		return "subscribed"
	case Disconnected:
		return "disconnected"
	case Resubscribed:
		return "resubscribed"
	case MessagesDropped:
		return "dropped"
	case Refused:
		return "refused"
	}
	return "SubscriberKind(" + strconv.Itoa(int(k)) + ")"
}

// Subscriber is an event of a subscription, for SubscriberEvents.
type Subscriber struct {
	Kind SubscriberKind
	// Node is the node of the subscriber connection the event concerns;
	// "" for MessagesDropped (the messages of every node of the
	// subscription).
	Node string
	// Instance tells one subscription (one Engine.Subscribe,
	// PSubscribe, SSubscribe or SubscribeWith call, with all its
	// connections: a cluster's subscribes one per node) apart from every
	// other of the process, also from one on the same node and channels:
	// it is the same in all of a subscription's events and differs
	// between subscriptions (it is never 0). A hook that keeps state per
	// subscription keys it by Instance (and Node, for the state of one of
	// its connections).
	Instance uint64
	Err      error         // Disconnected, Refused
	Gap      time.Duration // Resubscribed
	// Count is the number of messages dropped (MessagesDropped).
	Count uint64
	// ShardChannel is set when the event concerns one shard channel whose
	// slot moved (Disconnected, Refused, Resubscribed), "" for a whole
	// connection.
	ShardChannel string
	// Shards is true for an event of a connection that carries shard
	// channels (SSUBSCRIBE, cluster mode), false for the one that carries
	// channels and patterns (and for every connection in standalone and
	// sentinel mode): two connections of a subscription on one node are
	// told apart by it.
	Shards bool
}

// ConsumerKind says what a Consumer event reports.
type ConsumerKind uint8

const (
	// Claimed: a reclaim round (XAUTOCLAIM) took over Count entries idle
	// for longer than ConsumeOptions.ClaimIdle.
	Claimed ConsumerKind = iota
	// Redelivered: Count entries already delivered to this consumer were
	// handed to the handler again (its own pending entries after a
	// reconnect, and claimed entries).
	Redelivered
	// Acked: Count entries were acknowledged (XACK).
	Acked
	// HandlerFailed: the handler returned Err (or panicked) for entry ID;
	// the entry stays pending.
	HandlerFailed
	// Lag: after a reclaim round, the group's lag (entries not yet
	// delivered to the group) and pending count, from XINFO GROUPS. Lag is
	// -1 when the server does not report it.
	Lag
	// Stopped: the consumer stopped for good (its Close, or the engine's
	// Close), the last of its events: its Lag values are no longer
	// current. Count, ID, Err, Lag and Pending are zero.
	Stopped
	// Interrupted: the consumer's connection failed (Err: a transport
	// error, a silent server, a redirect after a failover or a slot
	// move, a refused command) and it reconnects with backoff; once per
	// interruption, not per failed attempt.
	Interrupted
	// Resumed: after an Interrupted, the consumer reads again (a new
	// connection answered the group's check and the read of the
	// consumer's pending entries, before the new connection's reclaim
	// and blocked read); Gap is the time since the Interrupted.
	Resumed
)

func (k ConsumerKind) String() string {
	switch k {
	case Claimed:
		return "claimed"
	case Redelivered:
		return "redelivered"
	case Acked:
		return "acked"
	case HandlerFailed:
		return "handler-failed"
	case Lag:
		return "lag"
	case Stopped:
		return "stopped"
	case Interrupted:
		return "interrupted"
	case Resumed:
		return "resumed"
	}
	return "ConsumerKind(" + strconv.Itoa(int(k)) + ")"
}

// Consumer is an event of a stream consumer, for ConsumerEvents.
type Consumer struct {
	Kind                    ConsumerKind
	Stream, Group, Consumer string
	// Node is the node ("host:port") the consumer reads the stream from:
	// the one its current connection goes to, "" before it first picked
	// one. It changes when the stream's primary does (a failover, a
	// cluster slot moved). Streams of the same name on two servers are
	// two streams: Node tells them apart.
	Node string
	// Instance tells one consumer (one Engine.Consume call) apart from
	// every other of the process, also from one with the same stream,
	// group and name (on another server, or started twice): it is the
	// same in all of a consumer's events, its Stopped included, and
	// differs between consumers (it is never 0). A hook that keeps
	// state per consumer keys it by Instance.
	Instance     uint64
	Count        int
	ID           string        // HandlerFailed
	Err          error         // HandlerFailed, Interrupted
	Lag, Pending int64         // Lag
	Gap          time.Duration // Resumed
}
