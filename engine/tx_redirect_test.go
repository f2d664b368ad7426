package engine_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// In cluster mode a Tx refused whole because its slot moved or is moving
// (nothing ran) is sent again, as a single command is: after ASK to the
// importing node with ASKING first, after MOVED to the new owner. Exec
// failed with EXECABORT (ASK/MOVED) before, every caller had to resend
// it by hand throughout a reshard. A Tx whose keys are split between the
// two nodes (TRYAGAIN at EXEC on the importing node, ASK again on the
// owner) is tried MaxRedirects more times and then fails with
// ErrTooManyRedirects, having run nowhere. Each resend is counted in
// Stats.Redirects and the commands' Executed events and reported to the
// Redirected hooks. WatchRetry follows ASK likewise (the whole run on the
// importing node, with ASKING) and reruns TRYAGAIN after a backoff.
func TestClusterTxFollowsRedirects(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{ReplicasPerPrimary: -1})
	rec := &recHook{}
	cfg, _ := withLogCheck(t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true).WithHooks(rec))
	// No periodic slot-map reload: the MOVED case needs the engine's map
	// to be stale when the Tx is sent (it reloads on the redirect).
	cfg.ClusterRefreshInterval = 0
	eng := engineOn(t, cfg)
	defer eng.Close()
	ctx := ctxT(t)

	// ASK: the slot is migrating and the key is not on its owner.
	const askKey = "{txask}k"
	_, askFrom, askTo := halfMigrate(t, c, askKey)
	before := eng.Stats().Redirects
	tx := eng.Tx()
	incr := tx.Incr(askKey)
	get := tx.Get(askKey)
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("Tx during a migration (ASK): %v", err)
	}
	if n, err := incr.Await(ctx); err != nil || n != 1 {
		t.Fatalf("INCR in the Tx: %d, %v; want 1", n, err)
	}
	if v, err := get.Await(ctx); err != nil || v != "1" {
		t.Fatalf("GET in the Tx: %q, %v; want 1", v, err)
	}
	if d := eng.Stats().Redirects - before; d != 2 {
		t.Errorf("Stats.Redirects grew by %d for the Tx of 2 commands sent again once, want 2", d)
	}
	if v, err := eng.Get(ctx, askKey).Await(ctx); err != nil || v != "1" {
		t.Fatalf("GET after the Tx: %q, %v; want 1 (ran once)", v, err)
	}

	// TRYAGAIN: one key still on the owner, the other not: refused on
	// both nodes until the migration moves on; nothing runs.
	const mixA, mixB = "{txmix}a", "{txmix}b"
	if err := eng.Set(ctx, mixA, "10", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	halfMigrate(t, c, mixA)
	tx = eng.Tx()
	fa, fb := tx.Incr(mixA), tx.Incr(mixB)
	err := tx.Exec(ctx)
	if !errors.Is(err, engine.ErrTooManyRedirects) || !errors.Is(err, &engine.ServerError{Prefix: "TRYAGAIN"}) {
		t.Fatalf("Tx with its keys split by a migration: %v; want ErrTooManyRedirects and TRYAGAIN", err)
	}
	if _, err := fa.Await(ctx); err == nil {
		t.Errorf("INCR of a Tx that ran nowhere succeeded")
	}
	if _, err := fb.Await(ctx); err == nil {
		t.Errorf("INCR of a Tx that ran nowhere succeeded")
	}
	if v, err := eng.Get(ctx, mixA).Await(ctx); err != nil || v != "10" {
		t.Fatalf("GET %s after the refused Tx: %q, %v; want 10 (ran nowhere)", mixA, v, err)
	}
	if err := eng.Get(ctx, mixB).Err(ctx); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("GET %s after the refused Tx: %v; want ErrNil (ran nowhere)", mixB, err)
	}

	// MOVED: the slot moved after the engine loaded its map.
	const movedKey = "{txmoved}k"
	if err := eng.Set(ctx, movedKey, "5", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	slot := valkeytest.HashSlot(movedKey)
	movedFrom, movedTo := ownerAndOther(t, c, slot)
	if err := c.MigrateSlots(movedFrom, movedTo, []int{slot}); err != nil {
		t.Fatal(err)
	}
	tx = eng.Tx()
	incr = tx.Incr(movedKey)
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("Tx after its slot moved (MOVED): %v", err)
	}
	if n, err := incr.Await(ctx); err != nil || n != 6 {
		t.Fatalf("INCR in the Tx: %d, %v; want 6", n, err)
	}
	if v, err := eng.Get(ctx, movedKey).Await(ctx); err != nil || v != "6" {
		t.Fatalf("GET after the Tx: %q, %v; want 6 (ran once)", v, err)
	}

	// WatchRetry: a watched key not on the owner of its migrating slot
	// (WATCH gets ASK) is watched, read and written on the importing
	// node, with ASKING; it gave up with ErrTooManyRedirects while the
	// migration lasted.
	const watchKey = "{txwatch}k"
	halfMigrate(t, c, watchKey)
	runs := 0
	err = eng.WatchRetry(ctx, 3, func(tx *engine.Tx) error {
		runs++
		v, err := tx.Read().Get(ctx, watchKey)
		if !errors.Is(err, engine.ErrNil) {
			return fmt.Errorf("read of a new key: %q, %w", v, err)
		}
		tx.Set(watchKey, "w", 0)
		return nil
	}, watchKey)
	if err != nil || runs != 1 {
		t.Fatalf("WatchRetry during a migration (ASK): %v after %d runs of the function; want nil after 1", err, runs)
	}
	if v, err := eng.Get(ctx, watchKey).Await(ctx); err != nil || v != "w" {
		t.Fatalf("GET after the WatchRetry: %q, %v; want w", v, err)
	}
	// Watched keys split between the two nodes: TRYAGAIN, rerun
	// MaxRedirects times, then ErrTooManyRedirects; nothing ran.
	err = eng.WatchRetry(ctx, 3, func(tx *engine.Tx) error {
		tx.Set(mixB, "x", 0)
		return nil
	}, mixA, mixB)
	if !errors.Is(err, engine.ErrTooManyRedirects) || !errors.Is(err, &engine.ServerError{Prefix: "TRYAGAIN"}) {
		t.Fatalf("WatchRetry of keys split by a migration: %v; want ErrTooManyRedirects and TRYAGAIN", err)
	}
	if err := eng.Get(ctx, mixB).Err(ctx); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("GET %s after the refused WatchRetry: %v; want ErrNil (ran nowhere)", mixB, err)
	}

	if err := eng.Close(); err != nil { // delivers the hooks' events
		t.Fatal(err)
	}
	rec.with(func() {
		has := func(kind, from, to string) bool {
			return slices.ContainsFunc(rec.redirects, func(r hooks.Redirect) bool {
				return r.Kind == kind && r.Name == "INCR" && r.From == from && r.To == to && !r.GaveUp
			})
		}
		if !has(hooks.RedirectAsk, askFrom.Addr(), askTo.Addr()) {
			t.Errorf("no ASK redirect of the Tx's INCR from %s to %s: %+v", askFrom.Addr(), askTo.Addr(), rec.redirects)
		}
		if !has(hooks.RedirectMoved, movedFrom.Addr(), movedTo.Addr()) {
			t.Errorf("no MOVED redirect of the Tx's INCR from %s to %s: %+v", movedFrom.Addr(), movedTo.Addr(), rec.redirects)
		}
		if !slices.ContainsFunc(rec.redirects, func(r hooks.Redirect) bool { return r.Kind == hooks.RedirectTryAgain }) {
			t.Errorf("no TRYAGAIN redirect reported: %+v", rec.redirects)
		}
		for _, node := range []string{askTo.Addr(), movedTo.Addr()} {
			if !slices.ContainsFunc(rec.executed, func(ev hooks.Executed) bool {
				return ev.Name == "INCR" && ev.Err == nil && ev.Redirects == 1 && ev.Node == node
			}) {
				t.Errorf("no INCR executed on %s after one redirect: %+v", node, rec.executed)
			}
		}
	})
}
