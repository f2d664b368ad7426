package drivers

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"
)

// Options says how to reach one node. The driver owns nothing in it after
// Dial returns (it may keep copies). No fmt verb prints its Password
// (Format); a driver that keeps a copy in a struct of its own should keep
// it out of what it prints.
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
	// The valkey-go driver bounds the handshake after the TCP connect (and
	// the TLS handshake) by the smaller of DialTimeout and its read/write
	// timeout: valkey-go sets that deadline.
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
	// connection (the valkey-go driver PINGs a connection idle for a
	// second; TCP keep-alive, which sends no command, may stay on): the
	// caller carries connection state across calls, such as MULTI ...
	// EXEC sent one command at a time, where a PING would join its
	// transaction. Default false.
	NoIdlePing bool
	// KeepsState says the caller keeps connection state across calls
	// (WATCH, a SELECT, MULTI sent one command at a time: the engine's
	// Tx/Watch and Dedicated connections). A driver that replaces a lost
	// connection by itself, under the Conn, must then fail every call
	// after such a replacement (as not sent, wrapping ErrNotSent) rather
	// than send it on a connection without that state: a transaction
	// whose WATCH was lost would run unchecked. Default false.
	KeepsState bool
	// TLSRootPEM is the PEM bundle of the authorities that sign the
	// server's certificate (config TLS.CAFile), for drivers that cannot
	// take TLS as a *tls.Config (Capabilities.TLSConfig false); nil: the
	// system roots. When TLS is nil it is nil too. Drivers that use TLS
	// ignore it: TLS.RootCAs holds the same authorities.
	TLSRootPEM []byte
}

// Driver dials connections. Implementations must be safe for concurrent
// use. A driver may also implement Capable, to say what it supports beyond
// the required interface.
type Driver interface {
	// Dial connects to opts.Addr and completes the handshake (HELLO 3,
	// AUTH, CLIENT SETNAME, SELECT), or fails within opts.DialTimeout (or
	// ctx, whichever ends first). Replies on the connection are RESP3.
	Dial(ctx context.Context, opts Options) (Conn, error)
}

// Conn is one connection to one node, in a driver's own terms: commands
// are argument lists and replies Values, so that any client library can
// implement it. This is the whole required interface; the engine runs
// a Conn through Fast, which uses the connection's ValkeyConn methods
// when it has them (valkey-go's types, no conversion) and otherwise an
// adapter.
//
// Exec is called by one goroutine at a time (the connection actor),
// except for calls whose commands are Blocking, which other goroutines
// make at the same time (Capabilities.Blocking). Close may be called from
// any goroutine, also while Exec runs, and must make every Exec return.
type Conn interface {
	// Exec sends cmds as one pipeline, in order, and stores the result of
	// cmds[i] in out[i] (len(out) == len(cmds)), whether a reply (an error
	// reply included: KindError) or Err, when the command got no reply:
	// a transport failure fails every command whose reply it lost with an
	// error that is not a server's reply (wrapping ErrNotSent when the
	// driver knows the command was not written, ErrClosed after Close).
	// When ctx ends before the replies arrive, Exec returns with ctx's
	// error for the commands still owed.
	//
	// Non-blocking commands are bounded by Options.ReadTimeout and
	// WriteTimeout (silence on the connection, where the driver can tell;
	// or the whole round trip) and by ctx; Blocking ones by ctx and Close
	// only. Exec keeps no reference to cmds or out after it returns.
	Exec(ctx context.Context, cmds []Command, out []Result)
	// Close closes the connection; commands in flight fail (ErrClosed).
	// Idempotent.
	Close() error
}

// PubSub is an optional capability of a Conn, found by type assertion: a
// connection that can be dedicated to pub/sub (Capabilities.PubSub).
type PubSub interface {
	// Listen dedicates the connection to pub/sub. From the call on, the
	// server's pushes on it are passed to h's functions on one goroutine,
	// in arrival order; while a function runs nothing more is read from
	// the connection (backpressure). Commands sent with Exec afterwards go
	// over the same connection: (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE, whose
	// results arrive once the server confirmed the command (its first
	// confirmation; the server has then run the whole command) and are
	// neither null nor an error reply unless the command failed (the
	// valkey-go driver gives Status("OK")), and PING.
	//
	// A subscribe command's result returns only after h.OnSubscription
	// has returned for that first confirmation: the engine's subscriber
	// reads what its hook recorded as soon as the result is in (whether
	// the connection ever subscribed, which the routing of shard channels
	// and the reaping of idle subscriber connections go by; the
	// Subscribed event is emitted before Subscribe returns). The
	// confirmations of the command's other names may reach h after the
	// result returned. valkey-go's reader calls the hook before it hands
	// over the result.
	//
	// The returned channel receives the error that ended the connection
	// (Close included), after the last call to h, and is then closed.
	// Listen is called at most once per Conn, before any subscribe
	// command.
	Listen(h PubSubHooks) <-chan error
}

// PubSubHooks are the functions a pub/sub connection calls for what the
// server pushes: OnMessage for each message (message, pmessage and
// smessage: Pattern is set for pmessage), OnSubscription for each
// (un)subscribe confirmation and for unsubscriptions the server makes on
// its own (sunsubscribe when a slot moves). Either may be nil.
type PubSubHooks struct {
	OnMessage      func(Message)
	OnSubscription func(Subscription)
}

// Message is a message pushed to a subscriber.
type Message struct {
	Channel string
	Message string
	Pattern string // the pattern that matched, for pmessage; "" otherwise
}

// Subscription is an (un)subscribe confirmation, or an unsubscription the
// server made on its own.
type Subscription struct {
	Kind    string // "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe"
	Channel string // the channel or pattern
	Count   int64  // the connection's subscriptions after this one
}

// Format implements fmt.Formatter so that no verb prints the password:
// the fields as fmt prints them, Password shown as "[redacted]" when set.
func (o Options) Format(f fmt.State, verb rune) {
	type options Options // without methods: fmt prints its fields
	if o.Password != "" {
		o.Password = "[redacted]"
	}
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), options(o))
}
