package engine_test

import (
	"context"
	"fmt"
	"log"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

func ExampleEngine_Consume() {
	srv, err := valkeytest.StartServer(valkeytest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()

	ctx := context.Background()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()

	for _, item := range []string{"apple", "pear", "plum"} {
		if _, err := eng.XAdd(ctx, "orders", "item", item).Await(ctx); err != nil {
			log.Fatal(err)
		}
	}
	got := make(chan string)
	c, err := eng.Consume(ctx, "orders", "shipping", "worker-1",
		func(ctx context.Context, x engine.XEntry) error {
			got <- x.Fields["item"] // a nil return acknowledges the entry
			return nil
		},
		engine.ConsumeOptions{StartID: "0"}) // a new group reads the stream from its start
	if err != nil {
		log.Fatal(err)
	}
	for range 3 {
		fmt.Println(<-got)
	}
	c.Close()
	// Output:
	// apple
	// pear
	// plum
}
