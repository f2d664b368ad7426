package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

var (
	// ErrNil is the error of a typed future whose command found nothing:
	// GET of a missing key, LPOP of an empty list, ZSCORE of a missing
	// member. Not a failure of the engine; never retried.
	ErrNil = errors.New("vactor: nil reply")

	// ErrClosed fails commands issued after Close, and commands still
	// queued (not yet written) when Close ran. Not retryable. A closed
	// BatchWriter or Subscription returns an error that matches it
	// (errors.Is) and names the handle: "vactor: batch writer closed".
	ErrClosed = errors.New("vactor: engine closed")

	// ErrBackpressure fails a command when its connection actor's mailbox
	// is full and Config.Backpressure is BackpressureReject. It is
	// mailbox.ErrBackpressure. Not retried by the engine: the caller decides.
	ErrBackpressure = mailbox.ErrBackpressure

	// ErrCircuitOpen fails a command to a node whose circuit breaker is
	// open: it was not sent, unless the error also matches
	// ErrOutcomeUnknown (a read or WithIdempotent write whose reply was
	// lost, its resend refused by the open breaker: check
	// ErrOutcomeUnknown first). It is policies.ErrCircuitOpen; the error is a
	// *CircuitOpenError, which names the node and the last failure the
	// breaker counted there. The breaker closes by itself once a probe of
	// the node succeeds; not retried.
	ErrCircuitOpen = policies.ErrCircuitOpen

	// ErrOutcomeUnknown fails a command that was written on a connection
	// that failed before the reply came back: it may have run. It is
	// policies.ErrOutcomeUnknown; the error also wraps the transport error.
	// Such commands are sent again only when repeatable: read-only, or
	// issued with a context from WithIdempotent.
	ErrOutcomeUnknown = policies.ErrOutcomeUnknown

	// ErrRetryBudget is matched, beside ErrOutcomeUnknown, by the error of
	// a repeatable command (a read, or one issued WithIdempotent) whose
	// reply a broken connection lost and which was not sent again because
	// its node's retry budget (10% of the node's traffic, burst 100) was
	// spent: a node that keeps failing what is resent (the first resend
	// after a write is free), or a command held back behind a write the
	// spent budget refused (a resend must not land after it). A read
	// failed so may be sent again by the caller. It is
	// policies.ErrRetryBudget.
	ErrRetryBudget = policies.ErrRetryBudget

	// ErrNotSent is matched (errors.Is) by a transport error of a command
	// the driver knows it did not write: the connection was down before
	// the call. The command did not run and may be sent again. The
	// engine's own paths resend such commands on a new connection; a
	// DedicatedConn call made after its connection was lost returns it
	// (the connection holds state the caller built: only the caller can
	// start again). It is drivers.ErrNotSent.
	ErrNotSent = drivers.ErrNotSent

	// ErrNotCreated is the error of Close and Ping on an Engine that New
	// did not make (a zero value; Close on a nil *Engine too), and of the methods of a Pipeline, Tx,
	// Subscription, BatchWriter or Consumer the engine did not make (a
	// zero value; a nil *Pipeline or *Tx still panics).
	ErrNotCreated = errors.New("vactor: engine not created with New")

	// ErrNodeRemoved fails a command queued for a node the engine stopped
	// using (its connection actors were stopped): a cluster node that left
	// the slot map for good, or in sentinel mode a replica that left the
	// healthy ones the sentinels name (a failover promoted it, or it went
	// down), for reads with ReadFrom other than primary. It was not sent:
	// retryable (policies.IsRetryable), and sent again it goes to a node in
	// use.
	ErrNodeRemoved = policies.NewRetryable("vactor: node removed (it left the cluster's slot map, or the replicas the sentinels see healthy)")

	// ErrNoSlotOwner fails a cluster command whose hash slot no node
	// serves in the engine's slot map, read again at once before failing
	// it: the slot's primary failed and none of its replicas has taken over
	// yet (the window between a crash and the promotion), or the slot is
	// not assigned. The command was not sent. It is policies.ErrNoSlotOwner;
	// retryable (policies.IsRetryable) once a replica is promoted.
	ErrNoSlotOwner = policies.ErrNoSlotOwner

	// ErrInvalidArgument fails a command whose arguments the engine can
	// reject before sending it (an odd number of field/value arguments, a
	// missing key, ...). Nothing is sent. Not retryable.
	ErrInvalidArgument = errors.New("vactor: invalid argument")

	// ErrTxAborted fails a transaction whose EXEC the server refused
	// because a key it WATCHed changed (Engine.Watch): none of its
	// commands ran, and every future of the transaction fails with it.
	// Running the transaction again (Engine.WatchRetry) is safe.
	ErrTxAborted = errors.New("vactor: transaction aborted: a watched key changed")

	// ErrConnectionState fails a command that would change the state of
	// the connection it runs on (MULTI, SELECT, SUBSCRIBE, CLIENT REPLY,
	// ...: the list is in docs/pipelines-transactions.md, "What not to
	// send through Do"), sent through Do, Pipeline.Do, Tx.Do, TxReader.Do
	// or BatchWriter.Write:
	// those connections are shared with other callers. Nothing is sent.
	// The error is a *ConnectionStateError that names what to use instead
	// (Tx, Watch, Subscribe, Config.DB, Dedicated, ...); it wraps
	// ErrInvalidArgument. Not retryable.
	ErrConnectionState = fmt.Errorf("%w: the command changes its connection's state", ErrInvalidArgument)

	// ErrDiscarded fails the futures of a Pipeline or Tx that was
	// discarded instead of executed (Discard, or a Watch function that
	// returned an error): nothing was sent.
	ErrDiscarded = errors.New("vactor: commands discarded, not sent")

	// ErrPoolExhausted fails a Tx.Exec, Watch or Dedicated call that
	// waited Config.DialTimeout for a dedicated connection to its node
	// while all 256 of its pool were lent (to other transactions, Watch or
	// Dedicated functions: also a Watch function that calls Watch, Tx.Exec
	// or Dedicated again while every connection is held by such a
	// function, which would otherwise wait for ever). Nothing was sent.
	// Retryable once connections are given back.
	ErrPoolExhausted = policies.NewRetryable("vactor: dedicated-connection pool exhausted")

	// ErrNoPrimary fails New in sentinel mode when no sentinel of
	// Config.SentinelAddrs names a primary for Config.SentinelMasterName
	// that answers and says it is a primary (ROLE); the error joins what
	// each sentinel answered. It is actors.ErrNoMaster. Retryable: the
	// sentinels may be starting or failing over.
	ErrNoPrimary = actors.ErrNoMaster

	// ErrTooManyRedirects fails a cluster command that was redirected
	// (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) more than Config.MaxRedirects
	// times; the last redirect's reply (a *ServerError) is joined to it.
	// It is actors.ErrTooManyRedirects. Retryable: the slot is moving.
	ErrTooManyRedirects = actors.ErrTooManyRedirects

	// ErrNotPrimary is the error of a dial (in sentinel mode) of a node the
	// sentinels named as the primary that says it is not one (ROLE): a
	// failover is under way. The engine asks the sentinels again. It
	// also fails, unsent, a command of Dedicated, Watch or Tx.Exec in
	// Watch whose connection was lent when a failover was held and
	// reaches a former primary since the switch; and a Tx, Watch or
	// Dedicated that picked the primary just before a switch.
	ErrNotPrimary = policies.NewRetryable("vactor: the node the sentinels named is not a primary")

	// ErrPrimaryChanged is wrapped, with the transport error, by the error
	// of what the engine cut when the sentinels named a new primary and it
	// closed its dedicated connections to the old one: a subscription's
	// Disconnected event, a stream consumer's read (Consumer.Stats's
	// LastError), a blocking command, a Tx, Watch or Dedicated call in
	// flight. It says nothing about whether the command ran: a command
	// that may have run fails with ErrOutcomeUnknown wrapping it.
	ErrPrimaryChanged = errors.New("vactor: the sentinels named a new primary (the connection to the old one was closed)")

	// ErrScanNodeChanged ends a sentinel-mode Scan whose node left
	// mid-iteration (its replica left the healthy ones, or the primary
	// changed): a SCAN cursor is valid only on the node that returned
	// it, so the iteration stops rather than go on elsewhere. Start a new
	// one.
	ErrScanNodeChanged = errors.New("vactor: SCAN: the node serving the iteration changed")

	// ErrInOnError is returned at once by BatchWriter.Flush called from the
	// writer's own OnError callback: the commands it would wait for
	// include the one being reported, done only once the callback
	// returns. Nothing changed; flush from elsewhere (or Close the writer
	// from the callback: that stops it without waiting).
	ErrInOnError = errors.New("vactor: batch writer: Flush called from its OnError callback")
)

