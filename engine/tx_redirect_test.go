package engine_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// staleMapCluster starts a cluster without replicas and an engine on it
// with a recHook and no periodic slot-map reload: the MOVED cases need
// the engine's map to be stale when they send (it reloads on the
// redirect). The engine is closed at the test's end.
func staleMapCluster(t *testing.T) (*valkeytest.Cluster, *recHook, *engine.Engine) {
	t.Helper()
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{ReplicasPerPrimary: -1})
	rec := &recHook{}
	cfg, _ := withLogCheck(t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true).WithHooks(rec))
	cfg.ClusterRefreshInterval = 0
	eng := engineOn(t, cfg)
	t.Cleanup(func() { _ = eng.Close() })
	return c, rec, eng
}

// In cluster mode a Tx refused whole because its slot moved or is moving
// (nothing ran) is sent again, as a single command is: after ASK to the
// importing node with ASKING first, after MOVED to the new owner. Exec
// failed with EXECABORT (ASK/MOVED) before, every caller had to resend
// it by hand throughout a reshard. A Tx whose keys are split between the
// two nodes (TRYAGAIN at EXEC on the importing node, ASK again on the
// owner) is tried MaxRedirects more times and then fails with
// ErrTooManyRedirects, having run nowhere. Each resend is counted in
// the commands' Executed events and reported to the Redirected hooks.
// WatchRetry follows ASK likewise (the whole run on the
// importing node, with ASKING) and reruns TRYAGAIN after a backoff.
func TestClusterTxFollowsRedirects(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c, rec, eng := staleMapCluster(t)
	ctx := ctxT(t)

	// ASK: the slot is migrating and the key is not on its owner.
	const askKey = "{txask}k"
	_, askFrom, askTo := halfMigrate(t, c, askKey)
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

	// A Watch function that sends its Tx itself and then returns an
	// error that matches TRYAGAIN (another command that gave up during a
	// reshard): the Tx committed, so the run is not run again.
	const onceKey = "{txonce}k"
	err = eng.WatchRetry(ctx, 3, func(tx *engine.Tx) error {
		tx.Incr(onceKey)
		if err := tx.Exec(ctx); err != nil {
			return err
		}
		return errors.Join(engine.ErrTooManyRedirects, &engine.ServerError{Prefix: "TRYAGAIN", Message: "TRYAGAIN Multiple keys request during rehashing of slot"})
	}, onceKey)
	if !errors.Is(err, &engine.ServerError{Prefix: "TRYAGAIN"}) {
		t.Fatalf("WatchRetry whose function committed and then failed: %v; want its error", err)
	}
	if v, err := eng.Get(ctx, onceKey).Await(ctx); err != nil || v != "1" {
		t.Fatalf("GET %s: %q, %v; want 1 (the committed run not run again)", onceKey, v, err)
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
		if !slices.ContainsFunc(rec.redirects, func(r hooks.Redirect) bool { return r.Kind == hooks.RedirectTryAgain && !r.GaveUp }) {
			t.Errorf("no TRYAGAIN redirect reported: %+v", rec.redirects)
		}
		if !slices.ContainsFunc(rec.redirects, func(r hooks.Redirect) bool { return r.Name == "INCR" && r.GaveUp }) {
			t.Errorf("the Tx that gave up reported no redirect with GaveUp: %+v", rec.redirects)
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

// Edges of a cluster Tx sent again after redirects:
//   - MaxRedirects 0: the first redirect gives up, with ErrTooManyRedirects
//     and the redirect (an EXECABORT after an ASK did not match before);
//   - Close during the backoff after TRYAGAIN returns at once, the Exec
//     with ErrClosed (the sleep watched only ctx: Close waited it out,
//     or gave up after 5 s with the futures pending);
//   - an ASKING refused (an ACL user without it) does not hide that MULTI
//     ... EXEC, sent behind it, ran: Exec reports how they went (it
//     failed with the ASKING refusal while the Tx had committed).
func TestClusterTxRedirectEdges(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{ReplicasPerPrimary: -1})
	ctx := ctxT(t)
	base := config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true)

	cfg, _ := withLogCheck(t, base.WithMaxRedirects(0))
	eng0 := engineOn(t, cfg)
	defer eng0.Close()
	const askKey = "{edgeask}k"
	halfMigrate(t, c, askKey)
	tx := eng0.Tx()
	f := tx.Incr(askKey)
	err := tx.Exec(ctx)
	if !errors.Is(err, engine.ErrTooManyRedirects) || !errors.Is(err, &engine.ServerError{Prefix: "ASK"}) {
		t.Fatalf("Tx with MaxRedirects 0 during a migration: %v; want ErrTooManyRedirects and ASK", err)
	}
	if _, ferr := f.Await(ctx); !errors.Is(ferr, engine.ErrTooManyRedirects) {
		t.Fatalf("its INCR: %v; want ErrTooManyRedirects", ferr)
	}

	cfg, _ = withLogCheck(t, base.WithMinRetryBackoff(20*time.Second).WithMaxRetryBackoff(20*time.Second))
	slow := engineOn(t, cfg)
	const a, b = "{edgeclose}a", "{edgeclose}b"
	if err := slow.Set(ctx, a, "1", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	halfMigrate(t, c, a)
	tx = slow.Tx()
	fa := tx.Incr(a)
	tx.Incr(b)
	done := make(chan error, 1)
	go func() { done <- tx.Exec(ctx) }()
	_, importing := ownerAndOther(t, c, valkeytest.HashSlot(a))
	waitCond(t, 10*time.Second, "the Tx refused with TRYAGAIN by the importing node", func() bool {
		info, err := importing.Do("INFO", "commandstats")
		s, _ := info.(string)
		return err == nil && strings.Contains(s, "cmdstat_exec:")
	})
	start := time.Now()
	if err := slow.Close(); err != nil {
		t.Fatalf("Close during a Tx's backoff: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Close waited %v for a Tx in its TRYAGAIN backoff", el)
	}
	if err := <-done; !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Exec cut by Close in its backoff: %v; want ErrClosed", err)
	}
	if _, ferr := fa.Await(ctx); !errors.Is(ferr, engine.ErrClosed) {
		t.Errorf("its INCR: %v; want ErrClosed", ferr)
	}

	for _, n := range c.Primaries() {
		if _, err := n.Do("ACL", "SETUSER", "noask", "on", ">noask-password-26", "~*", "&*", "+@all", "-asking"); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ = withLogCheck(t, base.WithUsername("noask").WithPassword("noask-password-26"))
	noask := engineOn(t, cfg)
	defer noask.Close()
	const key = "{edgenoask}k"
	keyOwner, _ := ownerAndOther(t, c, valkeytest.HashSlot(key))
	tx = noask.Tx()
	f = tx.Incr(key)
	// As after an ASK from a node whose migration ended just then: sent
	// with ASKING to a node that owns the slot.
	err = engine.TxExecAtForTest(noask, ctx, tx, keyOwner.Addr(), true)
	if err != nil {
		t.Fatalf("Tx sent with a refused ASKING to the slot's owner: %v; want nil (it ran)", err)
	}
	if n, err := f.Await(ctx); err != nil || n != 1 {
		t.Fatalf("its INCR: %d, %v; want 1", n, err)
	}
}
