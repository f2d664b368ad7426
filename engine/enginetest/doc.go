// Package enginetest holds engine integration scenarios that any driver
// can be run through: per-key order (Order), fault 1, the server killed
// and restarted under writes (FaultKillRestart), fault 3, connections
// reset after the request reached the server (FaultResetAfterWrite), and
// a cluster resharding under load (ClusterResharding). The engine's own
// tests run them with the valkey-go driver; a driver in a module of its
// own (drivers/glide: the main module cannot import it) runs them from
// its tests with its registered name.
//
// Each scenario starts the servers it needs with valkeytest and engines
// with the default configuration (config.DefaultConfig) and the driver
// named in Options, and fails t when the engine breaks a promise: a lost
// acknowledged write, a write applied twice, an order broken, a future
// that never completes.
package enginetest