// closedError is ErrClosed as a closed handle (a BatchWriter, a
// Subscription) returns it: its text names the handle, which may be
// closed while the engine runs ("vactor: engine closed" said otherwise),
// and errors.Is(err, ErrClosed) holds.
type closedError struct{ what string }

func (e closedError) Error() string        { return "vactor: " + e.what + " closed" }
func (e closedError) Is(target error) bool { return target == ErrClosed }

var (
	errWriterClosed       error = closedError{"batch writer"}
	errSubscriptionClosed error = closedError{"subscription"}
)

// CircuitOpenError is the error of a command failed because its node's
// circuit breaker is open (errors.Is(err, ErrCircuitOpen)): the node's
// address and, in Cause, the last failure the breaker counted there (a
// lost connection, a refused dial, a rejected password, ...). It is
// policies.CircuitOpenError.
type CircuitOpenError = policies.CircuitOpenError

// ConnectionStateError is the error of a command refused because it
// changes the state of its connection (see ErrConnectionState, which it
// wraps, and through it ErrInvalidArgument).
type ConnectionStateError struct {
	// Command is the command's upper-case name, with CLIENT's subcommand
	// ("MULTI", "CLIENT REPLY").
	Command string
	// Use says what to use instead.
	Use string
	// Dedicated is true when even Engine.Dedicated's connection refused
	// it: its replies do not come one per command.
	Dedicated bool
}

