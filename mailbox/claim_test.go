package mailbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vactor-io/vactor/mailbox"
)

// PostClaim on an idle mailbox dispatches nothing: the next batch waits
// for Assist, which runs it on the calling goroutine, in order, with what
// was claimed after it. A Post (or Dispatch) hands a claimed loop to the
// dispatcher, whose run Assist may still take before it begins.
func TestPostClaimAssist(t *testing.T) {
	d := &manualDispatcher{}
	mb, inv := newMailbox(mailbox.Options{Capacity: 16, ClaimDelay: time.Hour}, d)
	d.run() // Start's schedule: nothing queued
	ctx := context.Background()

	mb.PostClaim(newMsg(ctx, 0, 0))
	mb.PostClaim(newMsg(ctx, 0, 1))
	if n := d.scheduled(); n != 0 {
		t.Fatalf("PostClaim to an idle mailbox scheduled %d run loops, want 0", n)
	}
	if len(inv.batches()) != 0 {
		t.Fatal("a claimed batch ran before Assist")
	}
	if !mb.Assist() {
		t.Fatal("Assist() = false on a claimed mailbox")
	}
	b := inv.batches()
	if len(b) != 1 || fmt.Sprint(ids(b[0])) != "[0 1]" {
		t.Fatalf("batches after Assist: %v, want one of ids [0 1]", b)
	}
	if got := mb.Stats().Assisted; got != 1 {
		t.Fatalf("Stats().Assisted = %d, want 1", got)
	}
	if mb.Assist() {
		t.Fatal("Assist() = true on an idle mailbox")
	}

	mb.PostClaim(newMsg(ctx, 0, 2))
	mb.Post(newMsg(ctx, 0, 3)) // not a claim: dispatched at once
	if n := d.scheduled(); n != 1 {
		t.Fatalf("a Post to a claimed mailbox scheduled %d run loops, want 1", n)
	}
	if !mb.Assist() { // takes the dispatched run before it begins
		t.Fatal("Assist() = false on a dispatched run not begun")
	}
	d.run() // finds the run taken
	b = inv.batches()
	if len(b) != 2 || fmt.Sprint(ids(b[1])) != "[2 3]" {
		t.Fatalf("batches: %v, want a second of ids [2 3]", b)
	}

	mb.PostClaim(newMsg(ctx, 0, 4))
	mb.Dispatch() // a wait that does not assist
	if n := d.scheduled(); n != 1 {
		t.Fatalf("Dispatch of a claimed mailbox scheduled %d run loops, want 1", n)
	}
	d.run()
	if b = inv.batches(); len(b) != 3 || fmt.Sprint(ids(b[2])) != "[4]" {
		t.Fatalf("batches: %v, want a third of id [4]", b)
	}
	mb.Dispatch() // not claimed: nothing
	if n := d.scheduled(); n != 0 {
		t.Fatalf("Dispatch of an idle mailbox scheduled %d run loops", n)
	}
}

// A command claimed and never awaited still reaches the actor: after
// Options.ClaimDelay the loop is dispatched as for Post.
func TestPostClaimUnassistedIsDispatched(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{Capacity: 16}, d)
		for i := range 3 {
			mb.PostClaim(newMsg(context.Background(), 0, i))
		}
		inv.waitDelivered(t, 3)
		if got := ids(inv.delivered()); fmt.Sprint(got) != "[0 1 2]" {
			t.Fatalf("delivered %v, want [0 1 2]", got)
		}
		if got := mb.Stats().Assisted; got != 0 {
			t.Fatalf("Stats().Assisted = %d with no Assist", got)
		}
		mb.Close(mailbox.ErrClosed)
	})
}

// Close fails a claimed mailbox's commands and drops the claim: Assist
// then finds nothing to run.
func TestPostClaimClose(t *testing.T) {
	d := &manualDispatcher{}
	mb, inv := newMailbox(mailbox.Options{Capacity: 16, ClaimDelay: time.Hour}, d)
	d.run()
	m := newMsg(context.Background(), 0, 0)
	mb.PostClaim(m)
	mb.Close(mailbox.ErrClosed)
	wantFailed(t, m, mailbox.ErrClosed)
	if mb.Assist() {
		t.Fatal("Assist() = true after Close dropped the claim")
	}
	if len(inv.batches()) != 0 {
		t.Fatal("a batch ran after Close")
	}
	late := newMsg(context.Background(), 0, 1)
	if mb.PostClaim(late) {
		t.Fatal("PostClaim after Close reported the command queued")
	}
	wantFailed(t, late, mailbox.ErrClosed)
}
