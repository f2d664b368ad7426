package engine

// A BatchWriter lane's goroutine: the write loop that sends each chunk as
// one pipeline (merging plain SETs into MSETs) on the lane's connection.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
)

// run is the lane's goroutine: it takes one chunk at a time and sends it
// as one pipeline, until the writer stops (or its node is retired: see
// retireLocked) and the queue is empty.
func (l *writerLane) run() {
	w := l.w
	defer w.wg.Done()
	defer l.closeConn()
	cmds := make([]valkey.Completed, 0, w.opts.BatchSize)
	var idx []int                    // batch item -> its command in cmds
	var picked []valkey.ValkeyResult // results without the ASKING replies
	var mset []string                // an MSET's arguments, reused
	var down time.Time               // when the connection first failed, zero while up
	failures := 0                    // consecutive failed dials
	for {
		w.mu.Lock()
		for len(l.queue) == 0 && !w.stopping && !l.retired && !l.syncDue() {
			l.idle = true
			if w.e.cl != nil {
				// Idle now: if the node is no longer a primary (it
				// failed over while this lane was busy), its lanes end.
				w.retireLocked()
				if l.retired {
					break
				}
			}
			l.cond.Wait()
		}
		if len(l.queue) == 0 {
			if w.stopping || l.retired { // nothing left
				w.mu.Unlock()
				return
			}
			// A failover is held and this idle lane's last writes
			// may not be on the replicas yet: WAIT, then wait.
			l.idle = false
			w.mu.Unlock()
			l.holdOn()
			continue
		}
		batch := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		stopping := w.stopping
		w.mu.Unlock()
		if stopping { // stop fails what is queued; this is a straggler
			w.finish(batch, nil, nil, w.closeCause())
			continue
		}

		conn, err := l.connect(failures)
		if err != nil {
			if down.IsZero() {
				down = time.Now()
			}
			failures++
			if time.Since(down) >= w.opts.RetryTimeout {
				// Give up on everything this lane holds.
				w.mu.Lock()
				rest := l.queue
				l.queue = nil
				w.mu.Unlock()
				w.finish(batch, nil, nil, err)
				for _, c := range rest {
					w.finish(c, nil, nil, err)
				}
				down, failures = time.Time{}, 0
				continue
			}
			w.mu.Lock()
			late := w.rerouteLocked(l, batch)
			w.mu.Unlock()
			w.finish(late, nil, nil, w.closeCause())
			continue
		}
		down, failures = time.Time{}, 0
		if w.holding() {
			// A failover of the primary is held (sentinel mode): the
			// batch goes back to the front of the lane until it ends.
			w.mu.Lock()
			late := w.rerouteLocked(l, batch)
			w.mu.Unlock()
			w.finish(late, nil, nil, w.closeCause())
			l.holdOn()
			continue
		}

		cmds = cmds[:0]
		idx = idx[:0]
		merged := false
		for i := 0; i < len(batch); i++ {
			it := &batch[i]
			if n := w.setRun(batch[i:]); n >= 2 && (i+n == len(batch) || w.msetOK.Load()) {
				// Consecutive plain SETs: one MSET, same order.
				mset = mset[:0]
				for k := i; k < i+n; k++ {
					mset = append(mset, batch[k].key, batch[k].val)
					batch[k].cmd = valkey.Completed{}
					batch[k].flags |= inMSet
				}
				cmds = append(cmds, w.e.b.Arbitrary("MSET").Args(mset...).Build())
				for range n {
					idx = append(idx, len(cmds)-1)
				}
				clear(mset)
				i += n - 1
				merged = true
				continue
			}
			it.flags &^= inMSet // sent as itself this time
			if it.flags&asking != 0 {
				// Kept on the item: sent again after a passing refusal
				// (TRYAGAIN, LOADING) or a lost write, it goes to the
				// importing node with ASKING again (see asking).
				cmds = append(cmds, w.e.b.Asking().Build())
			}
			if it.cmd.IsEmpty() {
				it.cmd = w.build(it)
			}
			cmds = append(cmds, it.cmd)
			idx = append(idx, len(cmds)-1)
			// valkey-go recycles answered commands: the parts stay.
			it.cmd = valkey.Completed{}
		}
		results := conn.DoMulti(context.Background(), cmds...)
		l.dirty = true // a WAIT is due at the next held failover
		clear(cmds)
		if len(cmds) != len(batch) { // drop the ASKING replies
			picked = picked[:0]
			for _, j := range idx {
				r := shortResult
				if j < len(results) {
					r = results[j]
				}
				picked = append(picked, r)
			}
			results = picked
		}
		if merged {
			if batch, results = w.msetRefused(l, batch, results, idx); len(batch) == 0 {
				continue
			}
		}
		if broken := w.settle(l, batch, results); broken {
			l.closeConn()
		}
	}
}

// maxMSet is the most SETs merged into one MSET.
const maxMSet = 128

// setRun returns how many items at the start of items are plain SETs
// that may be merged into one MSET (standalone mode only).
func (w *BatchWriter) setRun(items []writerItem) int {
	if w.e.cl != nil || w.noMSet.Load() {
		return 0
	}
	n := 0
	for n < len(items) && n < maxMSet {
		it := &items[n]
		if it.name != "SET" || it.flags&^inMSet != hasKey|hasVal || it.args != nil || !it.cmd.IsEmpty() {
			break
		}
		n++
	}
	return n
}

