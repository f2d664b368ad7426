package engine_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// TestSentinelFailoverBatchWriter: SENTINEL FAILOVER under a batch writer
// (docs/sentinel.md, "Failover without lost writes"). Its lanes are held
// as the connection actors are: they send nothing from the start of the
// failover to the switch, WAIT for the replicas first, and then write to
// the new primary. Asserted: every write the writer acknowledged (each
// written and not reported through OnError) is on the new primary; none
// failed; the writer resumed on the new primary; a second writer whose
// lanes were idle when the failover started sent WAIT on each of them
// (their last pipelines may not have reached the replicas). Without the
// hold the old primary acknowledges the writer's SETs until the
// sentinels promote the replica and the engine switches, and thousands
// of them are lost.
func TestSentinelFailoverBatchWriter(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	eng := sentinelEngine(t, s)
	ctx := ctxT(t)

	var failedMu sync.Mutex
	failed := map[string]error{}
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{OnError: func(cmd []string, err error) {
		failedMu.Lock()
		failed[cmd[1]] = err
		failedMu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close(context.Background()) }()

	// The idle writer: its lanes wrote, and wait for work when the
	// failover starts.
	idle, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = idle.Close(context.Background()) }()
	var idleKeys []string
	for i := range 200 {
		k := fmt.Sprintf("idle:%d", i)
		idleKeys = append(idleKeys, k)
		if err := idle.Set(ctx, k, "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := idle.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := idle.Stats(); st.Acknowledged != 200 {
		t.Fatalf("idle writer: %v, want 200 acknowledged", st)
	}

	tap, err := s.Tap()
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	// 4 writers of distinct keys, paced (1 ms after every 10 writes each)
	// so that the run stays small on a busy machine under -race.
	log := &writeLog{}
	var n atomic.Int64
	stop, wait := runWriters(4, "bw", log, func(ctx context.Context, key string) error {
		if n.Add(1)%10 == 0 {
			time.Sleep(time.Millisecond)
		}
		return w.Set(ctx, key, "v", 0)
	})
	defer stop()
	waitCond(t, 10*time.Second, "1,000 writes acknowledged by the writer", func() bool { return w.Stats().Acknowledged >= 1000 })

	before := eng.Stats().Sentinel
	start := time.Now()
	old, err := s.StartFailover()
	if err != nil {
		t.Fatal(err)
	}
	newP, err := s.WaitSwitch(old, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tap.WaitAll(10*time.Second, valkeytest.EventSwitchMaster, start); err != nil {
		t.Fatal(err)
	}
	// Keep writing until the engine follows the new primary and the
	// writer acknowledged writes after it did, a second at least.
	waitCond(t, 10*time.Second, "the engine follows "+newP.Addr(), func() bool { return eng.Stats().Sentinel.Primary == newP.Addr() })
	followed := w.Stats().Acknowledged
	after := time.Now().Add(time.Second)
	waitCond(t, 10*time.Second, "the writer acknowledges writes on the new primary", func() bool {
		return time.Now().After(after) && w.Stats().Acknowledged > followed+1000
	})
	stop()
	wait(t, 30*time.Second)
	fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Flush(fctx); err != nil {
		t.Fatalf("Flush: %v (%v)", err, w.Stats())
	}
	final := finalPrimary(t, s, old, nil)
	st := w.Stats()
	sst := eng.Stats().Sentinel

	failedMu.Lock()
	var acked []string
	for _, k := range log.acked { // written: acknowledged unless reported failed
		if _, ok := failed[k]; !ok {
			acked = append(acked, k)
		}
	}
	nFailed := len(failed)
	var firstErr error
	for _, err := range failed {
		firstErr = err
		break
	}
	failedMu.Unlock()
	lost := missingOn(t, final.Addr(), acked)
	idleLost := missingOn(t, final.Addr(), idleKeys)
	t.Logf("writer: %v, %d written, %d acknowledged, %d lost on the new primary %s; failover events:%s",
		st, len(log.acked), len(acked), len(lost), final.Addr(), timeline(tap.Events(), start))
	t.Logf("WAITs: writer %d, idle writer %d; Stats().Sentinel: holds %d, synced %d, late %d (before: %d, %d)",
		engine.WriterHoldWaits(w), engine.WriterHoldWaits(idle), sst.Holds-before.Holds,
		sst.SyncedWaits, sst.LateWaits, before.SyncedWaits, before.LateWaits)

	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged batch writer writes missing on the new primary %s, want 0 (first: %v)",
			len(lost), len(acked), final.Addr(), lost[:min(5, len(lost))])
	}
	if len(idleLost) > 0 {
		t.Errorf("%d of %d writes the idle writer acknowledged before the failover missing on the new primary", len(idleLost), len(idleKeys))
	}
	if nFailed > 0 {
		t.Errorf("%d batch writer writes failed, want none (held, then sent to the new primary); one: %v", nFailed, firstErr)
	}
	if sst.Holds == before.Holds {
		t.Errorf("Stats().Sentinel.Holds did not grow: the failover was not held")
	}
	if got := engine.WriterHoldWaits(idle); got < engine.DefaultWriterConns {
		t.Errorf("the idle writer's lanes sent %d WAITs at the failover, want one on each of its %d", got, engine.DefaultWriterConns)
	}
	if engine.WriterHoldWaits(w) == 0 {
		t.Errorf("the writer's lanes sent no WAIT at the failover")
	}
}
