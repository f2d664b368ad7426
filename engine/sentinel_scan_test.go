package engine_test

import (
	"errors"
	"iter"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// scanCalls returns the SCANs n served (INFO commandstats).
func scanCalls(t *testing.T, n *valkeytest.Server) int { return cmdCalls(t, n, "scan") }

// scanDeltas returns the SCANs each node of s served since before.
func scanDeltas(t *testing.T, s *valkeytest.Sentinel, before map[string]int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, n := range s.Nodes() {
		out[n.Addr()] = scanCalls(t, n) - before[n.Addr()]
	}
	return out
}

// scanCounts returns the SCANs each node of s served so far.
func scanCounts(t *testing.T, s *valkeytest.Sentinel) map[string]int {
	return scanDeltas(t, s, nil)
}

// With ReadFrom replica a sentinel-mode Scan stays on one replica for the
// whole iteration: a SCAN cursor is valid only on the server that
// returned it (each hashes keys with a seed of its own). Each page went
// through the replica reads routed by "" went to at the time, so when that
// replica left the healthy ones (here: frozen until the sentinels see it
// down) the next cursor went to the other replica and the iteration went
// on there, silently, with a cursor that named other buckets. Now it ends
// with an error that says the replica left, and no SCAN reaches another
// node.
func TestSentinelScanStaysOnOneReplica(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	eng := sentinelEngine(t, s, func(c config.Config) config.Config { return c.WithReadFrom(config.ReadFromReplica) })
	ctx := ctxT(t)
	const keys = 500
	dsFill(t, ctx, eng, "ss:", keys)
	if n, err := eng.WaitReplicas(ctx, "", 2, 2*time.Second).Await(ctx); err != nil || n != 2 {
		t.Fatalf("WaitReplicas(2) = %d, %v", n, err)
	}
	waitCond(t, 5*time.Second, "connections to both replicas", func() bool {
		return len(eng.Stats().Nodes) == 3 && len(eng.Stats().Sentinel.Replicas) == 2 && engine.SentinelReaders(eng) == 2
	})
	p, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}

	// A whole iteration: every key once, every page on one replica.
	before := scanCounts(t, s)
	seen := dsScanAll(t, eng.Scan(ctx, "", 10))
	dsWantEachOnce(t, seen, "ss:", keys)
	d := scanDeltas(t, s, before)
	var on []string
	for addr, n := range d {
		if n > 0 {
			on = append(on, addr)
		}
	}
	if len(on) != 1 || on[0] == p.Addr() {
		t.Fatalf("a whole iteration's SCANs per node: %v (primary %s); want all on one replica", d, p.Addr())
	}

	// The replica leaves mid-iteration.
	before = scanCounts(t, s)
	next, stop := iter.Pull2(eng.Scan(ctx, "", 10))
	defer stop()
	if k, err, ok := next(); !ok || err != nil || !strings.HasPrefix(k, "ss:") {
		t.Fatalf("first key: %q, %v, %v", k, err, ok)
	}
	d = scanDeltas(t, s, before)
	var pinned *valkeytest.Server
	for _, n := range s.Nodes() {
		if d[n.Addr()] > 0 {
			if pinned != nil || n == p {
				t.Fatalf("SCANs per node for the first key: %v (primary %s); want them on one replica", d, p.Addr())
			}
			pinned = n
		}
	}
	if pinned == nil {
		t.Fatalf("no node served the first SCAN: %v", d)
	}
	first := d[pinned.Addr()]
	if err := pinned.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pinned.Resume() })
	// Its connection actors are stopped after reads stopped going to it.
	waitCond(t, 15*time.Second, "the frozen replica's connections stopped", func() bool {
		return !slices.ContainsFunc(eng.Stats().Nodes, func(n engine.NodeStats) bool { return n.Addr == pinned.Addr() })
	})
	n, got := drainScan(t, next, "ss:")
	n++ // the key read before
	if err := pinned.Resume(); err != nil {
		t.Fatal(err)
	}
	d = scanDeltas(t, s, before)
	if got == nil {
		t.Fatalf("the iteration ended without an error after %d keys, its replica %s gone; SCANs per node %v (%d on %s for the first key)",
			n, pinned.Addr(), d, first, pinned.Addr())
	}
	if !errors.Is(got, engine.ErrScanNodeChanged) {
		t.Errorf("error %v does not match ErrScanNodeChanged", got)
	}
	if msg := got.Error(); !strings.Contains(msg, "replica "+pinned.Addr()+" left") || !strings.Contains(msg, "start a new one") {
		t.Fatalf("error %q: want it to say replica %s left and to start a new iteration", msg, pinned.Addr())
	}
	for addr, c := range d {
		if addr != pinned.Addr() && c > 0 {
			t.Fatalf("%s served %d SCANs of an iteration pinned to %s (per node: %v)", addr, c, pinned.Addr(), d)
		}
	}
	if _, _, ok := next(); ok {
		t.Fatal("the iterator went on after its error")
	}
	t.Logf("%d keys from %s, then: %v", n, pinned.Addr(), got)
}

