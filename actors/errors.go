package actors

import "errors"

var (
	// ErrNotCommand fails a mailbox message that is not a Command: a bug in
	// the poster, reported instead of dropped. Not retryable.
	ErrNotCommand = errors.New("actors: message is not a Command")

	// ErrShortReply fails the commands of a pipeline for which the driver
	// returned no result (a driver bug). The commands may have run; not
	// retryable.
	ErrShortReply = errors.New("vactor: the driver returned fewer results than commands")

	// errLoading makes the supervisor dial again, with backoff, while the
	// server answers LOADING after a reconnect. It never reaches a caller.
	errLoading = errors.New("actors: server is loading its dataset")

	// ErrReconnect is the failure a connection actor reports when it was
	// told to replace its connection (ConnState.Retire): the primary
	// changed. It never reaches a caller.
	ErrReconnect = errors.New("vactor: connection replaced: the primary changed")

	// ErrNotPrimary is the failure a connection actor reports when the
	// server answered READONLY or MASTERDOWN (ConnState.NotPrimary): it is
	// no longer the primary. It never reaches a caller: the commands are
	// sent again once the connection is replaced.
	ErrNotPrimary = errors.New("vactor: the server is no longer the primary")

	// errNotHeld answers a SyncReplicas that came after its hold ended.
	errNotHeld = errors.New("actors: commands are not held any more")

	// errNotConnected is the failure a connection actor reports when it
	// was restarted with its connection still broken: the supervisor then
	// reconnects it. It never reaches a caller.
	errNotConnected = errors.New("actors: connection not re-established")
)
