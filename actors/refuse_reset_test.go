package actors_test

import (
	"errors"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/policies"
)

// A refusal that found the node's breaker open, and a Reset (a sentinel
// switch) that closed it before the refusal's purge ran: the purge fails
// nothing queued for the new server after the Reset (review-40 2: it
// failed such commands, and the stash a switch's Retire keeps for the new
// primary, with the former server's open error).
func TestRefusalRacingResetSparesCommandsQueuedAfter(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st := nodeState(newFakeConn(), newFakeDialer(), 1)
	h := start(t, st)
	st.Node.RecordFailure(errors.New("the former primary failed"))
	if !st.Node.Open() {
		t.Fatal("the breaker did not open (threshold 1)")
	}
	after := newFakeCmd(1, nil)
	t.Cleanup(func() { actors.SetBeforeRefuse(nil) })
	actors.SetBeforeRefuse(func(s *actors.ConnState) {
		// The switch, between the refusal's look at the breaker and its
		// purge, and a command queued for the new primary then (the
		// mailbox paused: only the purge could take it before the
		// actor).
		s.Mailbox.Pause()
		h.sup.Reset(s.Node)
		s.Mailbox.Post(after)
	})
	st.RefuseIfOpen()
	actors.SetBeforeRefuse(nil)
	st.Mailbox.Unpause()
	waitFor(t, after, 2*time.Second, "queued for the new server after the Reset")
	after.wantCompleted(t)
	if st.Node.Open() {
		t.Fatal("the breaker open after the Reset")
	}
	h.shutdown(t, snapshot)
}

// A Reset of a failure-rate breaker whose former server's failures were
// just under the rate returns, and leaves the breaker closed: it recorded
// a success under refuseMu, which opened the breaker (4 executions, 75%
// failures), and the opening's listener, wired as the engine's
// (engine/node.go: FailIfOpen), waited for the refuseMu its own goroutine
// held (review-41 1: the sentinel actor hung in its switch, and every
// later refusal of the node with it).
func TestResetOfFailureRateBreakerReturns(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st := newState("node:6379", newFakeConn(), errors.New("closed"))
	node := &actors.Node{Addr: st.Addr, Dial: newFakeDialer().dial, DialTimeout: 5 * time.Second}
	node.Breaker = policies.NewBreaker(policies.BreakerOptions{
		Threshold: 4, FailureRate: 0.5, Period: time.Minute, OpenTimeout: time.Hour,
		OnStateChanged: func(_, to circuitbreaker.State) {
			if now := node.SyncOpen(); to == circuitbreaker.OpenState && now != circuitbreaker.ClosedState {
				st.FailIfOpen()
			}
		},
	})
	st.Node = node
	st.Policy = &actors.Policy{MaxRetries: 3, Backoff: policies.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}}
	h := start(t, st)
	for range 3 {
		node.RecordFailure(errors.New("the former primary failed"))
	}
	if node.Open() {
		t.Fatal("the breaker opened before 4 executions")
	}
	done := make(chan struct{})
	go func() { h.sup.Reset(node); close(done) }() // the sentinel switch
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Supervisor.Reset did not return in 2 s: it held refuseMu while the breaker opened, its listener waiting for refuseMu")
	}
	if node.Open() || !node.Breaker.IsClosed() {
		t.Fatal("the breaker not closed after the Reset")
	}
	node.RecordFailure(errors.New("the new primary's first failure"))
	if node.Open() {
		t.Fatal("one failure of the new server opened the breaker: the Reset kept the former server's")
	}
	h.shutdown(t, snapshot)
}
