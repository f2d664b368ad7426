package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// The examples share one throwaway server, started by the first example
// that asks for it on a free 127.0.0.1 port and stopped by TestMain once
// every test and example ran.
var example struct {
	once sync.Once
	srv  *valkeytest.Server
}

// exampleAddr returns the address of the examples' server (in your code,
// the address of your own server), emptied first: every example starts
// from an empty server, also when run again (go test -count).
func exampleAddr() string {
	example.once.Do(func() {
		srv, err := valkeytest.StartServer(valkeytest.Options{})
		if err != nil {
			log.Fatal(err)
		}
		example.srv = srv
	})
	if _, err := example.srv.Do("FLUSHALL"); err != nil {
		log.Fatal(err)
	}
	return example.srv.Addr()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if example.srv != nil {
		if err := example.srv.Stop(); err != nil {
			log.Print(err)
		}
	}
	os.Exit(code)
}

func Example() {
	ctx := context.Background()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(exampleAddr()))
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

func ExampleNew() {
	ctx := context.Background()
	// Or config.ParseURL("valkey://..."), config.LoadFromEnv().
	cfg := config.DefaultConfig().WithAddrs(exampleAddr())

	// New connects before it returns: it fails when no node answers
	// within ctx and Config.DialTimeout.
	eng, err := engine.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close() // fails what is still pending with ErrClosed

	fmt.Println(eng.Ping(ctx))
	// Output: <nil>
}

func ExampleEngine_Get() {
	ctx := context.Background()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(exampleAddr()))
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()

	eng.Set(ctx, "user:1:name", "ada", 0)
	eng.Set(ctx, "user:2:name", "grace", 0)

	// Many commands in flight at once: they share the connection's
	// pipelines. Await each future, or all of them together.
	var names []*futures.Future[string]
	for _, id := range []int{1, 2} {
		names = append(names, eng.Get(ctx, "user:"+strconv.Itoa(id)+":name"))
	}
	got, err := futures.All(ctx, names...)
	fmt.Println(got, err)

	// A missing key is ErrNil.
	_, err = eng.Get(ctx, "user:3:name").Await(ctx)
	fmt.Println(errors.Is(err, engine.ErrNil))
	// Output:
	// [ada grace] <nil>
	// true
}

func ExampleEngine_Set() {
	ctx := context.Background()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(exampleAddr()))
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()

	// A TTL of 0 keeps the key for ever; engine.KeepTTL keeps the current
	// one. The future completes once the server answered.
	if _, err := eng.Set(ctx, "session:42", "ada", time.Hour).Await(ctx); err != nil {
		log.Fatal(err)
	}
	ttl, err := eng.TTL(ctx, "session:42").Await(ctx)
	fmt.Println(ttl.HasExpiry, ttl.Remaining > 59*time.Minute, err)

	// Or wait for completion without the value.
	fmt.Println(eng.Set(ctx, "session:42", "grace", engine.KeepTTL).Err(ctx))
	// Output:
	// true true <nil>
	// <nil>
}

func ExampleEngine_Pipeline() {
	ctx := context.Background()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(exampleAddr()))
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()

	// Queue: nothing is sent yet.
	p := eng.Pipeline()
	p.Set("page:title", "hello", time.Minute)
	n := p.Incr("page:views")
	get := p.Get("page:title")
	wrong := p.LPush("page:title", "x") // a string: WRONGTYPE, on this future only

	// Send them together; Exec returns once every reply is in.
	if err := p.Exec(ctx); err != nil {
		log.Fatal(err)
	}
	views, _ := n.Await(ctx)
	v, _ := get.Await(ctx)
	fmt.Println(v, views, errors.Is(wrong.Err(ctx), &engine.ServerError{Prefix: "WRONGTYPE"}))
	// Output: hello 1 true
}

