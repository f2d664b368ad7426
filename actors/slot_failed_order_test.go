package actors_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// holdConn is a scriptConn whose round trips (but PING) wait for release.
type holdConn struct {
	*scriptConn
	release chan struct{}
	entered chan struct{} // one send per round trip that began, if room
}

func (c *holdConn) DoMulti(ctx context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	if cmds[0].Commands()[0] != "PING" {
		select {
		case c.entered <- struct{}{}:
		default:
		}
		<-c.release
	}
	return c.scriptConn.DoMulti(ctx, cmds...)
}

func (c *holdConn) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	return c.DoMulti(ctx, cmd)[0]
}

// scriptNode returns the state of a connection actor on conn for
// scriptAddr, its node's breaker far from opening by itself.
func scriptNode(conn drivers.ValkeyConn) *actors.ConnState {
	return &actors.ConnState{
		Addr:     scriptAddr,
		Mailbox:  mailbox.New(mailbox.Options{}),
		Driver:   conn,
		CloseErr: mailbox.ErrClosed,
		Node: &actors.Node{
			Addr:        scriptAddr,
			DialTimeout: time.Second,
			Dial:        func(context.Context) (drivers.ValkeyConn, error) { return conn, nil },
			Breaker:     policies.NewBreaker(policies.BreakerOptions{Threshold: 100}),
		},
	}
}

// heldNode starts a connection actor on a holdConn, its node's breaker
// far from opening by itself.
func heldNode(t *testing.T) (*holdConn, *actors.ConnState, *harness) {
	conn := &holdConn{scriptConn: &scriptConn{}, release: make(chan struct{}), entered: make(chan struct{}, 1)}
	st := scriptNode(conn)
	return conn, st, start(t, st)
}

// slotOn returns slot's state, routed to st.
func slotOn(h *harness, st *actors.ConnState, slot uint16) *actors.SlotState {
	return &actors.SlotState{
		Slot:         slot,
		Router:       oneNode{st},
		MaxRedirects: testMaxRedirects,
		Backoff:      policies.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond},
		CloseErr:     mailbox.ErrClosed,
		NewMailbox:   func() *mailbox.Bounded { return mailbox.New(mailbox.Options{}) },
		System:       h.system,
	}
}

// After one of a slot's commands failed for its node (a breaker opening
// fails what the node's connection actor holds, one by one), a later
// command of the slot does not complete before an earlier one still held
// there: it waits in the slot actor until the slot has nothing in flight,
// then goes to the owner the map names then. It went through the slot
// actor at once and failed (breaker open) before the earlier command
// failed: DESIGN rule 2 broken, and after a failover it could have run on
// the new primary before an earlier command held for the old one
// (TestAuditChaosCluster: a DEL completed after a SET and a GET issued
// after it).
func TestSlotFailedNodeKeepsOrder(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn, st, h := heldNode(t)
	slot := slotOn(h, st, 1)
	inFlight, failed, earlier, later := newHookedCmd(1), newHookedCmd(2), newHookedCmd(3), newHookedCmd(4)
	slot.Submit(inFlight) // the direct path; its round trip is held
	waitChan(t, conn.entered, "the first round trip")
	slot.Submit(failed) // queued behind it, on the direct path
	slot.Submit(earlier)
	// The node's breaker opens: the first held command fails, the others
	// are still held by the connection actor.
	st.Node.SetOpen(true)
	failed.Fail(errors.New("node down"))
	slot.Submit(later)
	select {
	case <-later.done:
		t.Fatalf("command 4 completed (%v) while command 3, issued before it, is still held", later.err)
	case <-time.After(200 * time.Millisecond): // it fails within a few ms when it does not wait
	}
	close(conn.release)
	earlier.waitDone(t)
	later.waitDone(t)
	if err := later.wantFailed(t); !errors.Is(err, policies.ErrCircuitOpen) {
		t.Fatalf("command 4: %v, want ErrCircuitOpen", err)
	}
	inFlight.wantString(t, "OK")
	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h.shutdown(t, snapshot)
}

// SlotState.Close and a slot actor spawned on demand by a command's
// failure (notify, on the connection actor's goroutine) do not race on the
// slot's closed flag: Close wrote it under mu only, actorLocked read it
// under amu only (found with -race by TestAuditClusterCloseWhileReloading
// once failures, not only redirects, notify the slot actor).
func TestSlotCloseWhileFailing(t *testing.T) {
	for range 30 { // the race detector sees the race in some rounds only
		if err := slotCloseWhileFailing(t); !errors.Is(err, mailbox.ErrClosed) {
			t.Fatalf("a command submitted after Close: %v, want ErrClosed", err)
		}
	}
}

