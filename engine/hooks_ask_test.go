package engine_test

import (
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// In a cluster, a slot half-way through a migration (MIGRATING on its
// owner, IMPORTING on the target, no key moved yet): the owner answers ASK
// for a key it does not hold, the engine follows it (ASKING to the
// importing node) for the write and the read, and each redirect is
// reported as ASK, from the owner to the target, without a slot-map
// change, and counted in the command's Executed event.
func TestHooksClusterAskRedirect(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c, rec, _, logs, eng := hookedCluster(t)
	defer eng.Close()
	ctx := ctxT(t)
	const key = "hook:ask"
	logs.Key(key)
	logs.Secret("ask-value")
	slot, from, to := halfMigrate(t, c, key)
	if err := eng.Set(ctx, key, "ask-value", 0).Err(ctx); err != nil {
		t.Fatalf("SET during the migration: %v", err)
	}
	if v, err := eng.Get(ctx, key).Await(ctx); err != nil || v != "ask-value" {
		t.Fatalf("GET during the migration: %q, %v", v, err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	rec.with(func() {
		for _, name := range []string{"SET", "GET"} {
			i := slices.IndexFunc(rec.redirects, func(r hooks.Redirect) bool { return r.Slot == slot && r.Name == name })
			if i < 0 {
				t.Fatalf("no redirect of the %s on slot %d: %+v", name, slot, rec.redirects)
			}
			if r := rec.redirects[i]; r.Kind != hooks.RedirectAsk || r.From != from.Addr() || r.To != to.Addr() || r.GaveUp {
				t.Errorf("redirect: %+v, want ASK %s from %s to %s", r, name, from.Addr(), to.Addr())
			}
			if !slices.ContainsFunc(rec.executed, func(ev hooks.Executed) bool {
				return ev.Name == name && ev.Err == nil && ev.Redirects >= 1 && ev.Node == to.Addr()
			}) {
				t.Errorf("no %s completed on %s after a redirect: %+v", name, to.Addr(), rec.executed)
			}
		}
		if slices.ContainsFunc(rec.slotMaps, func(m hooks.SlotMap) bool { return m.Moved > 0 }) {
			t.Errorf("an ASK redirect changed the slot map: %+v", rec.slotMaps)
		}
	})
	if logs.Count(hooks.MsgRedirected) < 2 {
		t.Errorf("%d redirects logged, want 2", logs.Count(hooks.MsgRedirected))
	}
}

// A multi-key command on a slot half-way through a migration, with one
// of its keys still on the owner and one not, gets TRYAGAIN: the engine
// waits a backoff and sends it again, MaxRedirects times, then fails it
// with ErrTooManyRedirects (the server's TRYAGAIN joined). Each attempt is
// reported as a TRYAGAIN redirect of the slot from its owner, the last
// one as given up. Once the slot is stable again the same command works.
func TestHooksClusterTryAgainGivesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c, rec, cfg, logs, eng := hookedCluster(t)
	defer eng.Close()
	ctx := ctxT(t)
	const a, b = "{hook:try}a", "{hook:try}b"
	logs.Key(a, b)
	if err := eng.Set(ctx, a, "1", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	slot, from, to := halfMigrate(t, c, a)
	_, err := eng.MGet(ctx, a, b).Await(ctx)
	var se *engine.ServerError
	if !errors.Is(err, engine.ErrTooManyRedirects) || !errors.As(err, &se) || se.Prefix != "TRYAGAIN" {
		t.Fatalf("MGET on a half-migrated slot: %v, want ErrTooManyRedirects with the TRYAGAIN reply", err)
	}
	for _, n := range []*valkeytest.ClusterNode{from, to} {
		if _, err := n.Do("CLUSTER", "SETSLOT", strconv.Itoa(slot), "STABLE"); err != nil {
			t.Fatal(err)
		}
	}
	if vs, err := eng.MGet(ctx, a, b).Await(ctx); err != nil || len(vs) != 2 || vs[0] == nil || *vs[0] != "1" || vs[1] != nil {
		t.Fatalf("MGET once the slot is stable: %v, %v", vs, err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	rec.with(func() {
		var tries []hooks.Redirect
		for _, r := range rec.redirects {
			if r.Slot == slot {
				tries = append(tries, r)
			}
		}
		if want := cfg.MaxRedirects + 1; len(tries) != want {
			t.Fatalf("%d redirects of slot %d, want %d (MaxRedirects, then the one given up): %+v", len(tries), slot, want, tries)
		}
		for i, r := range tries {
			last := i == len(tries)-1
			if r.Kind != hooks.RedirectTryAgain || r.Name != "MGET" || r.From != from.Addr() && r.From != "" || r.To != "" || r.GaveUp != last {
				t.Errorf("redirect %d: %+v, want TRYAGAIN MGET from %s, given up only at the last", i, r, from.Addr())
			}
		}
		if !slices.ContainsFunc(rec.executed, func(ev hooks.Executed) bool {
			return ev.Name == "MGET" && errors.Is(ev.Err, engine.ErrTooManyRedirects) && ev.Redirects == cfg.MaxRedirects+1
		}) {
			t.Errorf("no MGET completed with ErrTooManyRedirects after %d redirects: %+v", cfg.MaxRedirects+1, rec.executed)
		}
	})
}

// hookedCluster starts a 3-primary cluster and an engine on it with a
// recording hook and a checked logger; the caller closes the engine.
func hookedCluster(t *testing.T) (*valkeytest.Cluster, *recHook, config.Config, *logCheck, *engine.Engine) {
	t.Helper()
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{ReplicasPerPrimary: -1})
	rec := &recHook{}
	cfg, logs := withLogCheck(t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true).WithHooks(rec))
	return c, rec, cfg, logs, engineOn(t, cfg)
}

// halfMigrate starts moving key's slot from its owner to another primary
// (IMPORTING on the target, MIGRATING on the owner) and moves no key.
func halfMigrate(t *testing.T, c *valkeytest.Cluster, key string) (slot int, from, to *valkeytest.ClusterNode) {
	t.Helper()
	slot, err := c.KeySlot(key)
	if err != nil {
		t.Fatal(err)
	}
	from, to = ownerAndOther(t, c, slot)
	s := strconv.Itoa(slot)
	if _, err := to.Do("CLUSTER", "SETSLOT", s, "IMPORTING", from.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := from.Do("CLUSTER", "SETSLOT", s, "MIGRATING", to.ID); err != nil {
		t.Fatal(err)
	}
	return slot, from, to
}
