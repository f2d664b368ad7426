package engine

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/futures"
)

// ScanPage is one page of a SCAN: the keys it returned and the cursor of
// the next page (0 when the iteration is complete).
type ScanPage struct {
	Cursor uint64
	Keys   []string
}

// ScanPage runs one SCAN from cursor (0 starts an iteration) and returns
// the page: its keys, possibly none, and the next cursor, 0 at the end.
// MATCH is sent only when match is not empty and COUNT only when count > 0
// (a hint for the page size; the server's default is 10).
//
// In cluster mode a SCAN cursor belongs to one node: ScanPage scans the
// primary serving slot 0 (after a failover, the replica that took over
// from it). Scan covers every primary. In sentinel mode with ReadFrom
// replica, ScanPage reads from the replica reads routed by "" go to,
// which may change between calls (the replicas change, a breaker opens):
// Scan keeps an iteration on one node.
func (e *Engine) ScanPage(ctx context.Context, cursor uint64, match string, count int64) *futures.Future[ScanPage] {
	if e.cl != nil {
		return submitSlot(e, ctx, scanSlot, e.scanCmd(cursor, match, count), decodeScanPage)
	}
	return submit(e, ctx, "", e.scanCmd(cursor, match, count), decodeScanPage)
}

func (e *Engine) scanCmd(cursor uint64, match string, count int64) valkey.Completed {
	c := e.b.Scan().Cursor(cursor)
	var cmd valkey.Completed
	switch {
	case match != "" && count > 0:
		cmd = c.Match(match).Count(count).Build()
	case match != "":
		cmd = c.Match(match).Build()
	case count > 0:
		cmd = c.Count(count).Build()
	default:
		cmd = c.Build()
	}
	return cmd
}

// Scan iterates over the keys of the database, running SCAN page by page
// (one page in flight at a time) until the server's cursor returns to 0:
//
//	for key, err := range eng.Scan(ctx, "user:*", 100) {
//		if err != nil {
//			return err
//		}
//		...
//	}
//
// match and count are as for ScanPage. Each pair yielded is a key and a nil
// error; when a page fails (ctx ended, server or transport error) the
// iterator yields ("", err) once and stops. Breaking out of the loop stops
// the iteration: no further SCAN is sent. SCAN's guarantees apply: a key
// present for the whole iteration is yielded, a key added or removed
// meanwhile may or may not be, and a key may be yielded twice if the
// keyspace is resized during the iteration.
//
// The returned iterator may be ranged over any number of times, each
// starting a new iteration; ctx bounds every one of them.
//
// In cluster mode Scan scans each primary of the slot map read when the
// iteration starts, one after the other. A slot that migrates meanwhile
// may have its keys yielded twice or not at all; a node that fails ends
// the iteration with its error. While a shard of the map has no primary
// (failed, no replica promoted yet) the iteration fails at once with
// ErrNoSlotOwner rather than leave its keys out.
//
// A cursor means something only to the server that returned it (each
// server hashes keys with a seed of its own). In sentinel mode an
// iteration stays on the node it started on: with ReadFrom replica (or
// prefer-replica), a replica the sentinels see healthy when it starts (the
// primary when there is none), otherwise the primary. If that node
// leaves mid-iteration (the replica leaves the healthy ones, or the
// primary changes) the iteration ends with ErrScanNodeChanged, rather
// than going on with the cursor on another node; start a new one. A
// replica's failures end it with their error (ErrCircuitOpen once its
// breaker opens), as a cluster node's do.
func (e *Engine) Scan(ctx context.Context, match string, count int64) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		sctx := ctx
		if sctx == nil {
			sctx = context.Background()
		}
		if e.sn != nil {
			e.sn.scan(sctx, match, count, yield)
			return
		}
		nodes, err := e.scanNodes()
		if err != nil {
			yield("", err)
			return
		}
		for _, addr := range nodes {
			conn, err := e.scanConn(sctx, addr)
			if err != nil {
				yield("", err)
				return
			}
			if !e.scanNode(sctx, conn, match, count, yield) {
				return
			}
		}
	}
}

// scanNode runs one node's SCAN to the end; false: stop the iteration.
func (e *Engine) scanNode(ctx context.Context, conn *actors.ConnState, match string, count int64, yield func(string, error) bool) bool {
	var cursor uint64
	for {
		var f *futures.Future[ScanPage]
		if conn == nil {
			f = e.ScanPage(ctx, cursor, match, count)
		} else {
			f = submitTo(e, conn, ctx, e.scanCmd(cursor, match, count), decodeScanPage)
		}
		page, err := f.Await(ctx)
		if err != nil {
			yield("", err)
			return false
		}
		for _, k := range page.Keys {
			if !yield(k, nil) {
				return false
			}
		}
		if page.Cursor == 0 {
			return true
		}
		cursor = page.Cursor
	}
}

// scanNodes returns the nodes to scan: "" (the engine's one node) in
// standalone mode, every primary of the slot map in cluster mode. It
// fails with ErrNoSlotOwner when some shard of the map has no primary (a
// failover under way): scanning the others would leave that shard's keys
// out without a word.
func (e *Engine) scanNodes() ([]string, error) {
	if e.cl == nil {
		return []string{""}, nil
	}
	t := e.cl.topo.Load()
	if len(t.Orphaned) > 0 {
		return nil, fmt.Errorf("%w: slots %s have no primary (failed, no replica promoted yet): "+
			"SCAN would miss their keys; try again once the failover is over", ErrNoSlotOwner, slotRanges(t.Orphaned))
	}
	var out []string
	for _, sh := range t.Shards {
		out = append(out, sh.Primary)
	}
	return out, nil
}

// slotRanges formats slot ranges as "0-5460,10923" (at most the first 8).
func slotRanges(rs [][2]uint16) string {
	var b strings.Builder
	for i, r := range rs {
		if i == 8 {
			fmt.Fprintf(&b, ",... (%d ranges)", len(rs))
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		if r[0] == r[1] {
			fmt.Fprintf(&b, "%d", r[0])
		} else {
			fmt.Fprintf(&b, "%d-%d", r[0], r[1])
		}
	}
	return b.String()
}

// scanConn returns the connection actor to scan addr through (nil for
// "": the engine's node), dialling the node when the engine has not yet.
// ctx bounds the wait: a node that does not answer ends the iteration at
// ctx's deadline, not after DialTimeout (the dial goes on, bounded by
// DialTimeout and Close, and its node serves later commands).
func (e *Engine) scanConn(ctx context.Context, addr string) (*actors.ConnState, error) {
	if addr == "" {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if pool := e.cl.pool(addr); pool != nil {
		return pool[0], nil
	}
	type dialled struct {
		conn *actors.ConnState
		err  error
	}
	done := make(chan dialled, 1)
	go func() {
		conn, err := e.cl.Conn(addr, 0)
		done <- dialled{conn, err}
	}()
	select {
	case d := <-done:
		return d.conn, d.err
	case <-ctx.Done():
		return nil, fmt.Errorf("vactor: SCAN of %s: %w", addr, ctx.Err())
	}
}
