package engine_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// Do routes a command by its keys as the server finds them, not by its
// first argument: 200 EVALs (keys after numkeys) and 200 OBJECT ENCODING
// calls (key after the subcommand) in a 3+3 cluster reach their key's
// node at once: no redirect, and the right results.
func TestClusterDoRoutesByKeys(t *testing.T) {
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	const n = 200
	key := func(i int) string { return fmt.Sprintf("doroute:%d", i) }
	sets := make([]*futures.Future[struct{}], n)
	for i := range sets {
		sets[i] = eng.Set(ctx, key(i), fmt.Sprintf("v%d", i), 0)
	}
	if _, err := futures.All(ctx, sets...); err != nil {
		t.Fatal(err)
	}
	before := eng.Stats().Redirects

	const script = "return redis.call('GET', KEYS[1]) .. ARGV[1]"
	evals := make([]*futures.Future[engine.Reply], n)
	encs := make([]*futures.Future[engine.Reply], n)
	for i := range n {
		evals[i] = eng.Do(ctx, "EVAL", script, "1", key(i), "!")
		encs[i] = eng.Do(ctx, "OBJECT", "ENCODING", key(i))
	}
	for i := range n {
		r, err := evals[i].Await(ctx)
		if err != nil {
			t.Fatalf("EVAL %s: %v", key(i), err)
		}
		if s, _ := r.String(); s != fmt.Sprintf("v%d!", i) {
			t.Fatalf("EVAL %s = %q", key(i), s)
		}
		r, err = encs[i].Await(ctx)
		if err != nil {
			t.Fatalf("OBJECT ENCODING %s: %v", key(i), err)
		}
		if s, _ := r.String(); s != "embstr" {
			t.Fatalf("OBJECT ENCODING %s = %q, want embstr", key(i), s)
		}
	}
	if got := eng.Stats().Redirects - before; got != 0 {
		t.Fatalf("%d redirects for %d EVAL and %d OBJECT ENCODING calls; want 0", got, n, n)
	}

	// Keys in two slots: refused before sending, as the server would.
	a, b := "{a}x", "{b}x"
	if _, err := eng.Do(ctx, "EVAL", script, "2", a, b, "!").Await(ctx); !errors.Is(err, engine.ErrCrossSlot) {
		t.Fatalf("EVAL over two slots: %v, want ErrCrossSlot", err)
	}
	// Keys in one slot (a hash tag) and no keys at all both run.
	if _, err := eng.Do(ctx, "MSET", "{t}1", "a", "{t}2", "b").Await(ctx); err != nil {
		t.Fatalf("MSET in one slot: %v", err)
	}
	if r, err := eng.Do(ctx, "EVAL", "return 7", "0").Await(ctx); err != nil {
		t.Fatalf("keyless EVAL: %v", err)
	} else if v, _ := r.Int64(); v != 7 {
		t.Fatalf("keyless EVAL = %v", v)
	}
	// A pipeline's Do routes the same way.
	p := eng.Pipeline()
	pe := make([]*futures.Future[engine.Reply], 50)
	for i := range pe {
		pe[i] = p.Do("EVAL", script, "1", key(i), "?")
	}
	bad := p.Do("EVAL", script, "2", a, b, "?")
	if err := p.Exec(ctx); !errors.Is(err, engine.ErrCrossSlot) { // the rejected EVAL; the others run
		t.Fatalf("Exec: %v, want the cross-slot EVAL's ErrCrossSlot", err)
	}
	for i, f := range pe {
		if r, err := f.Await(ctx); err != nil {
			t.Fatalf("pipelined EVAL %s: %v", key(i), err)
		} else if s, _ := r.String(); s != fmt.Sprintf("v%d?", i) {
			t.Fatalf("pipelined EVAL %s = %q", key(i), s)
		}
	}
	if _, err := bad.Await(ctx); !errors.Is(err, engine.ErrCrossSlot) {
		t.Fatalf("pipelined EVAL over two slots: %v, want ErrCrossSlot", err)
	}
	if got := eng.Stats().Redirects - before; got != 0 {
		t.Fatalf("%d redirects; want 0", got)
	}
}
