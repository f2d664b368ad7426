// Package actors holds vactor's protoactor actors.
//
// The connection actor (Conn) owns one driver connection and receives whole
// batches from its mailbox.Bounded: it sends each batch as one pipeline and
// completes the commands in order. The Supervisor owns the connection
// actors: it spawns them, replaces a broken connection (dialling off the
// actors) before it restarts the actor, and stops them all (each failing
// what its mailbox still holds) when the engine closes.
//
// Commands reach an actor by mailbox.Bounded.Post, not through a PID: the
// mailbox outlives actor restarts and fails commands itself once closed, so
// a command is never lost to protoactor's dead letters.
package actors
