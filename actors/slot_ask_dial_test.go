package actors_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/mailbox"
)

const askTarget = "127.0.0.1:7002"

// askFirst is a driver whose first command (PING aside) is answered with
// an ASK to askTarget; the rest go to its script.
type askFirst struct {
	*scriptConn
	mu    sync.Mutex
	asked bool
}

func (a *askFirst) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	return a.DoMulti(ctx, cmd)[0]
}

func (a *askFirst) DoMulti(ctx context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]valkey.ValkeyResult, 0, len(cmds))
	for _, c := range cmds {
		if !a.asked && c.Commands()[0] != "PING" {
			a.asked = true
			out = append(out, serverErrReply("ASK 1 "+askTarget))
			continue
		}
		out = append(out, a.scriptConn.DoMulti(ctx, c)...)
	}
	return out
}

// askDial is a Router over an owner, dialled, and an ASK target that is
// dialled only on Conn, which blocks until release is closed.
type askDial struct {
	oneNode
	target  *actors.ConnState
	release chan struct{}
	dials   chan struct{}
	mu      sync.Mutex
	dialled bool
}

func (r *askDial) Conn(addr string, slot uint16) (*actors.ConnState, error) {
	if addr != askTarget {
		return r.oneNode.Conn(addr, slot)
	}
	r.dials <- struct{}{}
	<-r.release
	r.mu.Lock()
	r.dialled = true
	r.mu.Unlock()
	return r.target, nil
}

func (r *askDial) Asking() actors.Command {
	c := newFakeCmd(-1, nil)
	c.cmd = valkey.Builder{}.Arbitrary("ASKING").Build()
	return c
}

func (r *askDial) Cached(addr string, slot uint16) *actors.ConnState {
	if addr != askTarget {
		return r.oneNode.Cached(addr, slot)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.dialled {
		return nil
	}
	return r.target
}

// A recovery made only of ASK redirects to a node not dialled yet (the
// first slot of a live migration to a node the engine has not used) waits
// for the dial off the actor; the slot's commands that come meanwhile are
// parked behind it. Once the dial is done, the ASK redirects go to the
// target and the parked commands to the owner. They were left parked, the
// recovery ended and the direct path still closed (pending > 0): every
// later command of the slot was parked behind them, for good (QA-G
// finding 1: slot 40 wedged after a migration of slots 40-59).
func TestSlotAskToUndialledTargetKeepsParked(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	owner := scriptNode(&askFirst{scriptConn: &scriptConn{script: []string{"a"}}})
	target := scriptNode(&scriptConn{script: []string{"asking", "b"}})
	target.Addr, target.Node.Addr = askTarget, askTarget
	h := start(t, owner)
	h2 := start(t, target)
	r := &askDial{oneNode: oneNode{owner}, target: target, release: make(chan struct{}), dials: make(chan struct{}, 4)}
	slot := slotOn(h, owner, 1)
	slot.Router = r
	var box atomic.Pointer[mailbox.Bounded]
	slot.NewMailbox = func() *mailbox.Bounded {
		b := mailbox.New(mailbox.Options{})
		box.Store(b)
		return b
	}

	first, second := newHookedCmd(1), newHookedCmd(2)
	slot.Submit(first) // straight to the owner, which answers ASK
	waitChan(t, r.dials, "the dial of the ASK target")
	slot.Submit(second) // parked behind the recovery, which waits for the dial
	eventually(t, "the slot actor took the second command", func() bool {
		b := box.Load()
		return b != nil && b.Stats().Batched >= 1
	}) // and parks it before it can hear that the dial is done
	close(r.release)
	first.wantString(t, "b")
	second.wantString(t, "a")
	r.mu.Lock()
	dialled := r.dialled
	r.mu.Unlock()
	if !dialled {
		t.Fatal("the ASK target was never dialled: the test did not take the path it tests")
	}
	third := newHookedCmd(3) // the slot still serves new commands
	slot.Submit(third)
	third.wantString(t, "OK")

	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h2.stop(t)
	h2.waitStopped(t)
	h.shutdown(t, snapshot)
}
