package engine

// Settling a BatchWriter's sent pipelines: acknowledgements, retries and
// redirects, failures reported through OnError, and the counts Flush and
// Write wait on.

import (
	"errors"
	"fmt"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/policies"
)

// shortResult stands for a reply the driver did not return.
var shortResult = valkey.NewErrorResult(actors.ErrShortReply)

// settle sorts a sent batch's results: acknowledged, failed, sent again
// (on this lane, or on the lane of a MOVED or ASK target). It reports whether
// the connection broke.
func (w *BatchWriter) settle(l *writerLane, batch []writerItem, results []valkey.ValkeyResult) (broken bool) {
	var failed []writerItem
	var errs []error
	var again []writerItem            // this lane, front
	var moved map[string][]writerItem // MOVED or ASK target -> commands
	acked := 0
	stopping := w.isStopped()
	ok := l.ok[:0]
	for range batch {
		ok = append(ok, false)
	}
	l.ok = ok
	for i := range batch {
		it := &batch[i] // modified in place: the batch is recycled after
		r := &shortResult
		if i < len(results) {
			r = &results[i]
		}
		err := r.NonValkeyError()
		if err != nil { // transport: the connection is gone
			broken = true
			notSent := policies.NotSent(err)
			if (notSent || w.opts.Idempotent) && int(it.tries) < w.opts.MaxRetries && !stopping {
				it.tries++
				again = append(again, *it)
				continue
			}
			if !notSent {
				err = &policies.OutcomeUnknownError{Cause: err}
				w.e.unknown.Add(1) // for Stats (review-33 F3)
			}
			failed, errs = append(failed, *it), append(errs, err)
			continue
		}
		err = r.Error()
		if err == nil || valkey.IsValkeyNil(err) {
			ok[i] = true
			acked++
			continue
		}
		var ve *valkey.ValkeyError
		if errors.As(err, &ve) && int(it.tries) < w.opts.MaxRetries && !stopping {
			if addr, ok := actors.MovedAddr(ve); ok && w.e.cl != nil {
				w.e.cl.Moved(it.slot, addr)
				it.tries++
				it.flags &^= asking // the new owner: no ASKING (a move, see placeLocked)
				if moved == nil {
					moved = map[string][]writerItem{}
				}
				moved[addr] = append(moved[addr], *it)
				continue
			}
			if addr, ok := actors.AskAddr(ve); ok && w.e.cl != nil {
				it.tries++
				it.flags |= asking
				if moved == nil {
					moved = map[string][]writerItem{}
				}
				moved[addr] = append(moved[addr], *it)
				continue
			}
			if ve.IsLoading() || ve.IsTryAgain() || ve.IsClusterDown() || policies.IsRetryable(err) {
				if w.ranLater(batch, results, i) {
					// A later command of its slot (its key, standalone)
					// in this pipeline ran: sent again, it would run
					// after it (a DEL {t}1 {t}2 refused with TRYAGAIN
					// deleting the SET {t}1 written after it). Not
					// sent again: reported, with its reply (nothing ran).
					failed, errs = append(failed, *it), append(errs, it.replyError(r, err))
					continue
				}
				it.tries++
				again = append(again, *it)
				continue
			}
		}
		failed, errs = append(failed, *it), append(errs, it.replyError(r, err))
	}
	if len(again) > 0 && !broken {
		// A passing refusal: give the server a moment.
		t := time.NewTimer(w.back.Delay(int(again[0].tries) - 1))
		select {
		case <-t.C:
		case <-w.stopCh:
			t.Stop()
		}
	}
	if len(failed) > 0 {
		// Counted before the failures: counting them may release a
		// Flush, whose caller must find this batch in Stats.
		w.mu.Lock()
		w.batches++
		w.mu.Unlock()
	}
	w.finish(batch, failed, errs, nil)
	w.mu.Lock()
	if len(failed) == 0 {
		w.batches++
	}
	w.acked += uint64(acked)
	for i := range batch {
		if ok[i] {
			w.leftLocked(&batch[i])
			w.doneLocked(batch[i].gen)
		}
	}
	late := w.resendLocked(l, again, moved)
	w.roomLocked()
	w.mu.Unlock()
	w.recycle(batch)
	w.finish(late, nil, nil, w.closeCause())
	return broken
}

// replyError is the error OnError reports for it's error reply r (err
// being r's error): the reply's or, for a SET merged into an MSET, the
// MSET's wrapped in an error that says so (the server's text names 'mset',
// a command the caller never sent: "NOPERM this user has no permissions to
// run the 'mset' command"). errors.As still finds the *ServerError.
func (it *writerItem) replyError(r *valkey.ValkeyResult, err error) error {
	err = replyError(r, err)
	if it.flags&inMSet != 0 && err != nil {
		return fmt.Errorf("vactor: batch writer: SET merged into an MSET: %w", err)
	}
	return err
}

// ranLater reports whether a command after batch[i] that shares its slot
// (cluster mode) or its key (standalone) ran, or was redirected (MOVED,
// ASK: it is sent to its target at once, and runs there before batch[i]'s
// resend), results being the batch's replies: sent again, batch[i] would
// run after it. A passing refusal
// (TRYAGAIN, LOADING, ...) normally refuses the slot's or node's every
// command; the exception is a multi-key command whose keys a migration
// split (TRYAGAIN) beside single-key commands the source still serves.
func (w *BatchWriter) ranLater(batch []writerItem, results []valkey.ValkeyResult, i int) bool {
	it := &batch[i]
	for j := i + 1; j < len(batch) && j < len(results); j++ {
		o := &batch[j]
		if w.e.cl != nil && o.slot != it.slot || w.e.cl == nil && o.key != it.key {
			continue
		}
		err := results[j].Error()
		if err == nil || valkey.IsValkeyNil(err) {
			return true
		}
		// Redirected (MOVED, ASK): sent at once to its target, it runs
		// there before this one's resend after the backoff (rv42 F1).
		if ve, ok := valkey.IsValkeyErr(err); ok && w.e.cl != nil {
			if _, moved := actors.MovedAddr(ve); moved {
				return true
			}
			if _, ask := actors.AskAddr(ve); ask {
				return true
			}
		}
	}
	return false
}

