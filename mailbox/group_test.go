package mailbox_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vactor-io/vactor/mailbox"
)

func msgs(ctx context.Context, poster int, ids ...int) []*msg {
	out := make([]*msg, len(ids))
	for i, id := range ids {
		out[i] = newMsg(ctx, poster, id)
	}
	return out
}

func asMessages(ms []*msg) []mailbox.Message {
	out := make([]mailbox.Message, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

// goPostAll runs PostAll from a new goroutine and returns a channel that
// receives its result.
func goPostAll(mb *mailbox.Bounded, ctx context.Context, ms []*msg) <-chan bool {
	res := make(chan bool, 1)
	go func() { res <- mb.PostAll(ctx, asMessages(ms)...) }()
	return res
}

// PostAll applies the policy to the whole group: under Reject a group that
// does not fit fails whole and the queue never exceeds Capacity.
func TestPostAllReject(t *testing.T) {
	d := &manualDispatcher{}
	mb, inv := newMailbox(mailbox.Options{Capacity: 4, Policy: mailbox.Reject}, d)
	a := msgs(context.Background(), 0, 1, 2, 3)
	if !mb.PostAll(context.Background(), asMessages(a)...) {
		t.Fatal("PostAll into an empty mailbox = false")
	}
	b := msgs(context.Background(), 1, 4, 5)
	if mb.PostAll(context.Background(), asMessages(b)...) {
		t.Fatal("PostAll of 2 with room for 1 = true under Reject")
	}
	for _, m := range b {
		wantFailed(t, m, mailbox.ErrBackpressure)
	}
	if s := mb.Stats(); s.Queued != 3 || s.Rejected != 2 || s.Posted != 3 {
		t.Fatalf("stats = %+v, want Queued 3, Rejected 2, Posted 3", s)
	}
	// A single command still fits.
	c := newMsg(context.Background(), 2, 6)
	if !mb.Post(c) {
		t.Fatal("Post with room = false")
	}
	d.run()
	if got := inv.userLog(); fmt.Sprint(got) != "[[1 2 3 6]]" {
		t.Fatalf("deliveries = %v", got)
	}
}

// Under Block a group waits until it fits as a whole, and posters that come
// after it wait behind it even when they would fit: no starvation of
// groups by single commands, and the group stays contiguous.
func TestPostAllBlockFIFO(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{Capacity: 4}, d)
		g := newGate()
		inv.hook = func(m any) { g.hold(m) }
		defer g.open()

		first := goPost(mb, newMsg(context.Background(), 0, 0))
		g.waitEntered(t)
		mb.Post(newMsg(context.Background(), 0, 1))
		mb.Post(newMsg(context.Background(), 0, 2))

		group := msgs(context.Background(), 1, 10, 11, 12)
		res := goPostAll(mb, context.Background(), group)
		waitStat(t, "Stats.Blocked", func() uint64 { return mb.Stats().Blocked }, 1)
		later := newMsg(context.Background(), 2, 20)
		laterDone := goPost(mb, later)
		waitStat(t, "Stats.Blocked", func() uint64 { return mb.Stats().Blocked }, 2)
		if got := mb.Len(); got != 2 {
			t.Fatalf("Len = %d while a group waits, want 2 (a later post overtook it?)", got)
		}
		select {
		case ok := <-res:
			t.Fatalf("PostAll returned %v while the actor held the mailbox full", ok)
		default:
		}

		g.open()
		waitClosed(t, first, "first Post")
		waitClosed(t, laterDone, "later Post")
		if ok := <-res; !ok {
			t.Fatal("PostAll = false after room freed")
		}
		inv.waitDelivered(t, 7)
		if got := ids(inv.delivered()); fmt.Sprint(got) != "[0 1 2 10 11 12 20]" {
			t.Fatalf("delivered %v, want [0 1 2 10 11 12 20]", got)
		}
	})
}

