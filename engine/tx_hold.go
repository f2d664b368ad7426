package engine

// The pooled connections of Tx, Watch and Dedicated (txConns) during a
// held sentinel failover (sentinel.hold), held as the connection actors
// and the batch writer's lanes are: each connection to the primary that
// acknowledged writes not known to be on the replicas sends WAIT
// (sentinel.waitReplicas, the actors' policy, counted with theirs) before
// a replica is promoted:
//
//   - an idle one when the hold starts (or is renewed: again if the
//     replicas fell short), taken out of the pool meanwhile;
//   - a lent one when it is given back while held (on a goroutine: the
//     caller does not wait), or before its next round trip while held
//     (Dedicated, Watch's reads and EXEC), which then waits for the hold's
//     end and fails unsent if the primary changed meanwhile (the switch
//     closed the connection).
//
// Outside a hold the cost is one atomic load per connection given back
// and per round trip of Dedicated and Watch.

import (
	"context"
	"fmt"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
)

// holdSync runs on the sentinel actor when a failover of the primary is
// held (or its hold renewed): the idle connections to the primary that
// are due a WAIT for this call of hold leave the idle list and send it,
// each on a goroutine of its own (the pool's Close waits for them), then
// go back (give: kept while their node is the primary, closed after the
// switch). It does not block.
func (p *txConns) holdSync(sn *sentinel) {
	addr := sn.primary() // the old primary until the switch
	seq := sn.holdSeq.Load()
	p.mu.Lock()
	if p.e == nil || p.closed {
		p.mu.Unlock()
		return
	}
	l := p.idle[addr]
	var due []*trackedConn
	kept := l[:0]
	for _, c := range l {
		if t, ok := c.(*trackedConn); ok && t.dirty && t.seq != seq {
			due = append(due, t)
			continue
		}
		kept = append(kept, c)
	}
	clear(l[len(kept):])
	if len(l) > 0 {
		p.idle[addr] = kept
	}
	p.ops.Add(len(due))
	p.mu.Unlock()
	for _, t := range due {
		go func() {
			defer p.ops.Done()
			p.syncPut(sn, addr, t)
		}()
	}
}

// syncPut sends WAIT on t, a connection to addr out of the pool, while a
// hold is due one (again when the hold is renewed meanwhile and the
// replicas fell short), then gives it back.
func (p *txConns) syncPut(sn *sentinel, addr string, t *trackedConn) {
	for t.dirty && sn.heldCh.Load() != nil && addr == sn.primary() {
		seq := sn.holdSeq.Load()
		if t.seq == seq {
			break
		}
		t.seq = seq
		synced, err := sn.waitReplicas(context.Background(), t)
		p.holdWaits.Add(1)
		if synced {
			t.dirty = false
		} else if _, reply := valkey.IsValkeyErr(err); err != nil && !reply {
			p.give(addr, t, false) // the connection failed
			return
		}
	}
	p.give(addr, t, true)
}

// returned is put's part for a held failover: conn, given back healthy
// by its borrower, acknowledged writes (it is marked so); while a failover
// of addr is held and conn has not sent WAIT for this call of hold, it
// sends WAIT on a goroutine (syncPut) and returned reports true: the
// borrower does not wait for it. One atomic load outside a hold.
func (p *txConns) returned(addr string, conn drivers.ValkeyConn) bool {
	t, ok := conn.(*trackedConn)
	if !ok {
		return false
	}
	t.dirty = true
	sn := t.sn
	if sn.heldCh.Load() == nil || t.seq == sn.holdSeq.Load() || addr != sn.primary() {
		return false
	}
	if p.enter() != nil {
		return false // the pool closed: put closes conn
	}
	go func() {
		defer p.leave()
		p.syncPut(sn, addr, t)
	}()
	return true
}

// holdLent returns at once unless a failover of the primary is held.
// Then conn, lent to a Dedicated call or a Watch and about to send a
// round trip to addr, sends WAIT first when it is due one (used: it was
// sent commands during this loan; or it was dirty when lent), and waits
// for the hold's end (the switch, the abort) or ctx's. After a switch
// conn reaches a former primary: it returns an error matching
// ErrNotPrimary, and nothing is sent. One atomic load outside a hold.
func (p *txConns) holdLent(ctx context.Context, conn drivers.ValkeyConn, addr string, used bool) error {
	sn := p.e.sn
	if sn == nil || sn.heldCh.Load() == nil {
		return nil
	}
	t, ok := conn.(*trackedConn)
	if !ok {
		return nil
	}
	if used {
		t.dirty = true
	}
	waited := false
	for {
		sn.mu.Lock()
		held, renewed := sn.held, sn.renewed
		sn.mu.Unlock()
		if held == nil {
			break
		}
		waited = true
		// hold bumps holdSeq before it closes renewed: a renewal after
		// this load wakes the select below.
		if seq := sn.holdSeq.Load(); t.dirty && t.seq != seq && addr == sn.primary() {
			t.seq = seq
			synced, _ := sn.waitReplicas(ctx, t)
			p.holdWaits.Add(1)
			if synced {
				t.dirty = false
			}
		}
		select {
		case <-held:
		case <-renewed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if now := sn.primary(); waited && now != addr {
		return fmt.Errorf("%w: the primary changed from %s to %s while this connection's call was held; nothing was sent on it", ErrNotPrimary, addr, now)
	}
	return nil
}