func (e *ConnectionStateError) Error() string {
	where := "on the engine's shared connections"
	if e.Dedicated {
		where = "on a dedicated connection"
	}
	return fmt.Sprintf("%s: %s cannot run %s: %s", ErrConnectionState, e.Command, where, e.Use)
}

// Unwrap returns ErrConnectionState.
func (e *ConnectionStateError) Unwrap() error { return ErrConnectionState }

// ConnectError is the error of a connection the engine could not open:
// engine.New's, and the dials of the connections it opens later
// (subscribers, consumers, Tx, Dedicated, blocking calls, the batch
// writer, cluster nodes). Reason says in words what is wrong when the
// engine recognises the cause: a certificate the client refused (unknown
// authority, wrong name, expired), a client certificate the server
// refused or did not get (mutual TLS), a wrong password, a TLS port
// dialled without TLS or the reverse, a failing CredentialsProvider.
//
// errors.Is and errors.As reach Err and everything it wraps (the
// driver's error: *tls.CertificateVerificationError and the x509 error
// in it, such as x509.UnknownAuthorityError, x509.HostnameError or
// x509.CertificateInvalidError; net errors; context errors), and also,
// made from it: a *ServerError when the server refused the handshake
// (WRONGPASS, NOAUTH, NOPERM), and a tls.AlertError when the server
// ended the TLS connection with an alert (tls: certificate required,
// tls: bad certificate, ...). None of these is retried by engine.New.
type ConnectError struct {
	Addr   string // the node dialled, "host:port"
	Reason string // what is wrong, when recognised; "" otherwise
	Err    error  // the driver's error

	extra []error // *ServerError and tls.AlertError made from Err
}

func (e *ConnectError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("vactor: connect to %s: %v", e.Addr, e.Err)
	}
	return fmt.Sprintf("vactor: connect to %s: %s: %v", e.Addr, e.Reason, e.Err)
}

// Unwrap returns Err, then the *ServerError or tls.AlertError made from
// it, if any.
func (e *ConnectError) Unwrap() []error { return append([]error{e.Err}, e.extra...) }

// ServerError is an error reply from the server: the command reached the
// server and was refused (unknown command, WRONGTYPE, OOM, ...). Prefix is
// the reply's first word as the server sent it: "ERR" for "ERR EXEC
// without MULTI", "WRONGTYPE", "NOSCRIPT", "MOVED", ... (valkey-go's own
// error drops a leading "ERR "; the engine reads the reply's text). A
// server error is not a transport failure: the connection is fine.
type ServerError struct {
	Prefix  string // "ERR", "WRONGTYPE", "NOSCRIPT", ...
	Message string // the whole error text as the server sent it, prefix included
}

// Error returns the reply's text after "vactor: server error: ". A MOVED
// or CROSSSLOT reply also gets a hint: outside cluster mode it means the
// engine was pointed at a cluster node without Config.ClusterMode
// (docs/cluster.md), which nothing else would tell a new user; in cluster
// mode a MOVED reaches the caller only when the engine did not follow it
// (ErrTooManyRedirects, a Dedicated connection, a consumer's LastError
// before it reconnects), which the MOVED hint's second half says, and a
// CROSSSLOT only for keys of different slots in one command or Tx, where
// its first half applies.
func (e *ServerError) Error() string {
	switch e.Prefix {
	case "MOVED":
		return "vactor: server error: " + e.Message + movedHint
	case "CROSSSLOT":
		return "vactor: server error: " + e.Message + crossSlotHint
	}
	return "vactor: server error: " + e.Message
}

