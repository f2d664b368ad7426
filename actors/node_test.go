package actors_test

import (
	"slices"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/policies"
)

// pausedNode returns a Node whose breaker (threshold 1, open for an hour)
// reports its transitions with SyncOpenReport(report), as the engine
// wires it, except
// that the listener of the first transition to pause waits, before
// reporting, until release is closed; paused is closed when it starts
// waiting. failsafe-go runs listeners outside its lock, so this is the
// window in which another goroutine's transition and its listener can run
// first.
func pausedNode(pause circuitbreaker.State, report func(from, to circuitbreaker.State)) (n *actors.Node, paused, release chan struct{}) {
	n = &actors.Node{Addr: "node:6379"}
	paused, release = make(chan struct{}), make(chan struct{})
	first := true
	n.Breaker = policies.NewBreaker(policies.BreakerOptions{
		Threshold:   1,
		OpenTimeout: time.Hour,
		OnStateChanged: func(_, to circuitbreaker.State) {
			if to == pause && first {
				first = false
				close(paused)
				<-release
			}
			n.SyncOpenReport(report)
		},
	})
	return n, paused, release
}

// Two transitions racing (the supervisor's Reset closing a node's breaker
// while a connection's failure opens it) whose listeners run in the
// opposite order to the transitions: the node's Open must still match the
// breaker once both listeners returned. Recording each event's new state
// (SetOpen(to != ClosedState), as the engine did) left the node refused
// for good with its breaker closed, or accepted with it open.
func TestNodeOpenFollowsBreakerWhenListenersCross(t *testing.T) {
	t.Run("opening reported after a Reset", func(t *testing.T) {
		n, paused, release := pausedNode(circuitbreaker.OpenState, nil)
		done := make(chan struct{})
		go func() { // a connection's failure opens the breaker
			defer close(done)
			n.Breaker.RecordFailure()
		}()
		<-paused          // opened; its listener has not reported it yet
		n.Breaker.Close() // the supervisor's Reset, reported at once
		close(release)    // now the opening's listener reports
		<-done
		if !n.Breaker.IsClosed() {
			t.Fatalf("breaker %v, want closed", n.Breaker.State())
		}
		if n.Open() {
			t.Fatal("node open while its breaker is closed: commands to it would be refused until its breaker changes state again")
		}
	})
	t.Run("Reset reported after an opening", func(t *testing.T) {
		n, paused, release := pausedNode(circuitbreaker.ClosedState, nil)
		n.Breaker.Open()
		if !n.Open() {
			t.Fatal("node not open after its breaker opened")
		}
		done := make(chan struct{})
		go func() { // the supervisor's Reset
			defer close(done)
			n.Breaker.Close()
		}()
		<-paused                  // closed; its listener has not reported it yet
		n.Breaker.RecordFailure() // a connection's failure opens it again
		close(release)
		<-done
		if !n.Breaker.IsOpen() {
			t.Fatalf("breaker %v, want open", n.Breaker.State())
		}
		if !n.Open() {
			t.Fatal("node not open while its breaker is open: commands to it are accepted and the supervisor does not probe it")
		}
	})
}

// Half-open counts as open, as before: commands still fail fast while the
// probe runs, and the probe's outcome closes or opens the node again.
func TestNodeSyncOpenHalfOpen(t *testing.T) {
	n := &actors.Node{Addr: "node:6379"}
	n.Breaker = policies.NewBreaker(policies.BreakerOptions{
		Threshold:      1,
		OpenTimeout:    time.Hour,
		OnStateChanged: func(_, _ circuitbreaker.State) { n.SyncOpen() },
	})
	steps := []struct {
		what string
		do   func()
		open bool
	}{
		{"failure", n.Breaker.RecordFailure, true},
		{"half-open", n.Breaker.HalfOpen, true},
		{"probe failed", n.Breaker.RecordFailure, true},
		{"half-open again", n.Breaker.HalfOpen, true},
		{"probe succeeded", n.Breaker.RecordSuccess, false},
	}
	for _, s := range steps {
		s.do()
		if n.Open() != s.open {
			t.Fatalf("after %s (breaker %v): Open() = %v, want %v", s.what, n.Breaker.State(), n.Open(), s.open)
		}
	}
	if got := n.SyncOpen(); got != circuitbreaker.ClosedState {
		t.Fatalf("SyncOpen = %v, want closed", got)
	}
}

// The changes SyncOpenReport reports when listeners cross form a chain
// ending in the breaker's state: the engine turns them into
// BreakerChanged events, which reported each transition's own from and
// to, in the order the listeners ran ("open -> closed", then
// "closed -> open", for a node left open).
func TestNodeReportsChainWhenListenersCross(t *testing.T) {
	var got []string
	report := func(from, to circuitbreaker.State) { got = append(got, from.String()+"->"+to.String()) }
	t.Run("opening reported after a Reset", func(t *testing.T) {
		got = nil
		n, paused, release := pausedNode(circuitbreaker.OpenState, report)
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.Breaker.RecordFailure()
		}()
		<-paused
		n.Breaker.Close()
		close(release)
		<-done
		// Neither listener saw the breaker open: nothing to report.
		if len(got) != 0 {
			t.Fatalf("reported %v, want nothing (the breaker was closed again before either listener read it)", got)
		}
	})
	t.Run("Reset reported after an opening", func(t *testing.T) {
		got = nil
		n, paused, release := pausedNode(circuitbreaker.ClosedState, report)
		n.Breaker.Open()
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.Breaker.Close()
		}()
		<-paused
		n.Breaker.RecordFailure()
		close(release)
		<-done
		if want := []string{"closed->open"}; !slices.Equal(got, want) {
			t.Fatalf("reported %v, want %v", got, want)
		}
	})
	t.Run("half-open and back", func(t *testing.T) {
		got = nil
		n := &actors.Node{Addr: "node:6379"}
		n.Breaker = policies.NewBreaker(policies.BreakerOptions{
			Threshold:      1,
			OpenTimeout:    time.Hour,
			OnStateChanged: func(_, _ circuitbreaker.State) { n.SyncOpenReport(report) },
		})
		n.Breaker.RecordFailure()
		n.Breaker.HalfOpen()
		n.Breaker.RecordFailure()
		n.Breaker.HalfOpen()
		n.Breaker.RecordSuccess()
		want := []string{"closed->open", "open->half-open", "half-open->open", "open->half-open", "half-open->closed"}
		if !slices.Equal(got, want) {
			t.Fatalf("reported %v, want %v", got, want)
		}
	})
}
