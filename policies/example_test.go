package policies_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/policies"
)

// IsRetryable tells which errors mean the command did not run, so that
// sending it again as it is cannot apply it twice.
func ExampleIsRetryable() {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	loading := &engine.ServerError{Prefix: "LOADING", Message: "LOADING Valkey is loading the dataset in memory"}
	wrongType := &engine.ServerError{Prefix: "WRONGTYPE", Message: "WRONGTYPE Operation against a key holding the wrong kind of value"}
	lost := fmt.Errorf("%w: connection reset by peer", policies.ErrOutcomeUnknown)

	fmt.Println("refused dial:", policies.IsRetryable(refused))
	fmt.Println("LOADING:", policies.IsRetryable(loading))
	fmt.Println("WRONGTYPE:", policies.IsRetryable(wrongType))
	fmt.Println("reply lost:", policies.IsRetryable(lost))
	fmt.Println("deadline:", policies.IsRetryable(context.DeadlineExceeded))
	// Output:
	// refused dial: true
	// LOADING: true
	// WRONGTYPE: false
	// reply lost: false
	// deadline: false
}

// A write whose reply was lost with its connection fails with
// ErrOutcomeUnknown, unless its ctx marks it as safe to repeat: then the
// engine sends it again after the reconnect. (engine.WithIdempotent is the
// same function.)
func ExampleWithIdempotent() {
	ctx := context.Background()
	fmt.Println(policies.IsIdempotent(ctx))

	ctx = policies.WithIdempotent(ctx) // eng.Set(ctx, ...) may now be repeated
	fmt.Println(policies.IsIdempotent(ctx))
	// Output:
	// false
	// true
}

// The engine's retry delays: Config.MinRetryBackoff doubling up to
// Config.MaxRetryBackoff, each drawn at random from its upper half.
func ExampleBackoff_Delay() {
	b := policies.Backoff{Min: 8 * time.Millisecond, Max: 512 * time.Millisecond}
	for n := range 8 {
		d := b.Delay(n)
		ceiling := min(b.Min<<n, b.Max)
		fmt.Printf("attempt %d: within [%v, %v]: %t\n", n, ceiling/2, ceiling, d >= ceiling/2 && d <= ceiling)
	}
	// Output:
	// attempt 0: within [4ms, 8ms]: true
	// attempt 1: within [8ms, 16ms]: true
	// attempt 2: within [16ms, 32ms]: true
	// attempt 3: within [32ms, 64ms]: true
	// attempt 4: within [64ms, 128ms]: true
	// attempt 5: within [128ms, 256ms]: true
	// attempt 6: within [256ms, 512ms]: true
	// attempt 7: within [256ms, 512ms]: true
}

// ServerErrorCode reads the code of an error reply, through any wrapping;
// a transport error has none.
func ExampleServerErrorCode() {
	moved := fmt.Errorf("GET k: %w", &engine.ServerError{Prefix: "MOVED", Message: "MOVED 3999 127.0.0.1:6381"})
	fmt.Printf("%q\n", policies.ServerErrorCode(moved))
	fmt.Printf("%q\n", policies.ServerErrorCode(errors.New("connection reset by peer")))
	// Output:
	// "MOVED"
	// ""
}
