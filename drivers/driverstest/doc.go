// Package driverstest is the conformance suite of vactor drivers, in the
// manner of golang.org/x/net/nettest.TestConn: a driver's own tests call
// Run with the driver, and the suite checks, against real servers it
// starts with valkeytest, what the engine relies on:
//
//   - dial and handshake: RESP3, user and password (default user and ACL
//     user), DB, client name, TLS when the driver says it supports it
//     (and mutual TLS with TLSConfig), failures within DialTimeout;
//   - pipelines: order and per-command results, error replies (with the
//     server's text) apart from transport errors, nil replies,
//     binary-safe keys and values (every byte value, empty strings,
//     512 KiB values), big pipelines;
//   - lifecycle: Close while a pipeline is in flight returns and fails what
//     is owed with ErrClosed; a killed server fails commands with a
//     transport error; after a restart a new Dial works;
//   - blocking commands and pub/sub when the driver says it supports them
//     (and, when it says it does not, that its Conns do not claim to).
//
// Each check runs twice: through Conn.Exec (the neutral interface) and
// through drivers.Fast (what the engine uses: the driver's ValkeyConn,
// or the adapter). NeutralOnly hides a driver's fast path, so that the
// adapter itself can be run through the suite.
//
// A server binary (valkey-server or redis-server) must be on PATH.
package driverstest
