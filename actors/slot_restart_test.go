package actors_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/mailbox"
)

// panicRouter is one node with replica reads on (read-only commands go
// through the slot actor), whose ReplicaAddr, which only the slot actor
// calls while it forwards, panics once when armed: a bug in the slot
// actor, which protoactor answers with a restart.
type panicRouter struct {
	oneNode
	panicNext atomic.Bool
}

func (r *panicRouter) ReplicaReads() bool { return true }
func (r *panicRouter) ReplicaAddr(uint16) string {
	if r.panicNext.CompareAndSwap(true, false) {
		panic("injected slot actor bug")
	}
	return ""
}

// After a slot actor restarted in the middle of forwarding a batch (a
// panic), the batch's commands fail, the slot still serves, and its actor
// still stops when idle (review-34 R34-3: the batch stayed counted as
// pending, so the actor never stopped and the slot never took the direct
// path again).
func TestSlotIdleAfterRestart(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := &scriptConn{script: []string{"a", "b"}}
	st := scriptNode(conn)
	h := start(t, st)
	r := &panicRouter{oneNode: oneNode{st}}
	slot := slotOn(h, st, 7)
	slot.Router = r
	slot.IdleTimeout = 5 * time.Millisecond
	read := func(id int) *hookedCmd {
		c := newHookedCmd(id)
		c.cmd = valkey.Builder{}.Arbitrary("GET", "k").ReadOnly()
		return c
	}
	r.panicNext.Store(true)
	bad := read(1)
	slot.Submit(bad)
	bad.wantFailed(t)
	good := read(2)
	slot.Submit(good)
	good.wantString(t, "a")
	for deadline := time.Now().Add(2 * time.Second); slot.Live(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the slot actor did not stop 2 s after its last command (idle timeout 5 ms): Queued() = %d", slot.Queued())
		}
	}
	if n := slot.Queued(); n != 0 {
		t.Fatalf("Queued() = %d after the restart and every command answered, want 0", n)
	}
	w := newHookedCmd(3)
	slot.Submit(w)
	w.wantString(t, "b")
	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h.shutdown(t, snapshot)
}
