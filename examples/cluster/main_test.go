package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/examples/internal/exampletest"
	"github.com/vactor-io/vactor/valkeytest"
)

func TestMain(m *testing.M) { exampletest.Main(m, main) }

func TestClusterExampleRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster example: skipped with -short")
	}
	for _, v := range config.ServerEnvVars {
		t.Setenv(v, "") // so that run starts its own cluster
	}
	if err := run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A Ctrl-C once the throwaway cluster is up stops the example, which
// stops the cluster's six servers (processes of their own groups, which
// the terminal's SIGINT does not reach).
func TestClusterExampleInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster example: skipped with -short")
	}
	exampletest.Interrupt(t, "started a throwaway cluster")
}

// Pointed at a cluster of one's own (VALKEY_ADDRS), the example leaves the
// cluster's keys as they were: it writes and deletes keys of its run only.
func TestClusterExampleKeepsTheServersKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster example: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	for _, v := range config.ServerEnvVars {
		t.Setenv(v, "")
	}
	t.Setenv("VALKEY_ADDRS", strings.Join(c.Addrs(), ","))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(c.Addrs()...).WithClusterMode(true))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	mine := []string{"user:0", "user:1", "user:999", "{cart:7}:items"}
	for _, k := range mine {
		if _, err := eng.Set(ctx, k, "mine", 0).Await(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := run(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range mine {
		if v, err := eng.Get(ctx, k).Await(ctx); err != nil || v != "mine" {
			t.Errorf("the cluster's own key %q is now %q, %v; want \"mine\"", k, v, err)
		}
	}
	// And it leaves no key of its own behind.
	var keys []string
	for k, err := range eng.Scan(ctx, "*", 1000) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if len(keys) != len(mine) {
		t.Errorf("the cluster holds %d keys after the example, want the %d of its own: %q", len(keys), len(mine), keys)
	}
}