// resendLocked queues again at the front of l and each moved command on
// its target's lane; once the writer stops it returns them instead, to be
// failed.
func (w *BatchWriter) resendLocked(l *writerLane, again []writerItem, moved map[string][]writerItem) (late []writerItem) {
	if w.stopping {
		late = append(late, again...)
		for _, items := range moved {
			late = append(late, items...)
		}
		return late
	}
	w.retries += uint64(len(again))
	var gone map[uint16]string // slots MOVED elsewhere -> their new owner
	for addr, items := range moved {
		w.retries += uint64(len(items))
		w.redirects += uint64(len(items))
		for _, it := range items {
			if it.flags&asking == 0 && addr != l.addr {
				if gone == nil {
					gone = map[uint16]string{}
				}
				gone[it.slot] = addr
			}
			w.laneLocked(addr, laneHash(it.key)).pushLocked(it)
		}
	}
	for _, it := range again { // sent here again first: their slot stays
		delete(gone, it.slot)
	}
	l.requeueLocked(again)
	if len(gone) > 0 {
		// What this lane still queues for those slots would get MOVED
		// too: it follows at once, behind what was redirected, so that
		// the slots' new commands go to the new owner (slotRoute) after
		// one round trip rather than after this lane's whole backlog.
		w.moveQueuedLocked(l, func(it *writerItem) string { return gone[it.slot] })
	}
	return nil
}

// moveQueuedLocked moves the commands queued on l for which to returns a
// node other than "" and l's to that node's lanes, in order; the others
// stay, in order.
func (w *BatchWriter) moveQueuedLocked(l *writerLane, to func(it *writerItem) string) {
	q := l.queue[:0]
	for _, c := range l.queue {
		kept := c[:0]
		for i := range c {
			if a := to(&c[i]); a != "" && a != l.addr {
				w.laneLocked(a, laneHash(c[i].key)).pushLocked(c[i])
				continue
			}
			kept = append(kept, c[i])
		}
		clear(c[len(kept):])
		if len(kept) > 0 {
			q = append(q, kept)
		} else if cap(c) == w.opts.BatchSize && len(w.free) < 64 {
			w.free = append(w.free, kept)
		}
	}
	clear(l.queue[len(q):])
	l.queue = q
}

// finish reports failed[i] with errs[i] (or every item of all with err)
// through OnError, then counts them as done.
func (w *BatchWriter) finish(all []writerItem, failed []writerItem, errs []error, err error) {
	if all != nil && err != nil {
		failed = all
		errs = nil
	}
	if len(failed) == 0 {
		return
	}
	// Reported before counted: a Flush that returns saw the callbacks.
	if w.opts.OnError != nil {
		// The goroutine is known to be in OnError (runsHandler) for the
		// calls: a goid per failed batch, on this failure path only.
		g := w.enterOnError()
		w.mu.Lock()
		w.reporting += uint64(len(failed)) // their room, for Writes from OnError (enqueue)
		w.mu.Unlock()
		for i := range failed {
			e := err
			if errs != nil {
				e = errs[i]
			}
			w.report(failed[i].argv(), e)
		}
		w.leaveOnError(g)
	}
	w.mu.Lock()
	if w.opts.OnError != nil {
		w.reporting -= uint64(len(failed))
	}
	w.failed += uint64(len(failed))
	for i := range failed {
		w.leftLocked(&failed[i])
		w.doneLocked(failed[i].gen)
	}
	w.roomLocked()
	w.mu.Unlock()
	if err != nil {
		w.recycle(all)
	}
}

// report calls OnError, recovering a panic: a bug in the callback must
// not take a lane (and with it the writer's accounting, hence every
// Flush) or the program down. The command still counts as failed; the
// panic is counted (Stats.OnErrorPanics) and the writer's first logged
// at error level with the panic's value, never the command.
func (w *BatchWriter) report(cmd []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			w.onErrorPanics.Add(1)
			if w.panicked.CompareAndSwap(false, true) {
				w.e.log.Error(hooks.MsgWriterPanicked, "panic", fmt.Sprint(r),
					"note", "later panics of this writer's OnError are counted (Stats.OnErrorPanics), not logged")
			}
		}
	}()
	w.opts.OnError(cmd, err)
}

// doneLocked counts one command of generation gen as done.
func (w *BatchWriter) doneLocked(gen uint64) {
	if gen == w.gen {
		w.genCount--
		return
	}
	n := w.older[gen] - 1
	if n > 0 {
		w.older[gen] = n
		return
	}
	delete(w.older, gen)
	close(w.flushed)
	w.flushed = make(chan struct{})
}

// roomLocked wakes the Writes waiting for room once there is some.
func (w *BatchWriter) roomLocked() {
	if w.waiting > 0 && w.pendingLocked() < uint64(w.opts.MaxPending) {
		close(w.room)
		w.room = make(chan struct{})
		w.waiting = 0
	}
}

// recycle keeps a sent chunk's storage for the queues.
func (w *BatchWriter) recycle(chunk []writerItem) {
	if cap(chunk) != w.opts.BatchSize {
		return
	}
	clear(chunk)
	w.mu.Lock()
	if len(w.free) < 64 {
		w.free = append(w.free, chunk[:0])
	}
	w.mu.Unlock()
}
