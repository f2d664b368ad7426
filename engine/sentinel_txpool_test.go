package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// TestSentinelFailoverTxDedicated: SENTINEL FAILOVER under writers that
// use the pooled connections of Tx and Dedicated (docs/sentinel.md,
// "Failover without lost writes"). When the failover is held, the idle
// pooled connections to the old primary that acknowledged writes send
// WAIT, as the connection actors do; a Dedicated connection lent at the
// time finishes the round trip it has in flight and sends WAIT before its
// next one, which waits for the hold's end (and fails, unsent, once the
// switch closed the connection). Asserted: every Tx and every Dedicated
// write acknowledged is on the new primary, and the pooled connections'
// WAITs were counted in Stats().Sentinel.
func TestSentinelFailoverTxDedicated(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	eng := sentinelEngine(t, s)

	tap, err := s.Tap()
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()

	// 8 Tx writers (one SET per EXEC); 8 Dedicated writers, each call
	// SETs for a second, one round trip each, so that calls are in progress
	// from the start of the failover to the promotion.
	txLog, dedLog := &writeLog{}, &writeLog{}
	stopTx, waitTx := runWriters(8, "tx", txLog, func(ctx context.Context, key string) error {
		tx := eng.Tx()
		tx.Set(key, "v", 0)
		return tx.Exec(ctx)
	})
	defer stopTx()
	stopDed, waitDed := runWriters(8, "ded", dedLog, func(ctx context.Context, key string) error {
		return eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
			for i, end := 0, time.Now().Add(time.Second); time.Now().Before(end); i++ {
				k := fmt.Sprintf("%s:%d", key, i)
				if _, err := c.Do(ctx, "SET", k, "v"); err != nil {
					return err // logged as key's failure
				}
				dedLog.ok(k, time.Now())
			}
			_, err := c.Do(ctx, "SET", key, "v")
			return err
		})
	})
	defer stopDed()
	// 8 WatchRetry writers whose function reads the key, then computes
	// for 20 ms before its SET: runs are between their read and their EXEC
	// when the hold starts. Such a run waits for the hold's end and fails
	// unsent after the switch (ErrNotPrimary); WatchRetry reruns it on the
	// new primary instead of returning that error.
	watchLog := &writeLog{}
	stopWatch, waitWatch := runWriters(8, "watch", watchLog, func(ctx context.Context, key string) error {
		return eng.WatchRetry(ctx, 3, func(tx *engine.Tx) error {
			if _, err := tx.Read().Get(ctx, key); err != nil && !errors.Is(err, engine.ErrNil) {
				return err
			}
			time.Sleep(20 * time.Millisecond) // the computation between read and write
			tx.Set(key, "v", 0)
			return nil
		}, key)
	})
	defer stopWatch()
	waitCond(t, 10*time.Second, "1,000 Tx and 1,000 Dedicated writes acknowledged", func() bool {
		txLog.mu.Lock()
		dedLog.mu.Lock()
		defer txLog.mu.Unlock()
		defer dedLog.mu.Unlock()
		return len(txLog.acked) >= 1000 && len(dedLog.acked) >= 1000
	})

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
	waitCond(t, 10*time.Second, "the engine follows "+newP.Addr(), func() bool { return eng.Stats().Sentinel.Primary == newP.Addr() })
	// Keep writing half a second on the new primary.
	time.Sleep(500 * time.Millisecond)
	stopTx()
	stopDed()
	stopWatch()
	waitTx(t, 30*time.Second)
	waitDed(t, 30*time.Second)
	waitWatch(t, 30*time.Second)
	final := finalPrimary(t, s, old, nil)
	sst := eng.Stats().Sentinel

	txLost := missingOn(t, final.Addr(), txLog.acked)
	dedLost := missingOn(t, final.Addr(), dedLog.acked)
	t.Logf("Tx: %d acknowledged, %d failed %v, %d lost; Dedicated: %d acknowledged, %d failed %v, %d lost; on the new primary %s; failover events:%s",
		len(txLog.acked), len(txLog.failed), txLog.errs, len(txLost),
		len(dedLog.acked), len(dedLog.failed), dedLog.errs, len(dedLost), final.Addr(), timeline(tap.Events(), start))
	t.Logf("Stats().Sentinel: holds %d, WAITs synced %d, late %d (before: %d, %d); WAITs of the Tx connections %d, of the Dedicated ones %d",
		sst.Holds-before.Holds, sst.SyncedWaits, sst.LateWaits, before.SyncedWaits, before.LateWaits,
		engine.PoolHoldWaits(eng, engine.PoolTx), engine.PoolHoldWaits(eng, engine.PoolDedicated))
	if len(txLost) > 0 {
		t.Errorf("%d of %d acknowledged Tx writes missing on the new primary %s, want 0 (first: %v)",
			len(txLost), len(txLog.acked), final.Addr(), txLost[:min(5, len(txLost))])
	}
	if len(dedLost) > 0 {
		t.Errorf("%d of %d acknowledged Dedicated writes missing on the new primary %s, want 0 (first: %v)",
			len(dedLost), len(dedLog.acked), final.Addr(), dedLost[:min(5, len(dedLost))])
	}
	watchLost := missingOn(t, final.Addr(), watchLog.acked)
	t.Logf("WatchRetry: %d acknowledged, %d failed %v, %d lost", len(watchLog.acked), len(watchLog.failed), watchLog.errs, len(watchLost))
	if len(watchLost) > 0 {
		t.Errorf("%d of %d acknowledged WatchRetry writes missing on the new primary %s, want 0", len(watchLost), len(watchLog.acked), final.Addr())
	}
	if n := watchLog.errCount("not a primary"); n > 0 {
		t.Errorf("%d WatchRetry calls returned ErrNotPrimary (a run held through the switch, nothing sent): want them rerun on the new primary", n)
	}
	if sst.Holds == before.Holds {
		t.Errorf("Stats().Sentinel.Holds did not grow: the failover was not held")
	}
	for _, ded := range []bool{false, true} {
		if open, _ := engine.TxPoolConns(eng, ded); open[old] > 0 {
			t.Errorf("the pool (Dedicated: %v) still holds %d connections to the old primary %s", ded, open[old], old)
		}
	}
	if engine.PoolHoldWaits(eng, engine.PoolTx) == 0 {
		t.Errorf("the Tx connections sent no WAIT at the failover")
	}
	if engine.PoolHoldWaits(eng, engine.PoolDedicated) == 0 {
		t.Errorf("the Dedicated connections sent no WAIT at the failover")
	}
}
