package drivers

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Options says how to reach one node. The driver owns nothing in it after
// Dial returns (it may keep copies).
type Options struct {
	Addr       string // "host:port"
	Username   string // ACL user; "" for the default user
	Password   string
	DB         int
	ClientName string
	// DialTimeout bounds connecting and the handshake (HELLO/AUTH/SELECT).
	DialTimeout time.Duration
	// ReadTimeout and WriteTimeout bound waiting for a pipeline's replies
	// and writing it; 0 leaves the driver's default (valkey-go: 10 s). The
	// valkey-go driver applies the larger of the two to both.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// TLS, when non-nil, makes the connection use TLS with this config.
	TLS *tls.Config
	// MaxPipeline is the largest pipeline the caller will send at once;
	// the driver must send pipelines up to this size on this connection.
	MaxPipeline int
	// NoIdlePing asks the driver to send no command of its own on the
	// connection (valkey-go PINGs a connection idle for a second, and
	// turns on TCP keep-alive): the caller carries connection state
	// across calls, such as MULTI ... EXEC sent one command at a time,
	// where a PING would join its transaction. Default false.
	NoIdlePing bool
}

// Driver dials connections. Implementations must be safe for concurrent use.
type Driver interface {
	// Dial connects to opts.Addr and completes the handshake, or fails
	// within opts.DialTimeout (or ctx, whichever ends first).
	Dial(ctx context.Context, opts Options) (Conn, error)
}

// Conn is one connection to one node. DoMulti is called by one goroutine at
// a time (the connection actor); Close may be called from any goroutine,
// also while DoMulti runs, and must make it return.
type Conn interface {
	// B returns the command builder for commands sent on this connection.
	B() valkey.Builder
	// Do writes one command and returns its result. The connection actor
	// uses it for batches of one, where it is cheaper than DoMulti.
	Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult
	// DoMulti writes cmds as one pipeline and returns one result per
	// command, in order. A transport failure fails every command it
	// affects with a non-server error. The commands belong to the driver
	// after the call (valkey-go recycles them), unless pinned.
	DoMulti(ctx context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult
	// Close closes the connection; commands in flight fail. Idempotent.
	Close() error
}

// PubSubHooks are the functions a pub/sub connection calls for what the
// server pushes: OnMessage for each message (message, pmessage and
// smessage: Pattern is set for pmessage), OnSubscription for each
// (un)subscribe confirmation and for unsubscriptions the server makes on
// its own (sunsubscribe when a slot moves). It is valkey-go's type.
type PubSubHooks = valkey.PubSubHooks

// PubSub is an optional capability of a Conn, found by type assertion: a
// connection that can be dedicated to pub/sub.
type PubSub interface {
	// Listen dedicates the connection to pub/sub. From the call on, the
	// server's pushes on it are passed to h's functions on one goroutine
	// (the connection's reader), in arrival order; while a function runs
	// nothing more is read from the connection (backpressure). Commands
	// sent with Do or DoMulti afterwards go over the same connection:
	// (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE, whose results arrive once the
	// server confirmed the command (its first confirmation; the server has
	// then run the whole command), and PING.
	//
	// The returned channel receives the error that ended the connection
	// (Close included), after the last call to h, and is then closed.
	// Listen is called at most once per Conn, before any subscribe
	// command.
	Listen(h PubSubHooks) <-chan error
}
