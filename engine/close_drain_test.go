package engine_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// closeDrain is the DrainTimeout of TestCloseDrainTimeoutBoundsClose.
const closeDrain = time.Second

// closeDrainMargin is what Close may take beyond DrainTimeout: failing
// the futures and closing the connections.
const closeDrainMargin = 500 * time.Millisecond

// Close's waits for written commands share one DrainTimeout: with a batch
// writer's pipeline, a Tx and a Dedicated call, and the connection actors'
// (and, in cluster mode, the slot actors' forwarded) commands in flight
// to a stalled server, Close
// returns within DrainTimeout, not within a DrainTimeout for each of
// them in turn.
func TestCloseDrainTimeoutBoundsClose(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		srv := valkeytest.Start(t)
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithDrainTimeout(closeDrain))
		closeDrainStalled(t, eng, func(i int) string { return fmt.Sprintf("cd:%d", i) }, srv.Pause, srv.Resume)
	})
	t.Run("cluster", func(t *testing.T) {
		c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{ReplicasPerPrimary: -1, NodeTimeout: time.Minute})
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		eng := engineOn(t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true).WithDrainTimeout(closeDrain))
		p := c.Primaries()[1]
		tag := keyOn(t, c, p)
		closeDrainStalled(t, eng, func(i int) string { return fmt.Sprintf("{%s}:%d", tag, i) }, p.Pause, p.Resume)
	})
}

// closeDrainStalled opens a batch writer on eng, stalls the server of the
// keys key(i) with pause, puts commands in flight through the writer and
// the engine, and checks that Close takes DrainTimeout (it waits for them)
// and not much more, and that every future is complete when it returns.
func closeDrainStalled(t *testing.T, eng *engine.Engine, key func(int) string, pause, resume func() error) {
	t.Helper()
	ctx := ctxT(t)
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The writer's connection and the engine's, open before the stall.
	if err := w.Set(ctx, key(0), "v", 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := eng.Set(ctx, key(0), "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resume() }()

	// key(0) again: the lane that key goes to has its connection open
	// (another lane would be dialling the stalled server, which Close
	// abandons at once).
	if err := w.Set(ctx, key(0), "v", 0); err != nil {
		t.Fatal(err)
	}
	fs := make([]interface{ IsDone() bool }, 0, 100)
	for i := range 100 {
		fs = append(fs, eng.Set(ctx, key(i), "v", 0))
	}
	// A Tx and a Dedicated call in progress on the stalled server.
	calls := make(chan error, 2)
	tx := eng.Tx()
	txIncr := tx.Incr(key(2))
	go func() { calls <- fmt.Errorf("Tx.Exec: %w", tx.Exec(ctx)) }()
	go func() {
		// DedicatedFor: in cluster mode Dedicated may pick another node.
		calls <- fmt.Errorf("Dedicated: %w", eng.DedicatedFor(ctx, key(3), func(c *engine.DedicatedConn) error {
			_, err := c.Do(ctx, "GET", key(3))
			return err
		}))
	}()
	fs = append(fs, txIncr)
	waitCond(t, 10*time.Second, "the Tx and Dedicated calls on their connections", func() bool {
		tx, _ := poolUsed(eng, engine.PoolTx)
		ded, _ := poolUsed(eng, engine.PoolDedicated)
		return tx >= 1 && ded >= 1
	})
	waitCond(t, 10*time.Second, "the batch writer's pipeline sent to the stalled server", func() bool { return engine.WriterBusy(w) })
	waitCond(t, 10*time.Second, "commands written to the stalled server", func() bool { return eng.Stats().InFlight > 0 })

	start := time.Now()
	closeErr := eng.Close()
	took := time.Since(start)
	pending := 0
	for _, f := range fs {
		if !f.IsDone() {
			pending++
		}
	}
	if pending > 0 {
		t.Fatalf("Close returned (%s, err %v) with %d of %d futures pending", took, closeErr, pending, len(fs))
	}
	if closeErr == nil || errors.Is(closeErr, engine.ErrClosed) {
		t.Errorf("Close: %v, want the error that in-flight commands were failed", closeErr)
	}
	if st := w.Stats(); st.Pending > 0 {
		t.Errorf("the batch writer holds %d commands after Close (%s)", st.Pending, st)
	}
	for range 2 {
		select {
		case err := <-calls:
			if errors.Unwrap(err) == nil {
				t.Errorf("%v: succeeded against the stalled server", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a Tx or Dedicated call still runs 5 s after Close returned")
		}
	}
	t.Logf("Close took %s with DrainTimeout %s (err %v)", took, closeDrain, closeErr)
	if took < closeDrain-100*time.Millisecond {
		t.Errorf("Close took %s with commands in flight, want the DrainTimeout (%s): it did not wait for them", took, closeDrain)
	}
	if took > closeDrain+closeDrainMargin {
		t.Errorf("Close took %s with DrainTimeout %s, want at most %s: its drains waited one after another", took, closeDrain, closeDrain+closeDrainMargin)
	}
	if err := resume(); err != nil {
		t.Fatal(err)
	}
}
