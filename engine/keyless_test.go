package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// keylessRound runs every kind of keyless traffic once: PingFuture, keyless
// Do, a pipeline's keyless entries, a keyless Tx and ScanPage.
func keylessRound(ctx context.Context, eng *engine.Engine) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := eng.PingFuture(ctx).Await(ctx); err != nil {
		return fmt.Errorf("PingFuture: %w", err)
	}
	if _, err := eng.Do(ctx, "DBSIZE").Await(ctx); err != nil {
		return fmt.Errorf("Do DBSIZE: %w", err)
	}
	if _, err := eng.Do(ctx, "EVAL", "return 1", "0").Await(ctx); err != nil {
		return fmt.Errorf("Do EVAL with no key: %w", err)
	}
	p := eng.Pipeline()
	p.Do("PING")
	p.Do("DBSIZE")
	if err := p.Exec(ctx); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	tx := eng.Tx()
	tx.Do("PING")
	if err := tx.Exec(ctx); err != nil {
		return fmt.Errorf("Tx: %w", err)
	}
	if _, err := eng.ScanPage(ctx, 0, "", 10).Await(ctx); err != nil {
		return fmt.Errorf("ScanPage: %w", err)
	}
	return nil
}

// Keyless traffic is not pinned to the node the engine dialled first:
// once that primary is killed and its replica took over, keyless commands
// work again, on the primaries of the new slot map. (TestClusterNodeLeaves
// checks that the dead node's connection actors are stopped.)
func TestClusterKeylessSurvivesFirstNode(t *testing.T) {
	defer engine.SetNodeGoneAfter(300 * time.Millisecond)()
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	if err := keylessRound(ctx, eng); err != nil {
		t.Fatal(err)
	}
	first := eng.Stats().Nodes[0].Addr
	var victim *valkeytest.ClusterNode
	for _, p := range c.Primaries() {
		if p.Addr() == first {
			victim = p
		}
	}
	if victim == nil {
		t.Fatalf("the first node dialled, %s, is not a primary", first)
	}
	if err := c.KillPrimary(victim); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFailover(victim, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	// Commands in flight when the node died, and those sent before the
	// engine's map shows the failover, may fail; then every round works.
	const want = 20
	streak, rounds := 0, 0
	var last error
	for deadline := time.Now().Add(15 * time.Second); streak < want; rounds++ {
		if err := keylessRound(ctx, eng); err != nil {
			streak, last = 0, err
			if time.Now().After(deadline) {
				t.Fatalf("keyless commands still fail 15 s after the failover of %s (the first node): %v", first, last)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		streak++
	}
	t.Logf("%d rounds until %d in a row worked; last failure: %v", rounds, want, last)
}

// Keyless Do goes to the primaries in turn, as the docs say, not always to
// the owner of slot 0: the engine's builder gives a command without keys
// valkey-go's NoSlot, which routing took for slot 0.
func TestClusterKeylessDoInTurn(t *testing.T) {
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{ReplicasPerPrimary: -1})
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	seen := map[string]int{}
	for range 3 * len(c.Primaries()) {
		r, err := eng.Do(ctx, "CLUSTER", "MYID").Await(ctx)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := r.String()
		seen[id]++
	}
	if len(seen) != len(c.Primaries()) {
		t.Fatalf("keyless Do answered by %d nodes (%v), want each of the %d primaries", len(seen), seen, len(c.Primaries()))
	}
}
