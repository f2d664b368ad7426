package engine

// Queueing a BatchWriter's commands: the queued item, routing by slot and
// key to a node's lanes, and the lanes' queues.

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers"
)

// writerItem is one queued command: its parts, from which the lane builds
// the valkey-go command when it sends it (built commands go back to
// valkey-go's pool once answered, so the parts are kept for reporting a
// failure and for sending again).
type writerItem struct {
	cmd   valkey.Completed // built at Write in cluster mode (for the slot); zero once sent
	name  string
	key   string   // when hasKey
	val   string   // when hasVal: the one argument after the key (SET's value, ...)
	args  []string // the further arguments; owned by the item
	flags uint8
	slot  uint16 // cluster mode
	tries int32
	gen   uint64
	lane  uint8 // cluster mode: its lane's index on every node (see slotRoute)
	// Cluster mode: the node whose lane holds it, queued or in flight
	// ("" before it is queued and once it is done).
	at string
}

const (
	hasKey uint8 = 1 << iota
	hasVal
	// asking: send ASKING first (an ASK redirect; cluster mode). It stays
	// until the command is done or MOVED: a resend after a passing refusal
	// of the importing node (TRYAGAIN for a multi-key command whose keys
	// are not all there yet, LOADING) or a lost write goes there with
	// ASKING again. Without it the importing node answered MOVED back to
	// the source, which answered ASK again, each hop a try (rv42 aside).
	asking
	// inMSet: the item went out in an MSET the last time it was sent
	// (standalone mode); an error reply is then the MSET's, reported as
	// such (writerItem.replyError).
	inMSet
)

// build returns the command of it, from valkey-go's pool.
func (w *BatchWriter) build(it *writerItem) valkey.Completed {
	b := w.e.b
	if w.e.cl == nil {
		// Standalone: nothing routes by slot, so skip valkey-go's CRC16 of
		// every key (Keys computes it): ~8% of the writer's CPU.
		a := b.Arbitrary(it.name)
		if it.flags&hasKey != 0 {
			a = a.Args(it.key)
		}
		if it.flags&hasVal != 0 {
			a = a.Args(it.val)
		}
		return a.Args(it.args...).Build()
	}
	switch {
	case it.flags == hasKey|hasVal && it.args == nil && it.name == "SET":
		return b.Set().Key(it.key).Value(it.val).Build()
	case it.flags&hasKey == 0:
		return b.Arbitrary(it.name).Args(it.args...).Build()
	case it.flags&hasVal != 0:
		return b.Arbitrary(it.name).Keys(it.key).Args(it.val).Args(it.args...).Build()
	default:
		return b.Arbitrary(it.name).Keys(it.key).Args(it.args...).Build()
	}
}

// argv returns the command line of it, for OnError.
func (it *writerItem) argv() []string {
	s := make([]string, 0, 3+len(it.args))
	s = append(s, it.name)
	if it.flags&hasKey != 0 {
		s = append(s, it.key)
	}
	if it.flags&hasVal != 0 {
		s = append(s, it.val)
	}
	return append(s, it.args...)
}

// writerNode is one node's connections.
type writerNode struct {
	addr  string
	lanes []*writerLane
}

// writerLane is one dedicated connection with its queue and goroutine.
// Its fields but conn are guarded by BatchWriter.mu; conn is the
// goroutine's own (closeConn may close it from stop).
type writerLane struct {
	w     *BatchWriter
	addr  string
	queue [][]writerItem // chunks of up to BatchSize commands, in order
	cond  *sync.Cond
	idle  bool
	// retired is set when the lane's node left the slot map (cluster
	// mode): the idle lane's goroutine ends and closes its connection.
	retired bool
	ok      []bool // per batch: acknowledged; the lane goroutine's own
	// dirty: the connection acknowledged writes not known to be on the
	// replicas (sentinel mode: WAIT at a held failover); synced: the
	// hold (sentinel.holdSeq) it last sent WAIT for. The lane
	// goroutine's own.
	dirty  bool
	synced uint64

	connMu   sync.Mutex
	conn     drivers.ValkeyConn
	connAddr string // the address conn was dialled to
}

