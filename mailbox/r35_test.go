package mailbox_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vactor-io/vactor/mailbox"
)

// review-35 R35-3: Purge, the flush a connection actor's FailHeld runs when
// its node's breaker opens, fails the queued commands and then, in the
// order they came, those waiting for room (a blocked Post, a blocked
// PostAll, a forwarded group), instead of letting the waiters into the
// room it frees as Flush does: the actor stays down while the breaker is
// open, so a waiter let in stayed pending until the next flush. The
// mailbox stays open; a later Post is queued and delivered.
func TestR35PurgeRefusesWaiters(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{Capacity: 2}, d)
		g := newGate()
		inv.hook = func(m any) { g.hold(m) }
		defer g.open()

		first := goPost(mb, newMsg(context.Background(), 0, 0))
		g.waitEntered(t)
		a, b := newMsg(context.Background(), 0, 1), newMsg(context.Background(), 0, 2)
		mb.Post(a)
		mb.Post(b) // the mailbox is full

		c := newMsg(context.Background(), 1, 3) // a blocked Post
		cRet := make(chan bool, 1)
		go func() { cRet <- mb.Post(c) }()
		waitStat(t, "Stats.Blocked", func() uint64 { return mb.Stats().Blocked }, 1)
		g1, g2 := newMsg(context.Background(), 2, 4), newMsg(context.Background(), 2, 5) // a blocked PostAll
		gRet := make(chan bool, 1)
		go func() { gRet <- mb.PostAll(context.Background(), g1, g2) }()
		waitStat(t, "Stats.Blocked", func() uint64 { return mb.Stats().Blocked }, 2)
		f := newMsg(context.Background(), 3, 6) // a forwarded group
		forwarded := make(chan struct{})
		mb.Forward(func() { close(forwarded) }, f)
		if got := mb.Stats().Waiting; got != 4 {
			t.Fatalf("Stats.Waiting = %d before Purge, want 4", got)
		}

		errOpen := errors.New("circuit open")
		if n := mb.Purge(errOpen); n != 6 {
			t.Fatalf("Purge returned %d, want 6 (2 queued, 4 waiting)", n)
		}
		for _, m := range []*msg{a, b, c, g1, g2, f} {
			wantFailed(t, m, errOpen)
		}
		if <-cRet {
			t.Fatal("the blocked Post refused by Purge returned true")
		}
		if <-gRet {
			t.Fatal("the blocked PostAll refused by Purge returned true")
		}
		waitClosed(t, forwarded, "Forward's done after Purge")
		if s := mb.Stats(); s.Queued != 0 || s.Waiting != 0 {
			t.Fatalf("after Purge: Queued %d, Waiting %d; want 0 and 0", s.Queued, s.Waiting)
		}
		if mb.Closed() {
			t.Fatal("Closed() = true after Purge")
		}

		// The mailbox still takes commands, and delivers them.
		e := newMsg(context.Background(), 0, 7)
		if !mb.Post(e) {
			t.Fatal("Post after Purge returned false")
		}
		wantPending(t, e)
		g.open()
		inv.waitDelivered(t, 2)
		waitClosed(t, first, "first Post")
		if got := inv.userLog(); fmt.Sprint(got) != "[[0] [7]]" {
			t.Fatalf("deliveries = %v, want [[0] [7]]", got)
		}
		for _, m := range []*msg{a, b, c, g1, g2, f} {
			if m.failCount() != 1 {
				t.Fatalf("%v failed %d times, want once", m, m.failCount())
			}
		}
		if n := mb.Purge(errOpen); n != 0 {
			t.Fatalf("Purge of an empty mailbox returned %d, want 0", n)
		}
	})
}

// The commands Purge fails complete in the order they were posted: the
// queued ones, then the waiters in the order they came (a caller's later
// command, refused after them, cannot complete first).
func TestR35PurgeFailsInOrder(t *testing.T) {
	d := &manualDispatcher{}
	mb, _ := newMailbox(mailbox.Options{Capacity: 1}, d)
	var (
		mu    sync.Mutex
		order []int
	)
	logID := func(id int) {
		mu.Lock()
		order = append(order, id)
		mu.Unlock()
	}
	q := &orderedMsg{msg: newMsg(context.Background(), 0, 1), log: logID}
	mb.Post(q) // queued (the manual dispatcher never runs the actor)
	var posted sync.WaitGroup
	ws := make([]*orderedMsg, 3)
	for i := range ws {
		ws[i] = &orderedMsg{msg: newMsg(context.Background(), i+1, i+2), log: logID}
		posted.Add(1)
		go func() { defer posted.Done(); mb.Post(ws[i]) }()
		waitStat(t, "Stats.Blocked", func() uint64 { return mb.Stats().Blocked }, uint64(i+1))
	}
	if n := mb.Purge(errors.New("circuit open")); n != 4 {
		t.Fatalf("Purge returned %d, want 4", n)
	}
	posted.Wait()
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(order) != "[1 2 3 4]" {
		t.Fatalf("failed in the order %v, want [1 2 3 4] (queued, then the waiters as they came)", order)
	}
}

// orderedMsg logs its id, synchronously, at its first Fail.
type orderedMsg struct {
	*msg
	log  func(int)
	once sync.Once
}

func (m *orderedMsg) Fail(err error) {
	m.once.Do(func() { m.log(m.id) })
	m.msg.Fail(err)
}
