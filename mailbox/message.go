package mailbox

import "context"

// Message is a command that Bounded batches. Context bounds how long the
// command may wait in the mailbox; Fail completes the command with an error
// and must be safe to call more than once and after the command completed
// (later calls are no-ops).
type Message interface {
	Context() context.Context
	Fail(err error)
}

// Batch is the user message an actor receives from Bounded: the commands
// drained in one go, in the order they were posted. Messages is valid only
// during the Receive call that got the batch: the mailbox reuses the slice
// afterwards, so an actor that keeps commands must copy them.
type Batch struct {
	Messages []Message
}