// enqueue queues it, routed by its key, waiting for room under Block.
func (w *BatchWriter) enqueue(ctx context.Context, it writerItem) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	addr := ""
	if w.e.cl != nil {
		// Build now for the slot (valkey-go's hashing); sent as is first.
		it.cmd = w.build(&it)
		it.slot = it.cmd.Slot() & (actors.Slots - 1)
		a, err := w.owner(ctx, it.slot)
		if err != nil {
			return err
		}
		addr = a
	}
	h := laneHash(it.key)
	fromOnError := -1 // unknown: looked up only when full
	w.mu.Lock()
	for {
		if w.closed {
			w.mu.Unlock()
			return errWriterClosed
		}
		pending := w.pendingLocked()
		if pending < uint64(w.opts.MaxPending) {
			break
		}
		if fromOnError < 0 {
			fromOnError = 0
			if w.calledFromOnError() {
				fromOnError = 1
			}
		}
		// From OnError: never wait (the room may depend on the callback's
		// own lane), but use the room of the failed commands being
		// reported, so that a callback's retry of its command fits.
		if fromOnError == 1 && pending-w.reporting < uint64(w.opts.MaxPending) {
			break
		}
		if w.opts.Backpressure == config.BackpressureReject || fromOnError == 1 {
			w.rejected++
			w.mu.Unlock()
			return ErrBackpressure
		}
		room := w.room
		w.waiting++
		w.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
		w.mu.Lock()
	}
	if w.written == 0 {
		w.start = time.Now()
		w.lastAt = w.start
	}
	w.written++
	w.genCount++
	it.gen = w.gen
	if w.e.cl != nil {
		// Behind the slot's commands still pending, wherever the slot
		// map says it is now (see slotRoute).
		it.lane = uint8(h % uint32(w.opts.ConnsPerNode))
		if r := w.routeLocked(&it); r.n == 0 && r.away == 0 {
			w.pointLocked(r, addr) // nothing of it pending: the map decides
		} else {
			addr = w.nodeNames[r.node]
		}
	}
	w.laneLocked(addr, h).pushLocked(it)
	w.mu.Unlock()
	return nil
}

// slotRoute keeps one key's commands in order across a slot move
// (cluster mode): while commands of a slot are pending on one of a node's
// lanes, the new commands of that slot and lane index go to that same
// node, whatever the slot map says now, and so reach the new owner after
// them, by the same redirect (MOVED, ASK, or a reroute after failed
// dials), not before. Without it a write made once the map had changed
// went straight to the new owner, ahead of earlier writes of its key
// still queued for the old one (qa-BD F1: an RPUSH landing before the
// RPUSHes written before it; a SET overwritten by an older one).
// Per slot and lane index (a key's lane has the same index on every
// node), so that pending commands of other lanes do not hold a lane's
// route: a MOVED moves what the lane queues for the slot at once
// (moveQueuedLocked), and its new commands then go to the new owner after
// one round trip even when the slot is written without a pause.
//
// Kept in a table per lane index with one entry per slot (12 B: 192 KiB
// per lane index in use, made on its first command), not in a map: a
// map entry made and dropped as each slot went from idle to pending and
// back cost the writer ~0.3-0.45 µs of CPU per SET over a 100,000-key
// space (qa-BD's first version, BenchmarkZZClusterWriter, throwaway).
// The entry holds no pointer (the node is a number: see nodeNames), so
// the GC does not scan the tables; with the address's string it was 24 B
// and scanned.
type slotRoute struct {
	node uint32 // the node new commands go to while any is pending: its index in nodeNames
	n    int32  // commands pending on node's lane
	away int32  // commands pending elsewhere, moved from node (per node in moves)
}

// slotMoves is what a route with commands moved away from it keeps, in
// a map (moves are rare): how many are pending on each other node, and
// the node of the latest move that was not an ASK.
type slotMoves struct {
	away map[string]int32
	last string
}

