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
	Addr     string // "host:port"
	Username string // ACL user; "" for the default user
	Password string
	// Credentials, when non-nil, supplies the user name and password
	// instead of Username and Password, which are then ignored. The driver
	// calls it on every connection it opens, including any reconnect it
	// makes on its own, so that a rotated password is used from then on;
	// an empty user name means the default user, an empty password no
	// AUTH. The driver bounds each call with a ctx that ends after
	// DialTimeout. An error fails that connection attempt and is returned
	// wrapped (errors.Is/As reach it). It may be called concurrently.
	// config.CredentialsProvider values can be assigned to it.
	Credentials func(ctx context.Context) (username, password string, err error)
	// DB is selected on connect; 0 sends no SELECT (a sentinel accepts no
	// SELECT: connections to sentinels use 0).
	DB         int
	ClientName string
	// DialTimeout bounds connecting and the handshake (HELLO/AUTH/SELECT).
	DialTimeout time.Duration
	// ReadTimeout and WriteTimeout bound silence while a pipeline is in
	// flight: how long a read may wait for a byte of its replies, and a
	// write for the server to take a byte of it. They do not bound the
	// whole round trip: one that keeps moving bytes runs to its end (a
	// deadline on the ctx of DoMulti still bounds it). Blocking commands
	// are not bounded by them. 0 leaves the driver's default (valkey-go:
	// 10 s).
	//
	// The valkey-go driver applies the larger of the two to both. valkey-go
	// itself bounds a whole synchronous round trip with one
	// conn.SetDeadline(now + ConnWriteTimeout) and has no idle timeout, so
	// the driver dials its connections (ClientOption.DialCtxFn, with TLS
	// on top) and gives valkey-go a net.Conn that makes that deadline an
	// idle one, re-armed only when it fires (no syscall or allocation per
	// round trip), while a deadline from the caller's ctx stays as set.
	// Silence is measured as the client sees it: a read waiting for the
	// reply to a command whose end is still in the socket buffers counts
	// as silent.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// TLS, when non-nil, makes the connection use TLS with this config.
	// The driver must not modify it (it may be shared by every connection);
	// an empty ServerName means the host of Addr.
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