// The hints ServerError.Error adds to MOVED and CROSSSLOT replies.
const (
	movedHint     = " (the key's hash slot is served by another cluster node: outside cluster mode, set Config.ClusterMode or VALKEY_CLUSTER_MODE=true; in cluster mode, the slot moved and this reply was not followed: docs/cluster.md)"
	crossSlotHint = " (the keys hash to different cluster slots: use a hash tag; outside cluster mode, set Config.ClusterMode or VALKEY_CLUSTER_MODE=true: docs/cluster.md)"
)

// ServerErrorCode returns Prefix; policies.ServerErrorCode and
// policies.IsRetryable use it.
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

// newServerError returns the *ServerError of an error reply whose text,
// as the server sent it, is text.
func newServerError(text string) *ServerError {
	return &ServerError{Prefix: policies.ErrorCode(text), Message: text}
}

// mapError turns a valkey-go error into the engine's: nil replies become
// ErrNil, error replies *ServerError; transport errors pass through.
// valkey-go's error has lost the reply's leading "ERR ": mapError puts it
// back unless the text starts with another error code the server sends
// (policies.StrippedErrorCode). Where the reply is at hand, replyError and
// msgError read its text as the server sent it instead.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if valkey.IsValkeyNil(err) {
		return ErrNil
	}
	if ve, ok := valkey.IsValkeyErr(err); ok {
		msg := ve.Error()
		if prefix := policies.StrippedErrorCode(msg); prefix != "ERR" || strings.HasPrefix(msg, "ERR ") {
			return &ServerError{Prefix: prefix, Message: msg}
		}
		return &ServerError{Prefix: "ERR", Message: "ERR " + msg}
	}
	return err
}

// failError maps the error an actor fails a command with: a redirect
// given up on (ErrTooManyRedirects joined with valkey-go's error of the
// last redirect reply) gets that reply as a *ServerError, like every
// other error reply the engine returns; so does an error reply an actor
// fails a command with (a TRYAGAIN its slot does not send again: see
// actors.Collector.Ran); other errors pass through.
func failError(err error) error {
	if _, ok := valkey.IsValkeyErr(err); ok {
		return mapError(err)
	}
	if !errors.Is(err, ErrTooManyRedirects) {
		return err
	}
	var ve *valkey.ValkeyError
	if !errors.As(err, &ve) {
		return err
	}
	return errors.Join(ErrTooManyRedirects, mapError(ve))
}

// replyError maps err, the error of decoding res, as mapError does; when
// err is res's own error reply, the *ServerError holds the reply's text
// as the server sent it.
func replyError(res *valkey.ValkeyResult, err error) error {
	if err == nil {
		return nil
	}
	return mapReplyError(res, err)
}

func mapReplyError(res *valkey.ValkeyResult, err error) error {
	if _, ok := valkey.IsValkeyErr(err); !ok || res.NonValkeyError() != nil {
		return mapError(err)
	}
	msg, _ := res.ToMessage()
	return msgError(&msg, err)
}

// msgError maps err, the error of reading msg, as mapError does; when err
// is msg's own error reply, the *ServerError holds the reply's text as the
// server sent it.
func msgError(msg *valkey.ValkeyMessage, err error) error {
	if err == nil {
		return nil
	}
	ve, ok := valkey.IsValkeyErr(err)
	if !ok {
		return mapError(err)
	}
	// err may come from an element of msg (an array reply) rather than msg.
	if text, ok := policies.ReplyErrorText(msg); ok && strings.HasSuffix(text, ve.Error()) {
		return newServerError(text)
	}
	return mapError(err)
}

// WithIdempotent marks the commands issued with the returned context as
// safe to repeat after a connection failure (see ErrOutcomeUnknown); a nil
// ctx is taken as context.Background(). It is policies.WithIdempotent.
func WithIdempotent(ctx context.Context) context.Context { return policies.WithIdempotent(ctx) }

// notMadeError is ErrNotCreated for an object of the engine's that it did
// not make: the text says which and how to make one.
type notMadeError struct{ text string }

func notMade(text string) error              { return &notMadeError{text} }
func (e *notMadeError) Error() string        { return "vactor: " + e.text }
func (e *notMadeError) Is(target error) bool { return target == ErrNotCreated }
