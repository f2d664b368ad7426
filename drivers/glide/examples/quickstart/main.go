// Command quickstart is examples/quickstart over the glide driver: the
// same program, plus the import that registers the driver, and "glide"
// as the driver unless VALKEY_DRIVER says otherwise. `make demo
// DRIVER=glide` runs it against a throwaway server. A test checks that it
// stays the same as examples/quickstart.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/vactor-io/vactor/config"
	_ "github.com/vactor-io/vactor/drivers/glide" // registers the "glide" driver
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
	if os.Getenv("VALKEY_DRIVER") == "" && os.Getenv("VALKEY_PROVIDER") == "" {
		cfg = cfg.WithDriver("glide")
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
