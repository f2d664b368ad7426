package actors_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vactor-io/vactor/actors"
)

// fakeLoads counts loads, the most running at once, and bumps the epoch.
type fakeLoads struct {
	epoch, loads, running, most atomic.Int64
	delay                       time.Duration
}

func (f *fakeLoads) load(context.Context) error {
	if n := f.running.Add(1); n > f.most.Load() {
		f.most.Store(n)
	}
	time.Sleep(f.delay) // a load takes a while: requests pile up meanwhile
	f.loads.Add(1)
	f.epoch.Add(1)
	f.running.Add(-1)
	return nil
}

func startTopology(t *testing.T, f *fakeLoads, interval time.Duration) *actors.TopologyState {
	t.Helper()
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	s := &actors.TopologyState{
		Load:     f.load,
		Epoch:    func() uint64 { return uint64(f.epoch.Load()) },
		Interval: interval,
		MinGap:   time.Hour, // background requests after the first are spaced out of the test
		Timeout:  time.Second,
	}
	if err := s.Spawn(sys); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Background requests coalesce; sync requests load unless a load ended
// since the caller looked; loads never overlap; Stop releases waiters.
func TestTopologyActorCoalescesAndSerializes(t *testing.T) {
	f := &fakeLoads{delay: 20 * time.Millisecond}
	s := startTopology(t, f, 0)
	for range 1000 {
		s.Request()
	}
	var wg sync.WaitGroup
	for range 20 { // 20 callers who all saw epoch 0
		wg.Go(func() { s.Sync(0) })
	}
	wg.Wait()
	if n := f.loads.Load(); n < 1 || n > 2 {
		t.Fatalf("%d loads for 1,000 background and 20 sync requests from one epoch; want 1 or 2", n)
	}
	if f.epoch.Load() == 0 {
		t.Fatal("Sync returned before any load")
	}
	before := f.loads.Load()
	s.Sync(uint64(f.epoch.Load())) // nothing newer than what this caller saw: loads
	if f.loads.Load() != before+1 {
		t.Fatalf("a sync request from the current epoch did not load (%d -> %d)", before, f.loads.Load())
	}
	if m := f.most.Load(); m != 1 {
		t.Fatalf("%d loads ran at once; want 1", m)
	}
	s.Stop()
	done := make(chan struct{})
	go func() { s.Sync(uint64(f.epoch.Load())); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Sync after Stop did not return")
	}
}

// The map is reloaded every Interval.
func TestTopologyActorPeriodic(t *testing.T) {
	f := &fakeLoads{}
	startTopology(t, f, 20*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for f.loads.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d periodic loads in 5 s with a 20 ms interval", f.loads.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// While Degraded holds, the map is reloaded every Watch without any
// request; once it no longer holds, the loads stop.
func TestTopologyActorWatchesWhileDegraded(t *testing.T) {
	f := &fakeLoads{}
	var degraded atomic.Bool
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	s := &actors.TopologyState{
		Load:     f.load,
		Epoch:    func() uint64 { return uint64(f.epoch.Load()) },
		MinGap:   time.Hour,
		Timeout:  time.Second,
		Degraded: degraded.Load,
		Watch:    10 * time.Millisecond,
	}
	if err := s.Spawn(sys); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.Sync(0)
	if n := f.loads.Load(); n != 1 {
		t.Fatalf("%d loads after one Sync", n)
	}
	degraded.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for f.loads.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d loads in 5s while degraded, watch 10ms", f.loads.Load())
		}
		time.Sleep(time.Millisecond)
	}
	degraded.Store(false)
	// A load may be under way as the flag drops; after it, none.
	time.Sleep(30 * time.Millisecond)
	n := f.loads.Load()
	time.Sleep(100 * time.Millisecond) // ten watch periods: no load may start
	if m := f.loads.Load(); m != n {
		t.Fatalf("%d loads while not degraded", m-n)
	}
}

// Sync requests from callers that keep failing (each from the epoch it
// just saw) are spaced by SyncGap: they loaded back to back, ~170 loads
// a second per engine while a killed primary was not yet replaced. Each
// caller still gets a map newer than the one it saw.
func TestTopologyActorSpacesSyncLoads(t *testing.T) {
	f := &fakeLoads{delay: time.Millisecond}
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	s := &actors.TopologyState{
		Load:    f.load,
		Epoch:   func() uint64 { return uint64(f.epoch.Load()) },
		MinGap:  time.Hour,
		SyncGap: 100 * time.Millisecond,
		Timeout: time.Second,
	}
	if err := s.Spawn(sys); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	start := time.Now()
	var wg sync.WaitGroup
	var stale atomic.Int64
	for range 4 { // 4 callers, each asking again as soon as it got a map
		wg.Go(func() {
			for time.Since(start) < 500*time.Millisecond {
				seen := uint64(f.epoch.Load())
				s.Sync(seen)
				if uint64(f.epoch.Load()) == seen {
					stale.Add(1)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	// One load at the start, then at most one per 100 ms.
	if n, most := f.loads.Load(), int64(el/(100*time.Millisecond))+2; n > most || n < 2 {
		t.Fatalf("%d loads in %v of back-to-back Syncs with a 100 ms SyncGap; want 2 to %d", n, el, most)
	}
	if n := stale.Load(); n != 0 {
		t.Fatalf("%d Syncs returned without a newer map", n)
	}
}

// Callers of a burst whose loads fail (every node refuses the engine: a
// revoked password) share the failed load: each returns once a load begun
// after its call has ended. They waited for one load each, SyncGap apart:
// 200 slots failing at once took 20 s, their commands' deadlines first.
func TestTopologyActorFailedLoadAnswersWaiters(t *testing.T) {
	var loads atomic.Int64
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	s := &actors.TopologyState{
		Load: func(context.Context) error {
			loads.Add(1)
			return errors.New("WRONGPASS invalid username-password pair")
		},
		Epoch:   func() uint64 { return 7 }, // never newer: every load fails
		MinGap:  time.Hour,
		SyncGap: 200 * time.Millisecond,
		Timeout: time.Second,
	}
	if err := s.Spawn(sys); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.Sync(7) // the first load: the next one waits for the gap's end
	start := time.Now()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { s.Sync(7) })
	}
	wg.Wait()
	// One more load at the gap's end answers all 50 (one load each, 200
	// ms apart, took 10 s).
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("50 Syncs over failing loads returned after %v, want one shared load (~200 ms)", el)
	}
	if n := loads.Load(); n > 3 {
		t.Fatalf("%d loads for 50 Syncs made together, want 2 (3 at most)", n)
	}
}
