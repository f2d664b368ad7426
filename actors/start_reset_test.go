package actors_test

import (
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
	conn := newFakeConn()
	r35aResetFirst(conn)
	d := newFakeDialer()
	hold := make(chan struct{})
	d.hold = hold
	st := nodeState(conn, d, 100)
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
	kept.wantFailed(t) // the breaker was open at start's look: fails
	waitFor(t, after, 5*time.Second, "queued for the new server after the Reset")
	after.wantCompleted(t) // failed as committed: start's purge ran after the Reset
	h.shutdown(t, snapshot)
}
