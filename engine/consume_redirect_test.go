package engine_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// A consumer whose blocked read ends at once because its connection was
// closed (CLIENT KILL) reports that error, not "no reply to XREADGROUP
// within BLOCK ... (the server or the network went silent)": the check
// for the read's bound ran after the bound's cancel, so it said silent
// for every failed read (an EOF 11 ms after the kill, a MOVED). The hooks
// hear of the interruption (Interrupted, with the error) and of the
// consumer reading again (Resumed, with the gap): nothing told them.
func TestConsumeLastErrorNotSilentOnKill(t *testing.T) {
	rec := &recHook{}
	eng, srv := newEngine(t, func(c config.Config) config.Config { return c.WithHooks(rec) })
	ctx := ctxT(t)
	// A long Block: Resumed must not wait for the new connection's first
	// blocked read to end (qa-AK AK2: up to Block late on an idle stream).
	c, err := eng.Consume(ctx, "cle:stream", "g", "c1", func(context.Context, engine.XEntry) error { return nil }, engine.ConsumeOptions{Block: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	csWait(t, 10*time.Second, "the consumer blocked in XREADGROUP", func() bool {
		info, err := srv.Do("INFO", "clients")
		s, _ := info.(string)
		return err == nil && strings.Contains(s, "blocked_clients:1")
	})
	if _, err := srv.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
		t.Fatal(err)
	}
	csWait(t, 10*time.Second, "the consumer reconnected", func() bool { return c.Stats().Reconnects > 0 })
	le := c.Stats().LastError
	if le == nil || strings.Contains(le.Error(), "went silent") || !strings.Contains(le.Error(), srv.Addr()) {
		t.Fatalf("LastError after the connection was killed: %v; want the connection's error naming %s, not a silent server", le, srv.Addr())
	}
	csWait(t, 10*time.Second, "the consumer's Resumed event (well before its 30 s Block ends)", func() bool {
		var ok bool
		rec.with(func() {
			ok = slices.ContainsFunc(rec.consumers, func(ev hooks.Consumer) bool { return ev.Kind == hooks.Resumed })
		})
		return ok
	})
	rec.with(func() {
		var kinds []hooks.ConsumerKind
		for _, ev := range rec.consumers {
			switch ev.Kind {
			case hooks.Interrupted:
				if ev.Err == nil || ev.Node != srv.Addr() {
					t.Errorf("Interrupted without its error or node: %+v", ev)
				}
			case hooks.Resumed:
				if ev.Gap <= 0 {
					t.Errorf("Resumed without a gap: %+v", ev)
				}
			default:
				continue
			}
			kinds = append(kinds, ev.Kind)
		}
		if !slices.Equal(kinds, []hooks.ConsumerKind{hooks.Interrupted, hooks.Resumed}) {
			t.Errorf("consumer connection events %v, want [interrupted resumed]", kinds)
		}
	})
}

// In cluster mode a consumer whose stream's slot is being migrated, the
// stream already on the importing node, reads there (ASKING before each
// command) as soon as the owner answers ASK. It re-dialled the owner,
// which kept answering ASK, until the whole slot had moved (981 ms for a
// slot of 40,000 keys in qa-W; here the migration never ends).
func TestConsumeClusterFollowsAsk(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{ReplicasPerPrimary: -1})
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	const stream = "{cask}stream"
	log := newCSLog()
	cons, err := eng.Consume(ctx, stream, "g", "c1", func(_ context.Context, x engine.XEntry) error {
		log.add(x)
		return nil
	}, engine.ConsumeOptions{StartID: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	csProduce(t, ctx, eng, stream, 0, 1)
	csWait(t, 10*time.Second, "the first entry acknowledged", func() bool { return cons.Stats().Acked == 1 })

	// Half a migration: the slot MIGRATING on its owner, IMPORTING on
	// the other node, the stream moved there; SETSLOT NODE never comes.
	_, from, to := halfMigrate(t, c, stream)
	if _, err := from.Do("MIGRATE", valkeytest.Host, strconv.Itoa(to.Port()), stream, "0", "5000"); err != nil {
		t.Fatal(err)
	}
	csProduce(t, ctx, eng, stream, 1, 6) // XADD follows ASK to the importing node
	csWait(t, 10*time.Second, "the entries added during the migration acknowledged", func() bool { return cons.Stats().Acked == 6 })
	if n := log.distinct(); n != 6 {
		t.Fatalf("%d entries handled, want 6", n)
	}
}