// A sentinel-mode Scan reading from the primary stops when the primary
// changes: the primary's connection actors follow the failover, so the
// next cursor went to the promoted replica and the iteration went on there
// silently. Now it ends with an error that names both primaries.
func TestSentinelScanStopsAtPrimaryChange(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	eng := sentinelEngine(t, s)
	ctx := ctxT(t)
	const keys = 500
	dsFill(t, ctx, eng, "sp:", keys)
	if n, err := eng.WaitReplicas(ctx, "", 2, 2*time.Second).Await(ctx); err != nil || n != 2 {
		t.Fatalf("WaitReplicas(2) = %d, %v", n, err)
	}
	p, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	before := scanCounts(t, s)
	next, stop := iter.Pull2(eng.Scan(ctx, "", 10))
	defer stop()
	if k, err, ok := next(); !ok || err != nil || !strings.HasPrefix(k, "sp:") {
		t.Fatalf("first key: %q, %v, %v", k, err, ok)
	}
	if d := scanDeltas(t, s, before); d[p.Addr()] == 0 {
		t.Fatalf("SCANs per node for the first key: %v; want them on the primary %s", d, p.Addr())
	}
	newP, err := s.Failover()
	if err != nil {
		t.Fatal(err)
	}
	waitCond(t, 10*time.Second, "the engine on the new primary", func() bool {
		return eng.Stats().Sentinel.Primary == newP.Addr()
	})
	before[newP.Addr()] = scanCalls(t, newP)
	n, got := drainScan(t, next, "sp:")
	n++ // the key read before
	if got == nil {
		t.Fatalf("the iteration ended without an error after %d keys across a failover from %s to %s; the new primary served %d SCANs",
			n, p.Addr(), newP.Addr(), scanCalls(t, newP)-before[newP.Addr()])
	}
	if !errors.Is(got, engine.ErrScanNodeChanged) {
		t.Errorf("error %v does not match ErrScanNodeChanged", got)
	}
	if msg := got.Error(); !strings.Contains(msg, "primary changed from "+p.Addr()+" to "+newP.Addr()) || !strings.Contains(msg, "start a new one") {
		t.Fatalf("error %q: want it to say the primary changed from %s to %s and to start a new iteration", msg, p.Addr(), newP.Addr())
	}
	if c := scanCalls(t, newP) - before[newP.Addr()]; c > 0 {
		t.Fatalf("the new primary %s served %d SCANs of the iteration", newP.Addr(), c)
	}
	t.Logf("%d keys from %s, then: %v", n, p.Addr(), got)
}

// drainScan reads the rest of a pulled Scan: how many keys it yielded
// (each must have prefix) and the error that ended it, if any.
func drainScan(t *testing.T, next func() (string, error, bool), prefix string) (int, error) {
	t.Helper()
	n := 0
	for {
		k, err, ok := next()
		if !ok {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if !strings.HasPrefix(k, prefix) {
			t.Fatalf("key %q", k)
		}
		n++
	}
}