// routeLocked returns the route of it's slot and lane index.
func (w *BatchWriter) routeLocked(it *writerItem) *slotRoute {
	if w.routes == nil {
		w.routes = make([][]slotRoute, w.opts.ConnsPerNode)
		w.nodeNames = []string{""} // 0: a route never pointed
		w.nodeIDs = map[string]uint32{}
	}
	rs := w.routes[it.lane]
	if rs == nil {
		rs = make([]slotRoute, actors.Slots)
		w.routes[it.lane] = rs
	}
	return &rs[it.slot]
}

// pointLocked points r at addr, numbering addr on its first use. The
// numbers are never reused: nodeNames grows by one address per node a
// route ever pointed at (a few per failover), not per command.
func (w *BatchWriter) pointLocked(r *slotRoute, addr string) {
	if w.nodeNames[r.node] == addr {
		return
	}
	id, ok := w.nodeIDs[addr]
	if !ok {
		id = uint32(len(w.nodeNames))
		w.nodeNames = append(w.nodeNames, addr)
		w.nodeIDs[addr] = id
	}
	r.node = id
}

// movesLocked returns the moves of it's route, made if need be.
func (w *BatchWriter) movesLocked(it *writerItem) *slotMoves {
	k := uint32(it.slot)<<8 | uint32(it.lane)
	m := w.moves[k]
	if m == nil {
		if w.moves == nil {
			w.moves = map[uint32]*slotMoves{}
		}
		m = &slotMoves{away: map[string]int32{}}
		w.moves[k] = m
	}
	return m
}

// placeLocked records that it is now on a lane of addr (cluster mode):
// a new command, or one redirected there.
func (w *BatchWriter) placeLocked(it *writerItem, addr string) {
	if it.at == addr {
		return
	}
	r := w.routeLocked(it)
	if it.at != "" {
		w.removeLocked(it, r)
		if it.flags&asking == 0 {
			w.movesLocked(it).last = addr // moved there (MOVED, a reroute): not an ASK
		}
	}
	if addr == w.nodeNames[r.node] {
		r.n++
	} else {
		r.away++
		w.movesLocked(it).away[addr]++
	}
	it.at = addr
	w.tidyLocked(it, r)
}

// leftLocked records that it is done (acknowledged or failed).
func (w *BatchWriter) leftLocked(it *writerItem) {
	if it.at == "" {
		return
	}
	r := w.routeLocked(it)
	w.removeLocked(it, r)
	w.tidyLocked(it, r)
	it.at = ""
}

// removeLocked uncounts it from where it is pending.
func (w *BatchWriter) removeLocked(it *writerItem, r *slotRoute) {
	if it.at == w.nodeNames[r.node] {
		r.n--
		return
	}
	r.away--
	m := w.movesLocked(it)
	if m.away[it.at]--; m.away[it.at] <= 0 {
		delete(m.away, it.at)
	}
}

// tidyLocked moves r to where its commands were moved (MOVED, a reroute)
// once none is left on its node: new commands then follow them. Commands
// an ASK sent to a slot's importing node leave the route on the owner,
// which sends new commands of a migrated key after them, by the same ASK.
// Once nothing of r is pending, the slot map decides again (enqueue).
func (w *BatchWriter) tidyLocked(it *writerItem, r *slotRoute) {
	if r.n > 0 {
		return
	}
	k := uint32(it.slot)<<8 | uint32(it.lane)
	if r.away == 0 {
		if len(w.moves) > 0 {
			delete(w.moves, k)
		}
		return
	}
	m := w.moves[k]
	if m == nil {
		return
	}
	if n := m.away[m.last]; n > 0 {
		w.pointLocked(r, m.last)
		r.n, r.away = n, r.away-n
		delete(m.away, m.last)
	}
}

// owner returns the primary serving slot. While no node serves it (a
// failover in progress) it waits, re-reading the slot map with backoff,
// until one does, ctx ends, the writer closes or RetryTimeout passes.
func (w *BatchWriter) owner(ctx context.Context, slot uint16) (string, error) {
	addr, err := w.e.cl.Owner(slot)
	if err == nil {
		return addr, nil
	}
	deadline := time.Now().Add(w.opts.RetryTimeout)
	for i := 0; time.Now().Before(deadline); i++ {
		t := time.NewTimer(w.back.Delay(i))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		case <-w.stopCh:
			t.Stop()
			return "", w.closeCause()
		}
		if addr, err = w.e.cl.Owner(slot); err == nil {
			return addr, nil
		}
	}
	return "", err
}

