// Command quickstart fires a few commands at once and awaits their futures.
//
// It connects to $VALKEY_URL (valkey://user:pass@host:port/db) or
// $VALKEY_ADDR (host:port), or to the VALKEY_* variables (see the README),
// defaulting to 127.0.0.1:6379. `make demo` runs it against a throwaway
// server when none is configured.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	cfg, err := config.LoadFromEnv()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	eng, err := engine.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer eng.Close()

	// Fire: each call returns a future at once; the engine sends whatever
	// is queued as one pipeline.
	set := eng.Set(ctx, "quickstart:greeting", "hello, valkey", time.Minute)
	hits := make([]*futures.Future[int64], 10)
	for i := range hits {
		hits[i] = eng.Incr(ctx, "quickstart:hits")
	}
	get := eng.Get(ctx, "quickstart:greeting")
	missing := eng.Get(ctx, "quickstart:missing")

	// Await.
	if _, err := set.Await(ctx); err != nil {
		return err
	}
	greeting, err := get.Await(ctx)
	if err != nil {
		return err
	}
	counts, err := futures.All(ctx, hits...)
	if err != nil {
		return err
	}
	if _, err := missing.Await(ctx); !errors.Is(err, engine.ErrNil) {
		return fmt.Errorf("expected ErrNil for a missing key, got %v", err)
	}
	reply, err := eng.Do(ctx, "HSET", "quickstart:user", "name", "ada", "lang", "go").Await(ctx)
	if err != nil {
		return err
	}
	added, _ := reply.Int64()

	fmt.Fprintf(os.Stdout, "GET quickstart:greeting = %q\n", greeting)
	fmt.Fprintf(os.Stdout, "INCR x10 -> %d ... %d (in order)\n", counts[0], counts[len(counts)-1])
	fmt.Fprintf(os.Stdout, "GET quickstart:missing -> engine.ErrNil\n")
	fmt.Fprintf(os.Stdout, "HSET added %d fields\n", added)
	st := eng.Stats()
	fmt.Fprintf(os.Stdout, "stats: %d commands in %d pipelines (mean %.1f per pipeline)\n", st.Commands, st.Batches, st.MeanBatch)
	_, err = eng.Del(ctx, "quickstart:greeting", "quickstart:hits", "quickstart:user").Await(ctx)
	return err
}
