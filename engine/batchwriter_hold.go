package engine

// A BatchWriter's lanes during a held sentinel failover (sentinel.hold):
// they send nothing to the primary, and each lane whose connection has
// acknowledged writes not yet known to be on the replicas sends WAIT, as
// the connection actors do (actors.ConnState.SyncReplicas), so that those
// writes reach the replicas before one is promoted.

import (
	"context"

	"github.com/valkey-io/valkey-go"
)

// holdWriters wakes the lanes of the engine's batch writers when a
// failover of the primary is held (or its hold renewed): idle lanes with
// writes to sync send WAIT, lanes already waiting for the hold's end send
// it again if the replicas fell short before. It does not block (each
// writer's lock is taken briefly): it runs on the sentinel actor.
func (e *Engine) holdWriters() {
	e.svc.mu.Lock()
	var ws []*BatchWriter
	for s := range e.svc.set {
		if w, ok := s.(*BatchWriter); ok {
			ws = append(ws, w)
		}
	}
	e.svc.mu.Unlock()
	for _, w := range ws {
		w.held()
	}
}

// held wakes w's lanes for a hold (see holdWriters).
func (w *BatchWriter) held() {
	w.mu.Lock()
	close(w.nudge)
	w.nudge = make(chan struct{})
	for _, n := range w.nodes {
		for _, l := range n.lanes {
			l.cond.Signal()
		}
	}
	w.mu.Unlock()
}

// holding reports whether a failover of the primary is held now: the
// lane's one check per pipeline (an atomic load in sentinel mode).
func (w *BatchWriter) holding() bool {
	sn := w.e.sn
	return sn != nil && sn.heldCh.Load() != nil
}

// syncDue reports whether the idle lane must wake to send WAIT: a
// failover is held, the lane's connection acknowledged writes not known
// to be replicated, and it has not sent WAIT for this call of hold yet.
// Called with w.mu held, on the lane's goroutine.
func (l *writerLane) syncDue() bool {
	if !l.dirty {
		return false
	}
	sn := l.w.e.sn
	return sn != nil && sn.heldCh.Load() != nil && sn.holdSeq.Load() != l.synced
}

// holdOn returns at once unless a failover of the primary is held. Then
// the lane sends WAIT on its connection if it has writes to sync (again
// if the hold is renewed and the replicas fell short), and waits until
// the hold ends (the switch, the abort, or the hold's limit: the
// primary's failover-timeout plus 1 s, sentinelHoldLimit at most) or the
// writer stops. After a switch the lane's connection reaches the old
// primary: it is dropped (the engine closed it too), so that the next
// pipeline dials the new one. Runs on the lane's goroutine, holding no
// lock.
func (l *writerLane) holdOn() {
	w := l.w
	sn := w.e.sn
	if sn == nil {
		return
	}
	waited := false
	for {
		p := sn.heldCh.Load()
		if p == nil {
			break
		}
		waited = true
		w.mu.Lock()
		nudge := w.nudge
		w.mu.Unlock()
		// hold bumps holdSeq before it closes the nudge channel: a renewal
		// after this load wakes the select below.
		if seq := sn.holdSeq.Load(); l.dirty && l.synced != seq {
			l.synced = seq
			l.syncReplicas(sn)
		}
		select {
		case <-*p:
		case <-nudge:
		case <-w.stopCh:
			return
		}
	}
	if !waited {
		return
	}
	l.connMu.Lock()
	conn, addr := l.conn, l.connAddr
	l.connMu.Unlock()
	if conn != nil && addr != sn.primary() {
		l.closeConn()
	}
}

// syncReplicas sends WAIT on the lane's connection for the replicas of
// the hold, as the connection actors do (sentinel.waitReplicas: the same
// bounds, counted in Stats().Sentinel with theirs); when every replica
// acknowledged, the lane's writes are known to be replicated.
func (l *writerLane) syncReplicas(sn *sentinel) {
	l.connMu.Lock()
	conn := l.conn
	l.connMu.Unlock()
	if conn == nil {
		l.dirty = false // closed under its writes: nothing to wait for
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // stop ends the wait: the connection carries nothing else
		select {
		case <-l.w.stopCh:
			cancel()
			l.closeConn()
		case <-ctx.Done():
		}
	}()
	synced, err := sn.waitReplicas(ctx, conn)
	l.w.holdWaits.Add(1)
	if synced {
		l.dirty = false
		return
	}
	if _, reply := valkey.IsValkeyErr(err); err != nil && !reply {
		l.closeConn() // the connection failed: the next pipeline dials again
	}
}
