package policies

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrCircuitOpen fails a command sent to a node whose circuit breaker is
	// open (or half-open, while the supervisor's probe runs): the command
	// was not sent. Not retried by the engine: the breaker decides when the
	// node is tried again.
	ErrCircuitOpen = errors.New("vactor: circuit breaker open")

	// ErrOutcomeUnknown fails a command that was written on a connection
	// that then failed before its reply arrived: it may or may not have
	// run. The error is an *OutcomeUnknownError that also wraps the
	// transport error. Such a command is retried only when it may be
	// repeated (read-only, or marked with WithIdempotent).
	ErrOutcomeUnknown = errors.New("vactor: outcome unknown: the command was sent but its reply was lost")

	// ErrNoSlotOwner fails a cluster command whose hash slot no node serves
	// in the engine's slot map, read again at once before failing it: the
	// slot's primary failed and no replica has taken over yet, or the slot
	// is not assigned. The command was not sent. Retryable (IsRetryable):
	// a failover ends with a new owner.
	ErrNoSlotOwner = errors.New("vactor: no cluster node serves the slot")

	// ErrRetryBudget is matched (errors.Is) by the error of a repeatable
	// command (a read, or one issued WithIdempotent) that a broken
	// connection hit after it was written and that the engine did not send
	// again because the retry budget was spent (the engine's: one per node,
	// 10% of its traffic, burst 100, for resends past the first):
	// it stopped resending to protect the server. The error is an
	// outcome-unknown one (ErrOutcomeUnknown) wrapping the transport error.
	ErrRetryBudget = errors.New("vactor: retry budget exhausted")
)

// CircuitOpenError is the error of a command failed because the breaker
// of its node is open: errors.Is(err, ErrCircuitOpen) holds. Addr is the
// node; Cause, when known, is the last failure the breaker counted there
// (a transport error, or why the node could not be reached: a refused
// dial, a rejected password, ...), which says why the node is out. Cause
// is in the message but is not unwrapped: the command itself was not
// sent, so errors.As must not find a server reply to it in its error.
type CircuitOpenError struct {
	Addr  string
	Cause error
}

func (e *CircuitOpenError) Error() string {
	if e.Cause == nil {
		return fmt.Sprintf("%s: node %s", ErrCircuitOpen.Error(), e.Addr)
	}
	if e.Cause == context.DeadlineExceeded {
		// The bare deadline of a round trip the node did not answer in
		// time (a pipeline abandoned at its commands' deadlines, a probe's
		// PING): said as it is, it read as the caller's own ctx (qa-BB BB-3).
		return fmt.Sprintf("%s: node %s, last failure: no reply from the node before a deadline (%s)", ErrCircuitOpen.Error(), e.Addr, e.Cause)
	}
	return fmt.Sprintf("%s: node %s, last failure: %s", ErrCircuitOpen.Error(), e.Addr, oneLine(e.Cause))
}

// oneLine is err's text on one line: the errors errors.Join made (a
// failure and the reply lost with it) are separated by "; " instead of a
// newline, which would split a log line (qa-AY AY-4).
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// Is reports whether target is ErrCircuitOpen.
func (e *CircuitOpenError) Is(target error) bool { return target == ErrCircuitOpen }

// OutcomeUnknownError is the error of a command whose outcome is unknown.
// errors.Is(err, ErrOutcomeUnknown) and errors.Is(err, Cause) both hold.
type OutcomeUnknownError struct {
	Cause error
}

func (e *OutcomeUnknownError) Error() string {
	if e.Cause == nil {
		return ErrOutcomeUnknown.Error()
	}
	return fmt.Sprintf("%s: %s", ErrOutcomeUnknown.Error(), oneLine(e.Cause))
}

// Unwrap returns ErrOutcomeUnknown and the cause.
func (e *OutcomeUnknownError) Unwrap() []error { return []error{ErrOutcomeUnknown, e.Cause} }

// NewRetryable returns a sentinel error (compare it with errors.Is) that
// says the command it fails was not sent and may be tried again as it is:
// IsRetryable reports true for any error that wraps one.
func NewRetryable(text string) error { return &retryableError{text} }

type retryableError struct{ text string }

func (e *retryableError) Error() string { return e.text }

// retryable marks the errors of NewRetryable (IsRetryable).
func (e *retryableError) retryable() {}
