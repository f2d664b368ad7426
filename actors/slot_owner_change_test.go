package actors_test

import (
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/mailbox"
)

// movingOwner is a Router whose slot map can name a new owner: its
// connection actor, and a new epoch.
type movingOwner struct {
	oneNode
	moved    atomic.Bool
	old, new *actors.ConnState
}

func (r *movingOwner) cur() *actors.ConnState {
	if r.moved.Load() {
		return r.new
	}
	return r.old
}
func (r *movingOwner) Conn(string, uint16) (*actors.ConnState, error) { return r.cur(), nil }
func (r *movingOwner) Cached(string, uint16) *actors.ConnState        { return r.cur() }
func (r *movingOwner) Epoch() uint64 {
	if r.moved.Load() {
		return 2
	}
	return 1
}

// When the slot map names a new owner while a command of the slot is still
// in flight on the former one, a later command of the slot must not run on
// the new owner before it: it waits (in the slot actor) until the slot has
// nothing in flight. (TestAuditChaosCluster, during a slot migration: a
// GET issued after a SET of the same key read the value before it. The
// SET was still on the former owner, to be redirected to the new one, when
// a reload of the map, asked for by another slot's MOVED, sent the GET
// straight to the new owner.)
func TestSlotNewOwnerWaitsForInFlight(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	oldConn, oldSt, h := heldNode(t)
	newSt := scriptNode(&scriptConn{})
	h2 := start(t, newSt)
	r := &movingOwner{old: oldSt, new: newSt}
	slot := slotOn(h, oldSt, 1)
	slot.Router = r
	first, later := newHookedCmd(1), newHookedCmd(2)
	slot.Submit(first) // straight to the old owner; its round trip is held
	waitChan(t, oldConn.entered, "the first round trip")
	r.moved.Store(true) // the map now names the new owner
	slot.Submit(later)
	select {
	case <-later.done:
		t.Fatalf("the later command completed (%v) on the new owner while the first is still in flight on the old one", later.err)
	case <-time.After(200 * time.Millisecond): // it completes at once when it does not wait
	}
	close(oldConn.release)
	first.waitDone(t)
	later.waitDone(t)
	first.wantString(t, "OK")
	later.wantString(t, "OK")
	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h2.stop(t)
	h2.waitStopped(t)
	h.shutdown(t, snapshot)
}
