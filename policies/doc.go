// Package policies holds vactor's resilience rules and their failsafe-go
// wiring: which errors mean a command did not run (IsRetryable), which
// commands may be sent again (read-only ones, and writes the caller marked
// idempotent with WithIdempotent), the per-node circuit breaker, the retry
// backoff and the retry budget.
//
// The connection actors apply these rules per batch, never per command with
// a goroutine, timer or lock: a breaker permit is asked once per pipeline
// and a retry is scheduled once per failed pipeline.
package policies
