package actors

import (
	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/mailbox"
)

// Command is one command for a connection actor: the mailbox.Message it
// travels as, the valkey-go command to write, and the completion that turns
// the reply into the caller's result. Complete and Fail are each called at
// most once by the actor, never both; Fail may also be called by the mailbox.
type Command interface {
	mailbox.Message
	// Cmd returns the command to write. The driver owns it once written.
	Cmd() valkey.Completed
	// Complete completes the command with its reply (or transport error).
	Complete(r valkey.ValkeyResult)
	// Attempts returns how many times the command was sent again after a
	// transport failure (the connection actor's retries, bounded by
	// Policy.MaxRetries). Cluster redirects are counted apart (see
	// Hooked.Redirects).
	Attempts() int
	// Retrying counts one more transport retry; the connection actor calls
	// it when it keeps the command to send again, with written true when
	// the command was written before the failure (it may have run).
	Retrying(written bool)
	// Rewrites returns how many of those retries followed a failure after
	// the command was written (Retrying(true)): the first is free of the
	// retry budget, a not-sent retry before it or not.
	Rewrites() int
}

// Resendable is a Command a connection actor may send again after the
// server answered it: with READONLY or MASTERDOWN, the server it went to is
// no longer the primary (ConnState.NotPrimary), so it did not run.
type Resendable interface {
	Command
	// Resendable reports whether Cmd can be made valid again once the
	// server answered it (valkey-go recycles answered commands unless
	// they are pinned): the command keeps its parts, or is pinned.
	Resendable() bool
	// Renew makes Cmd valid again after the server answered it.
	Renew()
	// Redirects returns how many times the command was sent elsewhere
	// (here: after READONLY or MASTERDOWN), bounded by
	// ConnState.MaxResends.
	Redirects() int
	// Redirected counts one more.
	Redirected()
}