// slotCloseWhileFailing closes 20 slots while their queued commands fail,
// and returns the error of a command submitted after.
func slotCloseWhileFailing(t *testing.T) error {
	snapshot := goleak.IgnoreCurrent()
	conn, st, h := heldNode(t)
	first := newHookedCmd(0)
	var slots []*actors.SlotState
	for i := range 20 {
		slot := slotOn(h, st, uint16(i))
		slots = append(slots, slot)
		if i == 0 {
			slot.Submit(first) // holds the connection actor
			waitChan(t, conn.entered, "the first round trip")
		}
	}
	cmds := make([]*hookedCmd, len(slots))
	for i, slot := range slots {
		cmds[i] = newHookedCmd(i + 1)
		slot.Submit(cmds[i]) // queued on the direct path
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, c := range cmds {
			c.Fail(errors.New("node down")) // notify: spawns the slot actor
		}
	}()
	for _, slot := range slots {
		slot.Close(mailbox.ErrClosed)
	}
	<-done
	close(conn.release)
	first.waitDone(t)
	first.wantString(t, "OK")
	for _, slot := range slots {
		slot.Wait()
	}
	// Closed: a command submitted now fails with the close error.
	late := newHookedCmd(len(slots) + 1)
	slots[0].Submit(late)
	late.waitDone(t)
	err := late.wantFailed(t)
	h.shutdown(t, snapshot)
	return err
}

// A slot's command refused because its node's breaker is open does not
// complete before an earlier command of the slot still queued on the
// node's connection actor: the breaker's opening marks the node open
// before it fails what the actor queues, and in that window a later
// command went through the slot actor, which refused it at once
// (the cluster counterpart of the engine's TestBreakerOpenKeepsOrder).
func TestSlotOpenNodeKeepsOrder(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn, st, h := heldNode(t)
	slot := slotOn(h, st, 1)
	inFlight, earlier, later := newHookedCmd(1), newHookedCmd(2), newHookedCmd(3)
	slot.Submit(inFlight) // the direct path; its round trip is held
	waitChan(t, conn.entered, "the first round trip")
	slot.Submit(earlier)  // queued on the connection actor
	st.Node.SetOpen(true) // the opening has not failed the queue yet
	slot.Submit(later)
	select {
	case <-earlier.done:
	case <-later.done:
		select {
		case <-earlier.done:
		default:
			t.Fatal("command 3 was refused while command 2, issued before it, is still queued")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("neither command 2 nor command 3 completed")
	}
	close(conn.release)
	later.waitDone(t)
	if err := later.wantFailed(t); !errors.Is(err, policies.ErrCircuitOpen) {
		t.Fatalf("command 3: %v, want ErrCircuitOpen", err)
	}
	inFlight.waitDone(t)
	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h.shutdown(t, snapshot)
}

// A Submit blocked in a full connection mailbox (Backpressure block: its
// round trip held) holds the slot's routing lock; the slot's Queued, which
// Stats reads, does not wait behind it, and the mailbox counts the
// blocked command as Waiting. Stats blocked until the node's breaker
// opened (~15 s with a paused primary: qa-AF G1).
func TestSlotQueuedWhileSubmitBlocked(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := &holdConn{scriptConn: &scriptConn{}, release: make(chan struct{}), entered: make(chan struct{}, 1)}
	st := scriptNode(conn)
	st.Mailbox = mailbox.New(mailbox.Options{Capacity: 2})
	h := start(t, st)
	slot := slotOn(h, st, 1)
	cmds := []*hookedCmd{newHookedCmd(1), newHookedCmd(2), newHookedCmd(3), newHookedCmd(4)}
	slot.Submit(cmds[0]) // its round trip is held
	waitChan(t, conn.entered, "the first round trip")
	slot.Submit(cmds[1]) // the mailbox is full after these two
	slot.Submit(cmds[2])
	submitted := make(chan struct{})
	go func() { slot.Submit(cmds[3]); close(submitted) }()
	eventually(t, "the fourth command waiting for room", func() bool { return st.Mailbox.Stats().Waiting == 1 })
	queued := make(chan int, 1)
	go func() { queued <- slot.Queued() }()
	select {
	case n := <-queued:
		if n != 0 {
			t.Errorf("slot Queued = %d, want 0 (the commands are in the connection actor's mailbox)", n)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the slot's Queued waited for a Submit blocked in a full mailbox")
	}
	if s := st.Mailbox.Stats(); s.Queued != 2 {
		t.Errorf("mailbox Queued = %d, want 2", s.Queued)
	}
	close(conn.release)
	<-submitted
	for _, c := range cmds {
		c.waitDone(t)
	}
	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h.shutdown(t, snapshot)
}
