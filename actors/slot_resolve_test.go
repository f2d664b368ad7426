package actors_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// A slot actor never waits for the network itself (DESIGN rule 0): a node
// it must dial first is dialled off its goroutine, so it keeps handling
// its messages (here: Close) while the dial hangs, and once the dial is
// done the commands that waited for it go out in the order issued.

// slowDial is an actors.Router over one node that is not dialled until
// Conn, which blocks until release is closed, has run.
type slowDial struct {
	st      *actors.ConnState
	release chan struct{}
	mu      sync.Mutex
	dialled bool
	dials   chan struct{} // one send per Conn call that began
}

func (r *slowDial) Owner(uint16) (string, error) { return scriptAddr, nil }
func (r *slowDial) Conn(string, uint16) (*actors.ConnState, error) {
	r.dials <- struct{}{}
	<-r.release
	r.mu.Lock()
	r.dialled = true
	r.mu.Unlock()
	return r.st, nil
}
func (r *slowDial) ReadConn(uint16) (*actors.ConnState, error) { return nil, nil }
func (r *slowDial) ReplicaAddr(uint16) string                  { return "" }
func (r *slowDial) Cached(string, uint16) *actors.ConnState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.dialled {
		return nil
	}
	return r.st
}
func (r *slowDial) ReplicaReads() bool             { return false }
func (r *slowDial) Asking() actors.Command         { return newFakeCmd(-1, nil) }
func (r *slowDial) Moved(uint16, string)           {}
func (r *slowDial) Stale(uint16)                   {}
func (r *slowDial) Epoch() uint64                  { return 1 }
func (r *slowDial) Refresh(uint16) (string, error) { return scriptAddr, nil }
func (r *slowDial) waitDial(t *testing.T)          { t.Helper(); waitChan(t, r.dials, "a dial") }
func waitChan(t *testing.T, c chan struct{}, w string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", w)
	}
}

// slowSlot starts a connection actor over a scripted driver and a slot
// whose router dials it slowly.
func slowSlot(t *testing.T, script ...string) (*harness, *actors.SlotState, *slowDial) {
	t.Helper()
	conn := &scriptConn{script: script}
	st := scriptNode(conn)
	h := start(t, st)
	r := &slowDial{st: st, release: make(chan struct{}), dials: make(chan struct{}, 16)}
	slot := &actors.SlotState{
		Slot:         1,
		Router:       r,
		MaxRedirects: testMaxRedirects,
		Backoff:      policies.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond},
		CloseErr:     mailbox.ErrClosed,
		NewMailbox:   func() *mailbox.Bounded { return mailbox.New(mailbox.Options{}) },
		System:       h.system,
	}
	return h, slot, r
}

func TestSlotActorClosesWhileDialHangs(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	h, slot, r := slowSlot(t)
	first, second := newHookedCmd(1), newHookedCmd(2)
	slot.Submit(first)
	r.waitDial(t)
	slot.Submit(second) // parked behind the dial

	closed := make(chan struct{})
	go func() {
		slot.Close(mailbox.ErrClosed)
		slot.Wait()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		close(r.release) // let the stuck actor go before failing
		t.Fatal("the slot actor did not stop while its owner's dial hung: it waits for the network on its own goroutine")
	}
	for _, c := range []*hookedCmd{first, second} {
		if err := c.wantFailed(t); !errors.Is(err, mailbox.ErrClosed) {
			t.Fatalf("command %d: %v, want ErrClosed", c.id, err)
		}
	}
	close(r.release)
	h.shutdown(t, snapshot)
}

func TestSlotActorSendsInOrderAfterDial(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	h, slot, r := slowSlot(t, "a", "b", "c")
	cmds := []*hookedCmd{newHookedCmd(1), newHookedCmd(2), newHookedCmd(3)}
	slot.Submit(cmds[0])
	r.waitDial(t)
	slot.Submit(cmds[1])
	slot.Submit(cmds[2])
	for _, c := range cmds {
		if c.isDone() {
			t.Fatalf("command %d completed before its node was dialled", c.id)
		}
	}
	close(r.release)
	for i, want := range []string{"a", "b", "c"} {
		cmds[i].wantString(t, want)
	}
	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h.shutdown(t, snapshot)
}