func ExampleEngine_Tx() {
	ctx := context.Background()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(exampleAddr()))
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()

	// MULTI, the commands, EXEC: all run, with nothing in between.
	tx := eng.Tx()
	stock := tx.IncrBy("stock:42", 10)
	shipped := tx.RPush("shipments", "42")
	if err := tx.Exec(ctx); err != nil {
		log.Fatal(err)
	}
	s, _ := stock.Await(ctx)
	o, _ := shipped.Await(ctx)
	fmt.Println(s, o)
	// Output: 10 1
}

func ExampleEngine_WatchRetry() {
	ctx := context.Background()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(exampleAddr()))
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()

	// Watch runs on a connection of its own: await a write it must see.
	if err := eng.Set(ctx, "balance", "21", 0).Err(ctx); err != nil {
		log.Fatal(err)
	}
	// Double a value optimistically: read it on the watched connection,
	// queue the write; a concurrent change makes WatchRetry run fn again.
	err = eng.WatchRetry(ctx, 10, func(tx *engine.Tx) error {
		v, err := tx.Read().Get(ctx, "balance")
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(v)
		tx.Set("balance", strconv.Itoa(2*n), 0)
		return nil
	}, "balance")
	if err != nil {
		log.Fatal(err)
	}
	v, _ := eng.Get(ctx, "balance").Await(ctx)
	fmt.Println(v)
	// Output: 42
}

func ExampleEngine_Subscribe() {
	ctx := context.Background()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(exampleAddr()))
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()

	// Subscribe returns once the server confirmed: from then on every
	// message published on the channel is delivered, in order.
	sub, err := eng.Subscribe(ctx, "news")
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	for _, m := range []string{"hello", "world"} {
		n, err := eng.Publish(ctx, "news", m).Await(ctx)
		fmt.Println("published to", n, "subscriber(s)", err)
	}

	// The stream carries the messages and the connection's events
	// (Subscribed, Disconnected, Resubscribed) in the order they happened.
	got := 0
	for ev := range sub.Channel() {
		switch ev.Kind {
		case engine.SubMessage:
			fmt.Println(ev.Message.Channel, ev.Message.Payload)
			got++
		default:
			fmt.Println(ev.Kind)
		}
		if got == 2 {
			break
		}
	}
	// Output:
	// published to 1 subscriber(s) <nil>
	// published to 1 subscriber(s) <nil>
	// subscribed
	// news hello
	// news world
}

func ExampleEngine_Consume() {
	ctx := context.Background()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(exampleAddr()))
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

func ExampleEngine_NewBatchWriter() {
	ctx := context.Background()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(exampleAddr()))
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()

	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{
		OnError: func(cmd []string, err error) { log.Printf("%q failed: %v", cmd, err) },
	})
	if err != nil {
		log.Fatal(err)
	}
	for i := range 10_000 {
		// Queues and returns; blocks only while MaxPending are pending.
		if err := w.Set(ctx, fmt.Sprintf("user:%d", i), "v", time.Hour); err != nil {
			log.Fatal(err)
		}
	}
	_ = w.HSet(ctx, "totals", "users", "10000")
	_ = w.Write(ctx, "PFADD", "visitors", "ada", "grace")
	// Close flushes: every write is acknowledged or reported to OnError.
	if err := w.Close(ctx); err != nil {
		log.Fatal(err)
	}
	st := w.Stats()
	fmt.Println(st.Written, "written,", st.Acknowledged, "acknowledged,", st.Failed, "failed")
	// Output: 10002 written, 10002 acknowledged, 0 failed
}

func ExampleEngine_Sync() {
	ctx := context.Background()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(exampleAddr()))
	if err != nil {
		log.Fatal(err)
	}
	c := eng.Sync() // blocking methods over the same engine
	defer c.Close()

	if err := c.Set(ctx, "mode", "blocking", 0); err != nil {
		log.Fatal(err)
	}
	v, err := c.Get(ctx, "mode")
	fmt.Println(v, err)
	// Output: blocking <nil>
}

func ExampleEngine_Dedicated() {
	ctx := context.Background()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(exampleAddr()))
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
