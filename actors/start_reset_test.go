package actors_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/policies"
)

// lagBreaker is a node's breaker without a listener (the node's Open
// flag never follows it: an opening whose listener has not run yet). When
// armed, its next TryAcquirePermit opens it and refuses, and the IsClosed
// after that runs between, a sentinel switch's Reset racing start's look.
type lagBreaker struct {
	policies.Breaker
	armed   atomic.Bool
	looked  atomic.Bool
	between func()
}

func (b *lagBreaker) TryAcquirePermit() bool {
	if b.armed.CompareAndSwap(true, false) {
		b.Breaker.Open()
		b.looked.Store(true)
		return false
	}
	return b.Breaker.TryAcquirePermit()
}

func (b *lagBreaker) IsClosed() bool {
	closed := b.Breaker.IsClosed()
	if b.looked.CompareAndSwap(true, false) {
		b.between()
	}
	return closed
}

func (b *lagBreaker) Reset() { b.Breaker.(interface{ Reset() }).Reset() }

// review-41b (its 2): start's FailHeld for an opening whose listener lags
// (review-41 3's case) is not one step with a Reset: a Reset that closes
// the breaker between start's IsClosed and its FailHeld lets that purge
// fail a command queued for the new server after the Reset, the race
// FailIfOpen's refuseMu closes elsewhere.
func TestStartLagPurgeRacingResetSparesCommandsQueuedAfter(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st, d, hold := keptNode()
	lb := &lagBreaker{Breaker: policies.NewBreaker(policies.BreakerOptions{Threshold: 100, OpenTimeout: time.Hour})}
	st.Node.Breaker = lb
	h := start(t, st)

	after := newFakeCmd(2, nil)
	lb.between = func() {
		done := make(chan struct{})
		go func() {
			h.sup.Reset(st.Node)   // the switch
			st.Mailbox.Post(after) // for the new primary
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(time.Second): // blocked on refuseMu: start's look and purge are one step
		}
	}
	kept := idempotent(1, nil)
	st.Mailbox.Post(kept)
	waitChan(t, d.started, "the redial") // kept is in the stash
	lb.armed.Store(true)
	close(hold)
	// The breaker was open at start's look: the kept command fails (it
	// was written once: an outcome unknown wrapping the open error).
	if err := kept.wantFailed(t); !errors.Is(err, policies.ErrCircuitOpen) {
		t.Fatalf("the kept command: %v, want the open error", err)
	}
	waitFor(t, after, 5*time.Second, "queued for the new server after the Reset")
	if r := after.wantCompleted(t); r.Error() != nil { // it failed with the open error: start's purge ran after the Reset
		t.Fatalf("the command queued after the Reset: %v", r.Error())
	}
	h.shutdown(t, snapshot)
}
