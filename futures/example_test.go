package futures_test

import (
	"context"
	"fmt"

	"github.com/vactor-io/vactor/futures"
)

func Example() {
	p := futures.NewPromise[string]()
	go p.Resolve("hello") // the producer completes the promise once
	v, err := p.Future().Await(context.Background())
	fmt.Println(v, err)
	// Output: hello <nil>
}
