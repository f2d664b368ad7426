package engine_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
)

// ClaimIdle ConsumeZero reclaims a pending entry however recently it was
// delivered: an entry another consumer of the group read a moment ago
// (and never acknowledged) is handed to this consumer's handler by the
// reclaim round after it connects, not after the default 30 s. Before,
// ClaimIdle 0 took the default and a negative one was refused: "reclaim
// at once" could not be asked for.
func TestConsumeClaimIdleZeroReclaimsAtOnce(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	dsAwait(t, ctx, "XGROUP CREATE", eng.XGroupCreate(ctx, "s", "g", "0", true))
	id := dsAwait(t, ctx, "XADD", eng.XAdd(ctx, "s", "n", "1"))
	// Delivered to "gone", which never acknowledges it.
	got := dsAwait(t, ctx, "XREADGROUP", eng.XReadGroup(ctx, "g", "gone", 10, map[string]string{"s": ">"}))
	if len(got["s"]) != 1 {
		t.Fatalf("gone read %v, want the entry", got)
	}
	handled := make(chan string, 1)
	c, err := eng.Consume(ctx, "s", "g", "c", func(_ context.Context, x engine.XEntry) error {
		handled <- x.ID
		return nil
	}, engine.ConsumeOptions{ClaimIdle: engine.ConsumeZero, Block: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Well under the default ClaimIdle (30 s) and ClaimInterval (10 s):
	// only the first reclaim round, with MIN-IDLE-TIME 0, can take it.
	select {
	case h := <-handled:
		if h != id {
			t.Fatalf("handled %s, want %s", h, id)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the pending entry was not reclaimed within 5 s: %+v", c.Stats())
	}
	waitCond(t, 5*time.Second, "the entry acknowledged", func() bool { return c.Stats().Acked == 1 })
	if st := c.Stats(); st.Claimed != 1 {
		t.Fatalf("stats %+v, want 1 claimed", st)
	}
	if n := csPending(t, ctx, eng, "s", "g"); n != 0 {
		t.Fatalf("%d pending after the reclaim, want 0", n)
	}
}

// ClaimInterval ConsumeZero runs a reclaim round before every read: with
// ClaimIdle ConsumeZero too, an entry whose handler failed is handed over
// again by the next round, before the next read (which here would wait
// 10 s), not after the default ClaimInterval of 10 s.
func TestConsumeClaimIntervalZeroRetriesAtOnce(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	var calls atomic.Int64
	c, err := eng.Consume(ctx, "s", "g", "c", func(context.Context, engine.XEntry) error {
		if calls.Add(1) == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	}, engine.ConsumeOptions{ClaimIdle: engine.ConsumeZero, ClaimInterval: engine.ConsumeZero, Block: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dsAwait(t, ctx, "XADD", eng.XAdd(ctx, "s", "n", "1"))
	waitCond(t, 5*time.Second, "the failed entry handled again and acknowledged", func() bool { return c.Stats().Acked == 1 })
	if st := c.Stats(); st.Failed != 1 || st.Handled != 1 || st.Claimed != 1 {
		t.Fatalf("stats %+v, want 1 failed, then 1 claimed and handled", st)
	}
}
