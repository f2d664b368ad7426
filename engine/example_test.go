package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

func Example() {
	// A throwaway server for the example; use your own address instead.
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

	// Fire: every call returns a future at once.
	set := eng.Set(ctx, "greeting", "hello", time.Minute)
	get := eng.Get(ctx, "greeting")
	n := eng.Incr(ctx, "visits")
	missing := eng.Get(ctx, "nope")

	// Await.
	if _, err := set.Await(ctx); err != nil {
		log.Fatal(err)
	}
	v, _ := get.Await(ctx)
	visits, _ := n.Await(ctx)
	_, err = missing.Await(ctx)
	fmt.Println(v, visits, errors.Is(err, engine.ErrNil))
	// Output: hello 1 true
}

func ExampleEngine_Sync() {
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
	c := eng.Sync() // blocking methods over the same engine
	defer c.Close()

	if err := c.Set(ctx, "k", "v", 0); err != nil {
		log.Fatal(err)
	}
	v, err := c.Get(ctx, "k")
	fmt.Println(v, err)
	// Output: v <nil>
}

func ExampleEngine_Dedicated() {
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

	// The shared connections refuse commands that change their state.
	_, err = eng.Do(ctx, "SELECT", "1").Await(ctx)
	fmt.Println(errors.Is(err, engine.ErrConnectionState))

	// A connection of one's own runs them.
	err = eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		if _, err := c.Do(ctx, "SELECT", "1"); err != nil {
			return err
		}
		rs, err := c.DoMulti(ctx, []string{"MULTI"}, []string{"SET", "k", "in db 1"}, []string{"EXEC"})
		if err != nil {
			return err
		}
		done, err := rs[2].Array()
		fmt.Println(len(done), err)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Database 0, as configured, is untouched.
	_, err = eng.Get(ctx, "k").Await(ctx)
	fmt.Println(errors.Is(err, engine.ErrNil))
	// Output:
	// true
	// 1 <nil>
	// true
}
