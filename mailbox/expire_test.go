package mailbox_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vactor-io/vactor/mailbox"
)

// Expire fails and removes the queued commands whose context has ended,
// keeps the others in order, and frees the room they held: a poster
// blocked on the full mailbox gets in.
func TestExpire(t *testing.T) {
	m := mailbox.New(mailbox.Options{Capacity: 3, Policy: mailbox.Block})
	dl := newDeadlineCtx()
	live1 := newMsg(context.Background(), 0, 1)
	dead := newMsg(dl, 0, 2)
	live2 := newMsg(context.Background(), 0, 3)
	for _, msg := range []*msg{live1, dead, live2} {
		if !m.Post(msg) {
			t.Fatalf("Post %v failed", msg)
		}
	}
	blocked := newMsg(context.Background(), 1, 4)
	posted := make(chan bool)
	go func() { posted <- m.Post(blocked) }()
	if n, _ := m.Expire(); n != 0 {
		t.Fatalf("Expire with no context ended failed %d commands", n)
	}
	dl.end()
	if n, timedOut := m.Expire(); n != 1 || timedOut != 1 {
		t.Fatalf("Expire failed %d commands, %d timed out, want 1 and 1", n, timedOut)
	}
	if done, err := dead.result(); !done || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired command: done %v, err %v", done, err)
	}
	select {
	case ok := <-posted:
		if !ok {
			t.Fatal("blocked Post failed after Expire freed room")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocked poster still waiting after Expire freed room")
	}
	if n := m.Len(); n != 3 {
		t.Fatalf("Len %d after Expire and the blocked Post, want 3", n)
	}
	for _, msg := range []*msg{live1, live2, blocked} {
		if done, _ := msg.result(); done {
			t.Fatalf("live command %v completed by Expire", msg)
		}
	}
	if got := m.Stats().Expired; got != 1 {
		t.Fatalf("Stats().Expired = %d, want 1", got)
	}
	m.Close(nil)
}

// Expire tells the commands whose deadline passed from those whose
// caller cancelled them: only the first say something about the node a
// suspended mailbox waits for (the supervisor counts them against its
// breaker).
func TestExpireTimedOutApart(t *testing.T) {
	m := mailbox.New(mailbox.Options{Capacity: 8, Policy: mailbox.Block})
	dl := newDeadlineCtx()
	cctx, cancel := context.WithCancel(context.Background())
	timed := newMsg(dl, 0, 1)
	cancelled := newMsg(cctx, 0, 2)
	live := newMsg(context.Background(), 0, 3)
	for _, msg := range []*msg{timed, cancelled, live} {
		if !m.Post(msg) {
			t.Fatalf("Post %v failed", msg)
		}
	}
	cancel()
	if n, timedOut := m.Expire(); n != 1 || timedOut != 0 {
		t.Fatalf("Expire with one command cancelled: failed %d, timed out %d, want 1 and 0", n, timedOut)
	}
	if done, err := cancelled.result(); !done || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled command: done %v, err %v", done, err)
	}
	dl.end()
	if n, timedOut := m.Expire(); n != 1 || timedOut != 1 {
		t.Fatalf("Expire with one deadline passed: failed %d, timed out %d, want 1 and 1", n, timedOut)
	}
	// A deadline that passed counts, whatever happened to the context
	// after (a cancel) and whatever its cause.
	soon := time.Now().Add(200 * time.Millisecond) // room for the posts on a loaded machine
	cancelledLate, cancel2 := context.WithDeadline(context.Background(), soon)
	withCause, cancel3 := context.WithDeadlineCause(context.Background(), soon, errors.New("the request's budget"))
	defer cancel3()
	for _, msg := range []*msg{newMsg(cancelledLate, 0, 4), newMsg(withCause, 0, 5)} {
		if !m.Post(msg) {
			t.Fatalf("Post %v failed", msg)
		}
	}
	<-cancelledLate.Done()
	<-withCause.Done()
	cancel2()
	if n, timedOut := m.Expire(); n != 2 || timedOut != 2 {
		t.Fatalf("Expire with a deadline passed then cancelled and one with a cause: failed %d, timed out %d, want 2 and 2", n, timedOut)
	}
	if done, _ := live.result(); done {
		t.Fatal("live command completed by Expire")
	}
	m.Close(nil)
}
