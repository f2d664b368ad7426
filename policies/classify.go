package policies

import (
	"context"
	"errors"
	"net"
	"syscall"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
)

// IsRetryable reports whether err says that a command did not run and may
// be tried again as it is:
//
//   - the connection could not be made, so nothing was written (connection
//     refused, or a reset or timeout while dialling);
//   - the server refused it for a passing reason: LOADING (restarting from
//     disk), TRYAGAIN, CLUSTERDOWN, MASTERDOWN, or READONLY (a failover
//     turned the node into a replica);
//   - in cluster mode, no node serves the command's slot
//     (ErrNoSlotOwner: a failover is under way);
//   - the engine could not send it for a passing reason, with an error
//     made by NewRetryable: the sentinels name no primary yet
//     (engine.ErrNoPrimary), the node is not the primary any more
//     (engine.ErrNotPrimary), a slot kept moving (ErrTooManyRedirects), a
//     cluster node left the map (ErrNodeRemoved), every dedicated
//     connection is lent (ErrPoolExhausted).
//
// Errors that say a command was written and then lost are not retryable by
// this test: they are ErrOutcomeUnknown, and only repeatable commands are
// retried after them. Context errors, ErrCircuitOpen, error replies such
// as WRONGTYPE, and nil replies are never retryable.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, ErrOutcomeUnknown) || errors.Is(err, ErrCircuitOpen) {
		return false
	}
	if errors.Is(err, ErrNoSlotOwner) {
		return true
	}
	var r interface{ retryable() }
	if errors.As(err, &r) {
		return true
	}
	if code := ServerErrorCode(err); code != "" {
		switch code {
		case "LOADING", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY":
			return true
		}
		return false
	}
	return NotSent(err)
}

// NotSent reports whether a transport error happened before anything was
// written: the connection was refused or could not be dialled, or the
// driver says so (drivers.ErrNotSent).
func NotSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, drivers.ErrNotSent)
}

// IsTransport reports whether err is a transport failure (the connection
// or the network, not an error reply and not a nil reply), excluding the
// caller's context errors.
func IsTransport(err error) bool {
	if err == nil || valkey.IsValkeyNil(err) {
		return false
	}
	if ServerErrorCode(err) != "" {
		return false
	}
	return !errors.Is(err, context.Canceled)
}
