package engine

// Goroutine identity, for the engine's Close called from a stream
// consumer's handler, a subscription's Handler, a batch writer's OnError
// or a hook, and a batch writer's Close or Flush called from its OnError:
// such a call must not wait for the goroutine that runs the handler or
// hook, which is the caller itself.

import goroutine "github.com/vactor-io/vactor/internal/goid"

// goid returns the id of the calling goroutine (0 if it cannot be read:
// never a live goroutine's id). It costs about 2 µs (a traceback: see
// package internal/goid), so it is only called on rare paths: when a
// consumer's loop starts, in Close, for the rare subscription events
// (see Subscription.deliver), and once per batch of a batch writer's
// failed commands reported through OnError (see BatchWriter.finish).
func goid() int64 { return goroutine.Get() }