func (w *BatchWriter) pendingLocked() uint64 { return w.written - w.acked - w.failed }

// laneLocked returns the lane for key hash h on addr ("" in standalone mode),
// starting the node's lanes on first use.
func (w *BatchWriter) laneLocked(addr string, h uint32) *writerLane {
	n := w.single
	if w.e.cl != nil {
		n = w.nodes[addr]
	}
	if n == nil {
		if w.e.cl == nil {
			addr, _ = w.e.addrOf("") // the only node: never fails
		}
		n = &writerNode{addr: addr}
		for range w.opts.ConnsPerNode {
			l := &writerLane{w: w, addr: addr}
			l.cond = sync.NewCond(&w.mu)
			n.lanes = append(n.lanes, l)
			w.wg.Add(1)
			go l.run()
		}
		if w.e.cl == nil {
			w.single = n
		} else {
			w.retireLocked()
		}
		w.nodes[addr] = n
	}
	return n.lanes[h%uint32(len(n.lanes))]
}

// retireLocked stops the idle lanes of the nodes that are no longer a
// primary in the slot map (cluster mode), so that a writer living through
// failovers and nodes replaced at new addresses keeps lanes, goroutines
// and connections for the current primaries only, not for every address
// it ever wrote to. It runs when a node gets its lanes (the primaries
// changed) and when a lane goes idle (a node busy at the change is
// retired once its lanes have rerouted what they held).
func (w *BatchWriter) retireLocked() {
	t := w.e.cl.topo.Load()
	if t == nil {
		return
	}
	for addr, n := range w.nodes {
		if isPrimary(t, addr) || !n.idleLocked() {
			continue
		}
		delete(w.nodes, addr)
		for _, l := range n.lanes {
			l.retired = true
			l.cond.Signal()
		}
	}
}

// isPrimary reports whether addr is a primary in t.
func isPrimary(t *actors.Topology, addr string) bool {
	for i := range t.Shards {
		if t.Shards[i].Primary == addr {
			return true
		}
	}
	return false
}

// idleLocked reports whether every lane of n waits for work.
func (n *writerNode) idleLocked() bool {
	for _, l := range n.lanes {
		if !l.idle || len(l.queue) > 0 {
			return false
		}
	}
	return true
}

// laneHash spreads keys over a node's lanes.
func laneHash(key string) uint32 {
	return uint32(maphash.String(laneSeed, key))
}

// laneSeed is fixed for the process: a key always maps to the same lane.
var laneSeed = maphash.MakeSeed()

// pushLocked appends it to the lane's queue and wakes the lane.
func (l *writerLane) pushLocked(it writerItem) {
	w := l.w
	if w.e.cl != nil {
		w.placeLocked(&it, l.addr)
	}
	q := l.queue
	if len(q) == 0 || len(q[len(q)-1]) == w.opts.BatchSize {
		var c []writerItem
		if n := len(w.free); n > 0 {
			c, w.free = w.free[n-1], w.free[:n-1]
		} else {
			c = make([]writerItem, 0, w.opts.BatchSize)
		}
		l.queue = append(q, append(c, it))
	} else {
		q[len(q)-1] = append(q[len(q)-1], it)
	}
	if l.idle {
		l.idle = false
		l.cond.Signal()
	}
}

// requeueLocked puts items back at the front of the lane's queue, in
// order, ahead of everything queued since.
func (l *writerLane) requeueLocked(items []writerItem) {
	if len(items) == 0 {
		return
	}
	bs := l.w.opts.BatchSize
	var chunks [][]writerItem
	for len(items) > 0 {
		n := min(len(items), bs)
		chunks = append(chunks, append(make([]writerItem, 0, bs), items[:n]...))
		items = items[n:]
	}
	l.queue = append(chunks, l.queue...)
	if l.idle {
		l.idle = false
		l.cond.Signal()
	}
}