// A group larger than Capacity goes in alone, into an empty mailbox.
func TestPostAllLargerThanCapacity(t *testing.T) {
	t.Run("reject", func(t *testing.T) {
		d := &manualDispatcher{}
		mb, inv := newMailbox(mailbox.Options{Capacity: 2, Policy: mailbox.Reject}, d)
		one := newMsg(context.Background(), 0, 1)
		mb.Post(one)
		big := msgs(context.Background(), 1, 10, 11, 12, 13, 14)
		if mb.PostAll(context.Background(), asMessages(big)...) {
			t.Fatal("oversize group into a non-empty mailbox accepted under Reject")
		}
		wantFailed(t, big[0], mailbox.ErrBackpressure)
		d.run()
		big = msgs(context.Background(), 1, 20, 21, 22, 23, 24)
		if !mb.PostAll(context.Background(), asMessages(big)...) {
			t.Fatal("oversize group into an empty mailbox rejected")
		}
		if s := mb.Stats(); s.Queued != 5 {
			t.Fatalf("Queued = %d, want 5", s.Queued)
		}
		d.run()
		if got := inv.userLog(); fmt.Sprint(got) != "[[1] [20 21 22 23 24]]" {
			t.Fatalf("deliveries = %v", got)
		}
	})
	t.Run("block", func(t *testing.T) {
		forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
			mb, inv := newMailbox(mailbox.Options{Capacity: 2, MaxBatch: 1}, d)
			g := newGate()
			inv.hook = func(m any) { g.hold(m) }
			defer g.open()
			first := goPost(mb, newMsg(context.Background(), 0, 0))
			g.waitEntered(t)
			mb.Post(newMsg(context.Background(), 0, 1))
			mb.Post(newMsg(context.Background(), 0, 2))
			big := msgs(context.Background(), 1, 10, 11, 12)
			res := goPostAll(mb, context.Background(), big)
			waitStat(t, "Stats.Blocked", func() uint64 { return mb.Stats().Blocked }, 1)
			g.open()
			waitClosed(t, first, "first Post")
			if ok := <-res; !ok {
				t.Fatal("oversize PostAll = false")
			}
			inv.waitDelivered(t, 6)
			// MaxBatch 1: the group went in only once 1 and 2 were drained.
			if got := inv.userLog(); fmt.Sprint(got) != "[[0] [1] [2] [10] [11] [12]]" {
				t.Fatalf("deliveries = %v", got)
			}
		})
	})
}

// A blocked group whose context ends fails whole, and lets in what waits
// behind it.
func TestPostAllContextEnds(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{Capacity: 2}, d)
		g := newGate()
		inv.hook = func(m any) { g.hold(m) }
		defer g.open()
		first := goPost(mb, newMsg(context.Background(), 0, 0))
		g.waitEntered(t)
		mb.Post(newMsg(context.Background(), 0, 1))

		ctx := newDeadlineCtx()
		group := msgs(ctx, 1, 10, 11)
		res := goPostAll(mb, ctx, group)
		waitStat(t, "Stats.Blocked", func() uint64 { return mb.Stats().Blocked }, 1)
		behind := newMsg(context.Background(), 2, 20)
		behindDone := goPost(mb, behind)
		waitStat(t, "Stats.Blocked", func() uint64 { return mb.Stats().Blocked }, 2)
		ctx.end()
		if ok := <-res; ok {
			t.Fatal("PostAll = true after its context ended")
		}
		for _, m := range group {
			wantFailed(t, m, context.DeadlineExceeded)
		}
		waitClosed(t, behindDone, "Post behind the expired group")
		g.open()
		waitClosed(t, first, "first Post")
		inv.waitDelivered(t, 3)
		if got := ids(inv.delivered()); fmt.Sprint(got) != "[0 1 20]" {
			t.Fatalf("delivered %v", got)
		}
	})
}

