package mailbox

import "errors"

var (
	// ErrBackpressure fails a command posted to a full mailbox under the
	// Reject policy. It is not retryable by vactor: the caller decides
	// whether to slow down and try again.
	ErrBackpressure = errors.New("mailbox: full (backpressure)")

	// ErrClosed fails a command posted to, or still queued in, a mailbox
	// that was closed without a more specific error.
	ErrClosed = errors.New("mailbox: closed")

	// ErrActorFailed fails the commands of a batch whose actor panicked
	// before completing them. The commands may or may not have been written.
	ErrActorFailed = errors.New("mailbox: actor failed while handling the batch")
)