// msetRefused handles a server that refuses MSET (NOPERM, or a renamed
// command): merging stops, and the SETs of the refused MSETs go back to
// the front of the lane to be sent as SETs (they did not run). It returns
// the rest of the batch with their results.
func (w *BatchWriter) msetRefused(l *writerLane, batch []writerItem, results []valkey.ValkeyResult, idx []int) ([]writerItem, []valkey.ValkeyResult) {
	refused := func(i int) bool {
		inMSet := i < len(idx) && ((i > 0 && idx[i-1] == idx[i]) || (i+1 < len(idx) && idx[i+1] == idx[i]))
		if !inMSet || i >= len(results) {
			return false
		}
		err := results[i].Error()
		ve, ok := valkey.IsValkeyErr(err)
		return ok && (strings.HasPrefix(ve.Error(), "NOPERM") || strings.Contains(ve.Error(), "unknown command"))
	}
	found := false
	for i := range batch {
		if refused(i) {
			found = true
			break
		}
	}
	if !found {
		if !w.msetOK.Load() {
			for i := range batch {
				inMSet := i < len(idx) && ((i > 0 && idx[i-1] == idx[i]) || (i+1 < len(idx) && idx[i+1] == idx[i]))
				if inMSet && i < len(results) && results[i].Error() == nil {
					w.msetOK.Store(true) // merging is safe anywhere now
					break
				}
			}
		}
		return batch, results
	}
	w.noMSet.Store(true)
	var keep []writerItem
	var keepRes []valkey.ValkeyResult
	var again []writerItem
	for i := range batch {
		// A refused SET sent again would land after a later command of
		// its key that ran in this pipeline (an MSET merged mid-pipeline
		// once msetOK, then refused after an ACL change: rv42 F3): it is
		// left to settle, which reports it with the refusal (it did not
		// run), as ranLater's commands are.
		if refused(i) && !w.ranLater(batch, results, i) {
			again = append(again, batch[i])
			continue
		}
		keep = append(keep, batch[i])
		keepRes = append(keepRes, results[i])
	}
	w.mu.Lock()
	if len(keep) == 0 {
		// Nothing left for settle, which counts the pipelines: this
		// one was sent all the same.
		w.batches++
	}
	l.requeueLocked(again)
	w.mu.Unlock()
	return keep, keepRes
}

// rerouteLocked puts batch, not sent because l's node did not answer,
// back at the front of l; in cluster mode the commands whose slot has a
// new owner (after a failover) go to that owner's lanes instead. Once the
// writer stops it returns the batch, to be failed.
func (w *BatchWriter) rerouteLocked(l *writerLane, batch []writerItem) (late []writerItem) {
	if w.stopping {
		return batch
	}
	if w.e.cl == nil {
		l.queue = append([][]writerItem{batch}, l.queue...)
		return nil
	}
	w.e.cl.Stale(batch[0].slot)
	owners := map[uint16]string{} // one answer per slot: a key's commands move together
	owner := func(it *writerItem) string {
		a, ok := owners[it.slot]
		if !ok {
			a, _ = w.e.cl.Owner(it.slot)
			owners[it.slot] = a
		}
		return a
	}
	var stay []writerItem
	for i := range batch {
		if addr := owner(&batch[i]); addr != "" && addr != l.addr {
			w.laneLocked(addr, laneHash(batch[i].key)).pushLocked(batch[i])
			continue
		}
		stay = append(stay, batch[i])
	}
	// What the lane queues behind the batch for a slot with a new owner
	// follows it there, in order (see slotRoute).
	w.moveQueuedLocked(l, owner)
	l.requeueLocked(stay)
	return nil
}

// connect returns the lane's connection, dialling one (after a backoff
// when the previous dials failed) that answers PING without LOADING.
func (l *writerLane) connect(failures int) (drivers.ValkeyConn, error) {
	l.connMu.Lock()
	conn := l.conn
	l.connMu.Unlock()
	if conn != nil {
		return conn, nil
	}
	w := l.w
	if failures > 0 {
		t := time.NewTimer(w.back.Delay(failures - 1))
		select {
		case <-t.C:
		case <-w.stopCh:
			t.Stop()
			return nil, w.closeCause()
		}
	}
	// While a failover is held, dial once it ended: the new primary.
	l.holdOn()
	if w.isStopped() {
		return nil, w.closeCause()
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.e.cfg.DialTimeout)
	defer cancel()
	go func() { // stop ends a dial in progress
		select {
		case <-w.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	addr := l.addr
	if w.e.sn != nil {
		addr = w.e.sn.primary() // the primary may have changed since
	}
	conn, err := w.e.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if err := conn.Do(ctx, conn.B().Ping().Build()).Error(); err != nil && !actors.PingRefused(err) {
		_ = conn.Close()
		return nil, fmt.Errorf("vactor: batch writer: connect to %s: %w", addr, mapError(err))
	}
	l.connMu.Lock()
	if w.isStopped() { // stop already closed the lane's connection
		l.connMu.Unlock()
		_ = conn.Close()
		return nil, w.closeCause()
	}
	l.conn, l.connAddr = conn, addr
	l.connMu.Unlock()
	l.dirty = false
	w.mu.Lock()
	w.reconnect++
	w.mu.Unlock()
	return conn, nil
}

func (w *BatchWriter) isStopped() bool {
	select {
	case <-w.stopCh:
		return true
	default:
		return false
	}
}

func (l *writerLane) closeConn() {
	l.connMu.Lock()
	c := l.conn
	l.conn = nil
	l.connMu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}