// Forward never blocks and never rejects: a group that does not fit waits
// in the mailbox, ahead of later posts, and done tells when it is in.
func TestForward(t *testing.T) {
	d := &manualDispatcher{}
	mb, inv := newMailbox(mailbox.Options{Capacity: 2, Policy: mailbox.Reject}, d)
	var dones atomic.Int32
	done := func() { dones.Add(1) }
	mb.Forward(done, asMessages(msgs(context.Background(), 0, 1))...)
	if dones.Load() != 1 {
		t.Fatal("done not called for a group that fitted")
	}
	fwd := msgs(context.Background(), 1, 10, 11)
	mb.Forward(done, asMessages(fwd)...) // returns although full: waits inside
	if dones.Load() != 1 {
		t.Fatal("done called before the group was let in")
	}
	if mb.Len() != 1 {
		t.Fatalf("Len = %d, want 1: the group must wait outside the queue", mb.Len())
	}
	wantPending(t, fwd[0])
	later := newMsg(context.Background(), 2, 20)
	mb.Post(later) // fits by room, but the forwarded group is first
	wantFailed(t, later, mailbox.ErrBackpressure)
	d.run()
	if dones.Load() != 2 {
		t.Fatal("done not called once the group was let in")
	}
	d.run()
	if got := inv.userLog(); fmt.Sprint(got) != "[[1] [10 11]]" {
		t.Fatalf("deliveries = %v", got)
	}
	// Close fails waiting groups and calls their done.
	mb.Post(newMsg(context.Background(), 3, 30))
	mb.Post(newMsg(context.Background(), 3, 31))
	last := msgs(context.Background(), 4, 40)
	mb.Forward(done, asMessages(last)...)
	mb.Close(nil)
	wantFailed(t, last[0], mailbox.ErrClosed)
	if dones.Load() != 3 {
		t.Fatal("done not called for a group failed by Close")
	}
}

// With HoldDrained, drained commands count against Capacity until
// released: an actor that keeps them cannot be handed more than Capacity.
func TestHoldDrained(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{Capacity: 2, HoldDrained: true}, d)
		a, b := newMsg(context.Background(), 0, 1), newMsg(context.Background(), 0, 2)
		mb.Post(a)
		mb.Post(b)
		inv.waitDelivered(t, 2) // the actor holds them, unreleased
		c := newMsg(context.Background(), 0, 3)
		returned := goPost(mb, c)
		waitStat(t, "Stats.Blocked", func() uint64 { return mb.Stats().Blocked }, 1)
		notClosed(t, returned, "Post while the actor holds Capacity commands")
		mb.Release(1)
		waitClosed(t, returned, "Post after Release")
		inv.waitDelivered(t, 3)
		mb.Release(2)
		mb.Close(nil)
	})
	t.Run("reject", func(t *testing.T) {
		d := &manualDispatcher{}
		mb, _ := newMailbox(mailbox.Options{Capacity: 1, Policy: mailbox.Reject, HoldDrained: true}, d)
		mb.Post(newMsg(context.Background(), 0, 1))
		d.run()
		c := newMsg(context.Background(), 0, 2)
		if mb.Post(c) {
			t.Fatal("Post accepted while the actor holds Capacity commands")
		}
		wantFailed(t, c, mailbox.ErrBackpressure)
		mb.Release(1)
		if !mb.Post(newMsg(context.Background(), 0, 3)) {
			t.Fatal("Post rejected after Release")
		}
	})
	t.Run("expired at drain are released", func(t *testing.T) {
		d := &manualDispatcher{}
		mb, _ := newMailbox(mailbox.Options{Capacity: 1, Policy: mailbox.Reject, HoldDrained: true}, d)
		ctx := newDeadlineCtx()
		mb.Post(newMsg(ctx, 0, 1))
		ctx.end()
		d.run() // dropped at drain: never the actor's to release
		if !mb.Post(newMsg(context.Background(), 0, 2)) {
			t.Fatal("an expired command dropped at drain still counts as held")
		}
	})
}
