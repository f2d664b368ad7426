package policies

import (
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
)

// BreakerOptions configures a node's circuit breaker.
type BreakerOptions struct {
	// Threshold is the number of consecutive failed pipelines (transport
	// failures or timeouts) that open the breaker. Default 5.
	Threshold uint
	// OpenTimeout is how long the breaker stays open before it lets a
	// probe through (half-open). Default 1s.
	OpenTimeout time.Duration
	// FailureRate, when above 0, opens the breaker on a failure rate
	// instead: when within Period at least Threshold round trips ran and
	// this fraction of them failed.
	FailureRate float64
	// Period is the failure-rate window. Default 10s; below 10ns it is
	// 10ns (failsafe-go counts the window in 10 buckets of whole
	// nanoseconds, and a bucket of 0ns divides by zero at every success
	// or failure recorded).
	Period time.Duration
	// OnStateChanged, when set, is called on every transition.
	OnStateChanged func(from, to circuitbreaker.State)
}

// minPeriod is the shortest failure-rate window: one nanosecond for each
// of failsafe-go's 10 buckets.
const minPeriod = 10 * time.Nanosecond

// Breaker is a node's circuit breaker: failsafe-go's, used through its
// permit API. It counts pipelines, not commands: one success or one failure
// per round trip. Server error replies and nil replies are successes. Safe
// for concurrent use.
type Breaker = circuitbreaker.CircuitBreaker[any]

// NewBreaker returns a breaker that opens after o.Threshold consecutive
// failures (or on o.FailureRate, see BreakerOptions), stays open o.OpenTimeout, then half-opens for one probe, which
// closes it on success and opens it again on failure.
func NewBreaker(o BreakerOptions) Breaker {
	if o.Threshold == 0 {
		o.Threshold = 5
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = time.Second
	}
	b := circuitbreaker.NewBuilder[any]().
		WithSuccessThreshold(1).
		WithDelay(o.OpenTimeout)
	if o.FailureRate > 0 {
		if o.Period <= 0 {
			o.Period = 10 * time.Second
		}
		o.Period = max(o.Period, minPeriod)
		b = b.WithFailureRateThreshold(o.FailureRate, o.Threshold, o.Period)
	} else {
		b = b.WithFailureThreshold(o.Threshold)
	}
	if o.OnStateChanged != nil {
		b = b.OnStateChanged(func(e circuitbreaker.StateChangedEvent) { o.OnStateChanged(e.OldState, e.NewState) })
	}
	return b.Build()
}
