// Package futures provides Future and Promise: a value that is completed
// exactly once, by one producer, and read by any number of waiters.
//
// A Promise is the write side and a Future the read side of the same single
// allocation: NewPromise allocates once, Future() and Complete() allocate
// nothing, and Await on a pending future borrows a pooled wake-up channel
// instead of allocating one. That keeps the per-command cost of vactor's
// fire-and-await API to one heap object.
//
// Waiting is bounded by the waiter's context: Await(ctx) returns ctx.Err()
// when ctx ends first. Ending a wait does not cancel the work behind the
// future; the future still completes later and other waiters still see it.
//
// Callbacks (OnComplete, Then, Join) never run on the goroutine that
// completes a future: completing one only queues its callbacks, which run on
// the package's callback goroutines (started on demand, gone when idle). A
// callback that blocks therefore never holds up a completion, and a second
// worker takes over the queue behind a callback blocked for long (see
// Future.OnComplete).
//
// The package has no dependency on actors or drivers.
package futures
