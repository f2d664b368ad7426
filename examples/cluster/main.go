// Command cluster shows vactor against a Valkey cluster: commands are routed
// by hash slot, multi-key commands spanning slots are split and merged, and
// the engine follows the cluster when slots move.
//
// It connects to the seeds in $VALKEY_ADDRS (comma separated), or starts a
// throwaway 3-primary/3-replica cluster when none is set.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

func main() {
	if err := run(os.Getenv("VALKEY_ADDRS")); err != nil {
		log.Fatal(err)
	}
}

func run(seeds string) error {
	var addrs []string
	var c *valkeytest.Cluster
	if seeds != "" {
		addrs = strings.Split(seeds, ",")
	} else {
		var err error
		if c, err = valkeytest.StartCluster(valkeytest.ClusterOptions{}); err != nil {
			return err
		}
		defer c.Stop()
		addrs = c.Addrs()
		fmt.Println("started a throwaway cluster:", strings.Join(addrs, " "))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(addrs...).WithClusterMode(true))
	if err != nil {
		return err
	}
	defer eng.Close()

	// Fire 1,000 writes across all slots, then await them together.
	keys := make([]string, 1000)
	sets := make([]*futures.Future[struct{}], len(keys))
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%d", i)
		sets[i] = eng.Set(ctx, keys[i], fmt.Sprint(i), time.Minute)
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
		fmt.Printf("%s = %s\n", keys[i], *v)
	}
	// Hash tags keep related keys in one slot.
	if _, err := eng.MSet(ctx, "{cart:7}:items", "3", "{cart:7}:total", "42").Await(ctx); err != nil {
		return err
	}
	n, err := eng.Del(ctx, keys...).Await(ctx)
	if err != nil {
		return err
	}
	st := eng.Stats()
	fmt.Printf("deleted %d keys; %d primaries, %d slot actors, %d redirects followed\n", n, len(st.Nodes), st.SlotActors, st.Redirects)
	return nil
}
