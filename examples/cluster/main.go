// Command cluster shows vactor against a Valkey cluster: commands are routed
// by hash slot, and multi-key commands spanning slots are split and merged.
// (The engine also follows the cluster when slots move or a primary fails
// over: see docs/cluster.md.)
//
// It connects to the seeds in $VALKEY_ADDRS (comma separated; credentials
// and TLS from the other VALKEY_* variables, as config.LoadFromEnv reads
// them), or starts a throwaway 3-primary/3-replica cluster when it is not
// set. Its keys are unique to the run (vactor-example:<id>:...) and deleted
// at the end. Ctrl-C (SIGINT) or SIGTERM stops it, and its throwaway
// cluster with it.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

func main() {
	// The throwaway servers run in process groups of their own, so a
	// Ctrl-C at the terminal does not reach them: run stops them on its
	// way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	var cfg config.Config
	if strings.TrimSpace(os.Getenv("VALKEY_ADDRS")) != "" {
		var err error
		if cfg, err = config.LoadFromEnv(); err != nil {
			return err
		}
		cfg = cfg.WithClusterMode(true)
	} else {
		c, err := valkeytest.StartCluster(valkeytest.ClusterOptions{})
		if err != nil {
			return err
		}
		defer c.Stop()
		fmt.Println("started a throwaway cluster:", strings.Join(c.Addrs(), " "))
		cfg = config.DefaultConfig().WithAddrs(c.Addrs()...).WithClusterMode(true)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer eng.Close()

	// Keys of this run only: a server's own keys are never touched.
	prefix := "vactor-example:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"

	// Fire 1,000 writes across all slots, then await them together.
	keys := make([]string, 1000)
	sets := make([]*futures.Future[struct{}], len(keys))
	for i := range keys {
		keys[i] = fmt.Sprintf("%suser:%d", prefix, i)
		sets[i] = eng.Set(ctx, keys[i], strconv.Itoa(i), time.Minute)
	}
	if _, err := futures.All(ctx, sets...); err != nil {
		return err
	}
	// One MGET over many slots: split per slot, merged in key order.
	vals, err := eng.MGet(ctx, keys[:5]...).Await(ctx)
	if err != nil {
		return err
	}
	for i, v := range vals {
		if v == nil {
			fmt.Printf("%s is missing\n", keys[i])
			continue
		}
		fmt.Printf("%s = %s\n", keys[i], *v)
	}
	// Hash tags keep related keys in one slot: one MSET, no split.
	cart := "{" + prefix + "cart:7}"
	if _, err := eng.MSet(ctx, cart+":items", "3", cart+":total", "42").Await(ctx); err != nil {
		return err
	}
	// DEL over every slot: split per slot too.
	n, err := eng.Del(ctx, append(keys, cart+":items", cart+":total")...).Await(ctx)
	if err != nil {
		return err
	}
	st := eng.Stats()
	fmt.Printf("deleted %d keys; %d primaries, %d slot actors, %d redirects followed\n", n, len(st.Nodes), st.SlotActors, st.Redirects)
	return nil
}
