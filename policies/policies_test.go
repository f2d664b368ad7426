package policies

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/vactor-io/vactor/drivers"
)

type codeErr string

func (c codeErr) Error() string           { return string(c) + " something" }
func (c codeErr) ServerErrorCode() string { return string(c) }

func TestIsRetryable(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	read := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{dial, true},
		{fmt.Errorf("wrapped: %w", dial), true},
		{syscall.ECONNREFUSED, true},
		{fmt.Errorf("some driver: %w", drivers.ErrNotSent), true},
		{read, false},
		{io.EOF, false},
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{ErrCircuitOpen, false},
		{fmt.Errorf("%w: 12", ErrNoSlotOwner), true},
		{&OutcomeUnknownError{Cause: dial}, false},
		{codeErr("LOADING"), true},
		{codeErr("TRYAGAIN"), true},
		{codeErr("CLUSTERDOWN"), true},
		{codeErr("READONLY"), true},
		{codeErr("MASTERDOWN"), true},
		{codeErr("WRONGTYPE"), false},
		{codeErr("ERR"), false},
	}
	for _, c := range cases {
		if got := IsRetryable(c.err); got != c.want {
			t.Errorf("IsRetryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestOutcomeUnknownWrapsBoth(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	err := error(&OutcomeUnknownError{Cause: cause})
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, cause) {
		t.Fatalf("%v does not wrap both", err)
	}
	if !IsTransport(cause) || IsTransport(codeErr("WRONGTYPE")) || IsTransport(nil) {
		t.Fatal("IsTransport misclassifies")
	}
}

func TestIdempotentMark(t *testing.T) {
	ctx := context.Background()
	if IsIdempotent(ctx) {
		t.Fatal("plain context marked idempotent")
	}
	if !IsIdempotent(WithIdempotent(ctx)) {
		t.Fatal("WithIdempotent not seen")
	}
	c2, cancel := context.WithTimeout(WithIdempotent(ctx), time.Second)
	defer cancel()
	if !IsIdempotent(c2) {
		t.Fatal("mark lost through a derived context")
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	b := Backoff{Min: 8 * time.Millisecond, Max: 512 * time.Millisecond}
	for n := range 12 {
		d := min(8*time.Millisecond<<n, 512*time.Millisecond)
		seen := map[time.Duration]bool{}
		for range 200 {
			got := b.Delay(n)
			if got < d/2 || got > d {
				t.Fatalf("Delay(%d) = %s, want in [%s, %s]", n, got, d/2, d)
			}
			seen[got] = true
		}
		if len(seen) < 2 {
			t.Fatalf("Delay(%d) has no jitter", n)
		}
	}
	if (Backoff{}).Delay(3) != 0 {
		t.Fatal("zero Backoff waits")
	}
}

// With the longest Max (time.Duration's maximum, "no cap"), the delays
// grow to it and stay there: doubling overflowed into a negative delay,
// on which rand.Int64N panicked (Min 1s: from attempt 33 on).
func TestBackoffLongestMax(t *testing.T) {
	const longest = time.Duration(math.MaxInt64)
	for _, lo := range []time.Duration{time.Nanosecond, 8 * time.Millisecond, time.Second, longest/2 + 1, longest} {
		b := Backoff{Min: lo, Max: longest}
		for n := range 100 {
			d := lo // Min·2ⁿ capped at Max
			for range n {
				if d > longest/2 {
					d = longest
					break
				}
				d *= 2
			}
			if got := b.Delay(n); got < d/2 || got > d {
				t.Fatalf("Backoff{Min: %s, Max: %s}.Delay(%d) = %s, want in [%s, %s]", lo, longest, n, got, d/2, d)
			}
		}
	}
}

func TestBudget(t *testing.T) {
	b := NewBudget(0.1, 3)
	for i := range 3 {
		if !b.Spend(1) {
			t.Fatalf("spend %d refused with a full budget", i)
		}
	}
	if b.Spend(1) {
		t.Fatal("spent beyond the burst")
	}
	b.Earn(10) // 10 commands earn one token
	if !b.Spend(1) || b.Spend(1) {
		t.Fatal("10 commands should earn exactly one retry")
	}
	b.Earn(1000)
	if b.Tokens() != 3 {
		t.Fatalf("tokens %d, want capped at 3", b.Tokens())
	}
	var nb *Budget
	if !nb.Spend(5) {
		t.Fatal("nil budget refuses")
	}
}

// A burst beyond what milli-tokens hold saturates, and a ratio below a
// thousandth still earns: math.MaxInt ("no bound") overflowed into a
// negative burst that refused every retry, and 0.0005 truncated to a
// ratio of 0 that never earned one back.
func TestBudgetExtremes(t *testing.T) {
	b := NewBudget(0.1, math.MaxInt)
	if !b.Spend(1) || b.Tokens() != math.MaxInt64/1000-1 {
		t.Fatalf("NewBudget(0.1, MaxInt): a retry refused, or %d tokens left; want one spent from %d", b.Tokens(), int64(math.MaxInt64/1000))
	}
	if b.Spend(math.MaxInt) {
		t.Fatal("spent math.MaxInt tokens")
	}
	b.Earn(math.MaxInt)
	if b.Tokens() != math.MaxInt64/1000 {
		t.Fatalf("tokens %d after earning; want capped at %d", b.Tokens(), int64(math.MaxInt64/1000))
	}
	small := NewBudget(0.0005, 1)
	if !small.Spend(1) || small.Spend(1) {
		t.Fatal("NewBudget(0.0005, 1): want exactly the one token of the burst")
	}
	small.Earn(1000) // a thousandth each, at the least: one token
	if !small.Spend(1) {
		t.Fatal("NewBudget(0.0005, 1): 1,000 commands earned nothing")
	}
	for _, r := range []float64{math.NaN(), math.Inf(1), -1, 0} {
		if nb := NewBudget(r, 1); nb.ratio != 100 {
			t.Errorf("NewBudget(%v, 1): ratio %d milli-tokens; want the default 0.1 (100)", r, nb.ratio)
		}
	}
}

func TestBreakerOpensAndHalfOpens(t *testing.T) {
	var changes []circuitbreaker.State
	b := NewBreaker(BreakerOptions{Threshold: 3, OpenTimeout: 50 * time.Millisecond,
		OnStateChanged: func(_, to circuitbreaker.State) { changes = append(changes, to) }})
	for range 2 {
		b.RecordFailure()
	}
	b.RecordSuccess() // resets the consecutive count
	for range 2 {
		b.RecordFailure()
	}
	if !b.IsClosed() {
		t.Fatal("opened before 3 consecutive failures")
	}
	b.RecordFailure()
	if !b.IsOpen() || b.TryAcquirePermit() {
		t.Fatal("not open after 3 consecutive failures")
	}
	deadline := time.Now().Add(2 * time.Second)
	for !b.TryAcquirePermit() {
		if time.Now().After(deadline) {
			t.Fatal("no permit after the open timeout")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !b.IsHalfOpen() || b.TryAcquirePermit() {
		t.Fatal("half-open should grant exactly one permit")
	}
	b.RecordSuccess()
	if !b.IsClosed() {
		t.Fatal("a successful probe did not close the breaker")
	}
	want := []circuitbreaker.State{circuitbreaker.OpenState, circuitbreaker.HalfOpenState, circuitbreaker.ClosedState}
	if fmt.Sprint(changes) != fmt.Sprint(want) {
		t.Fatalf("state changes %v, want %v", changes, want)
	}
}

func TestBreakerFailureRate(t *testing.T) {
	b := NewBreaker(BreakerOptions{Threshold: 4, FailureRate: 0.5, Period: time.Minute, OpenTimeout: time.Minute})
	b.RecordFailure()
	b.RecordSuccess()
	b.RecordFailure()
	if !b.IsClosed() {
		t.Fatal("opened before Threshold round trips")
	}
	b.RecordSuccess() // 4 round trips, 50% failed
	if !b.IsOpen() {
		t.Fatalf("not open at a 50%% failure rate over 4 round trips: %s", b.State())
	}
	c := NewBreaker(BreakerOptions{Threshold: 4, FailureRate: 0.5, Period: time.Minute})
	for range 3 {
		c.RecordSuccess()
	}
	c.RecordFailure() // 25%
	if !c.IsClosed() {
		t.Fatal("opened at a 25% failure rate")
	}
}

// A failure-rate window shorter than failsafe-go's 10 buckets of a
// nanosecond is taken as 10ns: a 1ns window made buckets of 0ns, and
// every success or failure recorded panicked (integer divide by zero).
func TestBreakerFailureRateShortPeriod(t *testing.T) {
	for _, period := range []time.Duration{1, 9} {
		b := NewBreaker(BreakerOptions{Threshold: 1, FailureRate: 1, Period: period, OpenTimeout: time.Minute})
		b.RecordSuccess()
		if !b.IsClosed() {
			t.Fatalf("period %s: open after a success: %s", period, b.State())
		}
		b.RecordFailure()
		if !b.IsOpen() {
			t.Fatalf("period %s: not open after a failure with Threshold 1 and FailureRate 1: %s", period, b.State())
		}
	}
}

func TestCircuitOpenError(t *testing.T) {
	cause := errors.New("dial tcp 127.0.0.1:1: connection refused")
	err := error(&CircuitOpenError{Addr: "127.0.0.1:1", Cause: cause})
	if !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("errors.Is(%v, ErrCircuitOpen) = false", err)
	}
	if errors.Is(err, cause) {
		t.Fatalf("errors.Is(%v, its cause) = true: the cause must not be unwrapped", err)
	}
	if want := "vactor: circuit breaker open: node 127.0.0.1:1, last failure: dial tcp 127.0.0.1:1: connection refused"; err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err, want)
	}
	if got, want := (&CircuitOpenError{Addr: "h:1"}).Error(), "vactor: circuit breaker open: node h:1"; got != want {
		t.Fatalf("Error() without a cause = %q, want %q", got, want)
	}
	// A round trip abandoned at a deadline says the node did not answer,
	// not only the bare ctx error (qa-BB BB-3).
	if got, want := (&CircuitOpenError{Addr: "h:1", Cause: context.DeadlineExceeded}).Error(),
		"vactor: circuit breaker open: node h:1, last failure: no reply from the node before a deadline (context deadline exceeded)"; got != want {
		t.Fatalf("Error() of a deadline = %q, want %q", got, want)
	}
}
