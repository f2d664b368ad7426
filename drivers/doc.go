// Package drivers defines what vactor needs from a client library to talk
// to one Valkey node, and the registry that picks a driver by name
// (config.Config.Driver, default "valkey-go").
//
// A driver dials Conns. A Conn is one connection (or one pipelined wire) to
// one node, owned by one connection actor: the actor hands it each drained
// batch as one pipeline. Commands and replies use valkey-go's types
// (valkey.Completed, valkey.ValkeyResult): valkey-go is vactor's protocol
// layer, so a driver for another library converts at its edge.
//
// Drivers register themselves in an init function, as database/sql drivers
// do; importing github.com/vactor-io/vactor/drivers/valkeygo (the engine
// does) registers "valkey-go".
package drivers
