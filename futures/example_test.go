package futures_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vactor-io/vactor/futures"
)

func Example() {
	p := futures.NewPromise[string]()
	go p.Resolve("hello") // the producer completes the promise once
	v, err := p.Future().Await(context.Background())
	fmt.Println(v, err)
	// Output: hello <nil>
}

func ExampleAll() {
	ctx := context.Background()
	// Futures as engine calls return them (eng.Get, eng.Incr, ...):
	// here promises completed by other goroutines.
	ps := []*futures.Promise[int]{futures.NewPromise[int](), futures.NewPromise[int](), futures.NewPromise[int]()}
	fs := make([]*futures.Future[int], len(ps))
	for i, p := range ps {
		fs[i] = p.Future()
		go p.Resolve(10 * (i + 1))
	}
	// The values in the order of the futures, whatever order they
	// completed in.
	vs, err := futures.All(ctx, fs...)
	fmt.Println(vs, err)

	// The first failed future, in the order given, ends the wait with its
	// error.
	failed := []*futures.Future[int]{futures.Completed(1), futures.Failed[int](errors.New("no such key"))}
	_, err = futures.All(ctx, failed...)
	fmt.Println(err)
	// Output:
	// [10 20 30] <nil>
	// no such key
}

func ExampleFuture_Await() {
	p := futures.NewPromise[string]()
	f := p.Future()

	// Await waits for the value, or until ctx ends: the future stays
	// pending, and a later Await still gets the value.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := f.Await(ctx)
	fmt.Println(err)

	p.Resolve("ready")
	fmt.Println(f.Await(context.Background()))
	// Output:
	// context deadline exceeded
	// ready <nil>
}
