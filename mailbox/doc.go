// Package mailbox provides Bounded, the batching mailbox that vactor plugs
// into protoactor (actor.WithMailbox).
//
// Where protoactor's default mailbox invokes an actor once per message,
// Bounded hands the actor everything queued at once as a *Batch: while the
// actor is busy with one pipeline round trip, the next batch builds up, and
// the cost of a drain is one slice swap. Commands whose context has ended
// by the time they are drained are never handed to the actor: they fail with
// the context's error.
//
// The mailbox is bounded. When it holds Capacity commands, a new command is
// handled by the Policy: Block (the default) makes the caller wait until
// there is room or its context ends; Reject fails the command at once with
// ErrBackpressure. Posters waiting for room are let in first come, first
// served. PostAll posts a group contiguously, all or nothing, with the
// policy applied to the group as a whole (a group larger than Capacity goes
// in alone, into an empty mailbox). Forward is for internal forwarders: it
// never blocks nor rejects; a group that does not fit waits in the mailbox,
// outside the queue, ahead of later posts. With HoldDrained the commands
// handed to the actor keep counting against Capacity until it releases
// them (Release), which bounds what a forwarding actor holds.
//
// Messages that are not commands (anything that does not implement
// Message) are delivered one at a time, ahead of the next batch.
package mailbox
