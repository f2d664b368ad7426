package engine

import (
	"context"
	"errors"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

var (
	// ErrNil is the error of a typed future whose command found nothing:
	// GET of a missing key, LPOP of an empty list, ZSCORE of a missing
	// member. Not a failure of the engine; never retried.
	ErrNil = errors.New("vactor: nil reply")

	// ErrClosed fails commands issued after Close, and commands still
	// queued (not yet written) when Close ran. Not retryable.
	ErrClosed = errors.New("vactor: engine closed")

	// ErrBackpressure fails a command when its connection actor's mailbox
	// is full and Config.Backpressure is BackpressureReject. It is
	// mailbox.ErrBackpressure. Not retried by the engine: the caller decides.
	ErrBackpressure = mailbox.ErrBackpressure

	// ErrCircuitOpen fails a command to a node whose circuit breaker is
	// open: it was not sent. It is policies.ErrCircuitOpen. The breaker
	// closes by itself once a probe of the node succeeds; not retried.
	ErrCircuitOpen = policies.ErrCircuitOpen

	// ErrOutcomeUnknown fails a command that was written on a connection
	// that failed before the reply came back: it may have run. It is
	// policies.ErrOutcomeUnknown; the error also wraps the transport error.
	// Such commands are sent again only when repeatable: read-only, or
	// issued with a context from WithIdempotent.
	ErrOutcomeUnknown = policies.ErrOutcomeUnknown

	// ErrNodeRemoved fails a command queued for a cluster node that left
	// the slot map for good (its connection actors were stopped). It was
	// not sent; the node served none of its slots any more.
	ErrNodeRemoved = errors.New("vactor: cluster node removed")

	// ErrInvalidArgument fails a command whose arguments the engine can
	// reject before sending it (an odd number of field/value arguments, a
	// missing key, ...). Nothing is sent. Not retryable.
	ErrInvalidArgument = errors.New("vactor: invalid argument")

	// ErrTxAborted fails a transaction whose EXEC the server refused
	// because a key it WATCHed changed (Engine.Watch): none of its
	// commands ran, and every future of the transaction fails with it.
	// Running the transaction again (Engine.WatchRetry) is safe.
	ErrTxAborted = errors.New("vactor: transaction aborted: a watched key changed")

	// ErrDiscarded fails the futures of a Pipeline or Tx that was
	// discarded instead of executed (Discard, or a Watch function that
	// returned an error): nothing was sent.
	ErrDiscarded = errors.New("vactor: commands discarded, not sent")
)

// ServerError is an error reply from the server: the command reached the
// server and was refused (unknown command, WRONGTYPE, OOM, ...). Prefix is
// the error's first word, such as "ERR", "WRONGTYPE" or "MOVED". A server
// error is not a transport failure: the connection is fine.
type ServerError struct {
	Prefix  string // "ERR", "WRONGTYPE", "NOSCRIPT", ...
	Message string // the whole error text, prefix included
}

func (e *ServerError) Error() string { return "vactor: server error: " + e.Message }

// ServerErrorCode returns Prefix; policies.IsRetryable uses it.
func (e *ServerError) ServerErrorCode() string { return e.Prefix }

// Is reports whether target is a *ServerError with the same prefix, so
// errors.Is(err, &ServerError{Prefix: "WRONGTYPE"}) works; a CROSSSLOT
// reply also matches ErrCrossSlot.
func (e *ServerError) Is(target error) bool {
	if target == ErrCrossSlot {
		return e.Prefix == "CROSSSLOT"
	}
	t, ok := target.(*ServerError)
	return ok && t.Prefix == e.Prefix && (t.Message == "" || t.Message == e.Message)
}

// mapError turns a valkey-go error into the engine's: nil replies become
// ErrNil, error replies *ServerError; transport errors pass through.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if valkey.IsValkeyNil(err) {
		return ErrNil
	}
	if ve, ok := valkey.IsValkeyErr(err); ok {
		msg := ve.Error()
		prefix, _, _ := strings.Cut(msg, " ")
		if !isErrorCode(prefix) {
			// valkey-go strips the generic "ERR " prefix: put it back.
			prefix, msg = "ERR", "ERR "+msg
		}
		return &ServerError{Prefix: prefix, Message: msg}
	}
	return err
}

// isErrorCode reports whether s looks like an error code: upper-case
// letters (WRONGTYPE, MOVED, NOSCRIPT, ...).
func isErrorCode(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// WithIdempotent marks the commands issued with the returned context as
// safe to repeat after a connection failure (see ErrOutcomeUnknown). It is
// policies.WithIdempotent.
func WithIdempotent(ctx context.Context) context.Context { return policies.WithIdempotent(ctx) }
