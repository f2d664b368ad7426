package mailbox_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vactor-io/vactor/mailbox"
)

// A paused mailbox keeps its commands queued, still delivers other user
// messages, and on Unpause hands the commands over in order, in one batch.
// Nothing runs while paused except for those other messages: the manual
// dispatcher shows that no command post schedules the run loop.
func TestPauseHoldsCommandsDeliversOthers(t *testing.T) {
	d := &manualDispatcher{}
	mb, inv := newMailbox(mailbox.Options{Capacity: 16}, d)
	ctx := context.Background()

	first := newMsg(ctx, 0, 0)
	mb.Post(first)
	mb.Pause()
	if !mb.Paused() {
		t.Fatal("Paused() = false after Pause")
	}
	d.run() // the batch scheduled before Pause is held too: it was not drained yet
	if got := len(inv.batches()); got != 0 {
		t.Fatalf("%d batches delivered while paused, want 0", got)
	}
	held := []*msg{first}
	for i := 1; i < 5; i++ {
		m := newMsg(ctx, 0, i)
		held = append(held, m)
		mb.Post(m)
	}
	if n := d.scheduled(); n != 0 {
		t.Fatalf("%d run loops scheduled by posts to a paused mailbox, want 0", n)
	}
	mb.PostUserMessage("other")
	d.run()
	if got := inv.userLog(); len(got) != 1 || got[0] != "other" {
		t.Fatalf("delivered while paused: %v, want only the other message", got)
	}
	if mb.Len() != len(held) {
		t.Fatalf("Len() = %d while paused, want %d", mb.Len(), len(held))
	}
	mb.Unpause()
	d.run()
	b := inv.batches()
	if len(b) != 1 {
		t.Fatalf("%d batches after Unpause, want 1", len(b))
	}
	if got := ids(b[0]); len(got) != len(held) {
		t.Fatalf("batch after Unpause = %v, want ids 0..4 in order", got)
	}
	for i, id := range ids(b[0]) {
		if id != i {
			t.Fatalf("batch after Unpause = %v, want ids 0..4 in order", ids(b[0]))
		}
	}
	mb.Unpause() // not paused: nothing happens
	if n := d.scheduled(); n != 0 {
		t.Fatalf("Unpause of a running mailbox scheduled %d run loops", n)
	}
}

// Expire and Close still fail the commands of a paused mailbox, and with
// either dispatcher the commands posted while paused are delivered after
// Unpause, in order.
func TestPauseExpireCloseAndResume(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{Capacity: 16}, d)
		mb.Pause()
		dl := newDeadlineCtx()
		gone := newMsg(dl, 0, 0)
		mb.Post(gone)
		var kept []*msg
		for i := 1; i <= 3; i++ {
			m := newMsg(context.Background(), 0, i)
			kept = append(kept, m)
			mb.Post(m)
		}
		dl.end()
		if n, _ := mb.Expire(); n != 1 {
			t.Fatalf("Expire() = %d on a paused mailbox, want 1", n)
		}
		wantFailed(t, gone, context.DeadlineExceeded)
		for _, m := range kept {
			wantPending(t, m)
		}
		mb.Unpause()
		inv.waitDelivered(t, len(kept))
		if got := ids(inv.delivered()); fmt.Sprint(got) != "[1 2 3]" {
			t.Fatalf("delivered %v after Unpause, want [1 2 3]", got)
		}
		for _, m := range kept {
			m.succeed()
		}

		mb.Pause()
		late := newMsg(context.Background(), 1, 4)
		mb.Post(late)
		mb.Close(mailbox.ErrClosed)
		wantFailed(t, late, mailbox.ErrClosed)
	})
}
