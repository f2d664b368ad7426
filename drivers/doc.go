// Package drivers defines what vactor needs from a client library to talk
// to one Valkey node, and the registry that picks a driver by name
// (config.Config.Driver, default "valkey-go").
//
// The model is database/sql/driver: a small required interface, optional
// capabilities beside it.
//
//   - Driver dials Conns. A Conn is one connection (or one pipelined wire)
//     to one node, owned by one connection actor, which hands it each
//     drained batch as one pipeline: Exec(ctx, commands, results).
//     Commands are argument lists (Command), replies RESP3 values (Value),
//     so that a driver needs nothing but its own client library.
//   - Optional, found by type assertion: PubSub on a Conn; Capable on a
//     Driver, whose Capabilities say what else it supports (TLS with a
//     *tls.Config, blocking commands, credentials providers, sentinels,
//     ...). engine.New fails with an *UnsupportedError naming the driver
//     and the capability when the configuration asks for more.
//   - The fast path: the engine builds commands with valkey-go's builder
//     and decodes replies with valkey-go's types. A Conn that also
//     implements ValkeyConn (and ValkeyPubSub) — the valkey-go driver's
//     do — is used through those methods with no conversion. Any other
//     Conn is wrapped by Fast in an adapter that passes the arguments of
//     valkey-go's commands to Exec as they are and converts the replies
//     (ToValkey), one buffer per pipeline: only drivers other than
//     valkey-go's pay for neutrality.
//
// Drivers register themselves in an init function, as database/sql drivers
// do; importing github.com/vactor-io/vactor/drivers/valkeygo (the engine
// does) registers "valkey-go". The glide driver
// (github.com/vactor-io/vactor/drivers/glide, a module of its own because
// it needs cgo) registers "glide". The conformance suite a driver runs
// from its tests is drivers/driverstest.
package drivers
