package engine_test

import (
	"errors"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// MSetNX sets all its keys or none, through the Engine, a Pipeline, a Tx
// and the sync Client; bad arguments and a closed engine are refused
// unsent (qa-AL AL4: there was no MSETNX but through Do).
func TestMSetNX(t *testing.T) {
	eng, srv := newEngine(t)
	ctx := ctxT(t)
	if ok, err := eng.MSetNX(ctx, "mx:a", "1", "mx:b", "2").Await(ctx); err != nil || !ok {
		t.Fatalf("MSetNX of new keys = %v, %v; want true", ok, err)
	}
	if ok, err := eng.MSetNX(ctx, "mx:b", "3", "mx:c", "4").Await(ctx); err != nil || ok {
		t.Fatalf("MSetNX over an existing key = %v, %v; want false", ok, err)
	}
	if n, err := eng.Exists(ctx, "mx:c").Await(ctx); err != nil || n != 0 {
		t.Fatalf("mx:c exists (%d, %v): MSETNX wrote part of its keys", n, err)
	}
	if v, err := eng.Get(ctx, "mx:b").Await(ctx); err != nil || v != "2" {
		t.Fatalf("mx:b = %q, %v; want 2", v, err)
	}
	for _, args := range [][]string{nil, {"mx:odd"}, {"mx:d", "1", "mx:e"}} {
		if _, err := eng.MSetNX(ctx, args...).Await(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
			t.Fatalf("MSetNX(%q) = %v; want ErrInvalidArgument", args, err)
		}
	}

	p := eng.Pipeline()
	pf := p.MSetNX("mx:p1", "1", "mx:p2", "2")
	pbad := p.MSetNX("mx:p3")
	if err := p.Exec(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Pipeline.Exec with a bad MSetNX = %v; want ErrInvalidArgument", err)
	}
	if _, err := pbad.Await(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Pipeline MSetNX(one argument) = %v; want ErrInvalidArgument", err)
	}
	_ = pf // a pipeline with a refused command is not sent (see Exec)

	tx := eng.Tx()
	tf := tx.MSetNX("mx:t1", "1", "mx:a", "9")
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("Tx.Exec: %v", err)
	}
	if ok, err := tf.Await(ctx); err != nil || ok {
		t.Fatalf("Tx MSetNX over an existing key = %v, %v; want false", ok, err)
	}
	if ok, err := eng.Sync().MSetNX(ctx, "mx:s1", "1", "mx:s2", "2"); err != nil || !ok {
		t.Fatalf("Client.MSetNX = %v, %v; want true", ok, err)
	}
	if r, err := srv.Do("MGET", "mx:a", "mx:t1", "mx:s1", "mx:s2"); err != nil {
		t.Fatal(err)
	} else if got, _ := r.([]any); len(got) != 4 || got[0] != "1" || got[1] != nil || got[2] != "1" || got[3] != "2" {
		t.Fatalf("MGET after the calls = %#v; want [1 <nil> 1 2]", r)
	}

	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.MSetNX(ctx, "mx:z").Await(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("MSetNX on a closed engine = %v; want ErrClosed (before the argument check)", err)
	}
}

// In cluster mode MSetNX's keys must share a slot: keys of two slots are
// refused unsent with ErrCrossSlot (it is atomic, so not split as MSet
// is), in a Pipeline too; keys under one hash tag work.
func TestMSetNXCluster(t *testing.T) {
	cl := valkeytest.StartClusterT(t)
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(cl.Addrs()...).WithClusterMode(true))
	t.Cleanup(func() { _ = eng.Close() })
	if _, err := eng.MSetNX(ctx, "mxa", "1", "mxb", "2").Await(ctx); !errors.Is(err, engine.ErrCrossSlot) {
		t.Fatalf("MSetNX over two slots = %v; want ErrCrossSlot", err)
	}
	for _, k := range []string{"mxa", "mxb"} {
		if n, err := eng.Exists(ctx, k).Await(ctx); err != nil || n != 0 {
			t.Fatalf("%s exists (%d, %v) after a refused MSetNX", k, n, err)
		}
	}
	if ok, err := eng.MSetNX(ctx, "{mx}a", "1", "{mx}b", "2").Await(ctx); err != nil || !ok {
		t.Fatalf("MSetNX under one hash tag = %v, %v; want true", ok, err)
	}
	p := eng.Pipeline()
	f := p.MSetNX("mxa", "1", "mxb", "2")
	if err := p.Exec(ctx); !errors.Is(err, engine.ErrCrossSlot) {
		t.Fatalf("Pipeline.Exec with MSetNX over two slots = %v; want ErrCrossSlot", err)
	}
	if _, err := f.Await(ctx); !errors.Is(err, engine.ErrCrossSlot) {
		t.Fatalf("Pipeline MSetNX over two slots = %v; want ErrCrossSlot", err)
	}
}
