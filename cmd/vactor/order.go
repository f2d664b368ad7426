package main

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/vactor-io/vactor/engine"
)

// loadWriter is vactor load's way to the server: the batch writer, kept
// fast for plain single-key writes and in the input's order for the rest.
//
// The batch writer spreads commands over ConnsPerNode connections by
// their first key, so it keeps only each key's order. That is all a file
// of plain single-key writes (SET, HSET, RPUSH, ...) needs. A command
// that touches other keys (RENAME, MSET, SMOVE, DEL a b, ...), or none,
// or one not known to be a plain single-key write, could overtake the
// commands before it on those keys, or be overtaken by the ones after
// it. So at the first such command the load waits until everything
// written so far is acknowledged or failed (a barrier: nothing after it
// overtakes what came before) and sends the rest of the input over one
// ordered writer: one connection (per node in a cluster), in the
// input's order, as redis-cli --pipe does.
type loadWriter struct {
	eng  *engine.Engine
	opts engine.BatchWriterOptions
	fast *engine.BatchWriter
	// ordered is the writer of one connection per node once the input
	// needs its order (it is fast when fast has one connection already).
	ordered atomic.Pointer[engine.BatchWriter]
	// orderedFrom is the line and the name of the first command that
	// needed the input's order (0 when none did).
	orderedFrom     int64
	orderedFromName string
}

func newLoadWriter(eng *engine.Engine, opts engine.BatchWriterOptions) (*loadWriter, error) {
	w, err := eng.NewBatchWriter(opts)
	if err != nil {
		return nil, err
	}
	return &loadWriter{eng: eng, opts: opts, fast: w}, nil
}

// current is the writer commands go to now.
func (lw *loadWriter) current() *engine.BatchWriter {
	if w := lw.ordered.Load(); w != nil {
		return w
	}
	return lw.fast
}

// write queues c: on the fast writer while the input is made of plain
// single-key writes, from the first other command on, after a barrier,
// on the ordered writer.
func (lw *loadWriter) write(ctx context.Context, c command) error {
	if lw.ordered.Load() == nil && !c.set && !singleKeyWrite(c.args) {
		if err := lw.startOrdered(ctx); err != nil {
			return err
		}
		name := strings.ToUpper(c.args[0])
		if !isWord(name) {
			name = cut(name, 32)
		}
		lw.orderedFrom, lw.orderedFromName = c.line, name
	}
	w := lw.current()
	if c.set {
		return w.Set(ctx, c.args[1], c.args[2], c.ttl)
	}
	return w.Write(ctx, c.args...)
}

// startOrdered waits until every command written so far is done and
// switches to the writer of one connection per node.
func (lw *loadWriter) startOrdered(ctx context.Context) error {
	if lw.opts.ConnsPerNode == 1 {
		// One connection already: the fast writer keeps the order.
		lw.ordered.Store(lw.fast)
		return nil
	}
	if err := lw.fast.Flush(ctx); err != nil {
		return err
	}
	opts := lw.opts
	opts.ConnsPerNode = 1
	w, err := lw.eng.NewBatchWriter(opts)
	if err != nil {
		return err
	}
	lw.ordered.Store(w)
	return nil
}

// close closes the writers (see BatchWriter.Close) and returns the first
// error.
func (lw *loadWriter) close(ctx context.Context) error {
	err := lw.fast.Close(ctx)
	if w := lw.ordered.Load(); w != nil && w != lw.fast {
		if oerr := w.Close(ctx); err == nil {
			err = oerr
		}
	}
	return err
}

// stats adds up the writers' counters that vactor load reports.
func (lw *loadWriter) stats() engine.BatchWriterStats {
	st := lw.fast.Stats()
	if w := lw.ordered.Load(); w != nil && w != lw.fast {
		o := w.Stats()
		st.Written += o.Written
		st.Acknowledged += o.Acknowledged
		st.Failed += o.Failed
		st.Pending += o.Pending
	}
	return st
}

// singleKeyWrites are the commands whose only key is their first
// argument (the rest are values, fields, members, options), and which
// write it: their order matters only against the commands on the same
// key, which the batch writer keeps. DEL, UNLINK and the like are here
// for one key only (see singleKeyWrite).
var singleKeyWrites = map[string]bool{}

func init() {
	for name := range strings.FieldsSeq(`
		SET SETNX SETEX PSETEX GETSET GETDEL GETEX APPEND SETRANGE SETBIT
		INCR INCRBY INCRBYFLOAT DECR DECRBY
		HSET HSETNX HMSET HDEL HINCRBY HINCRBYFLOAT
		LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LSET LREM LTRIM LINSERT
		SADD SREM SPOP
		ZADD ZREM ZINCRBY ZREMRANGEBYSCORE ZREMRANGEBYRANK ZREMRANGEBYLEX ZPOPMIN ZPOPMAX
		XADD XDEL XTRIM
		PFADD GEOADD
		EXPIRE PEXPIRE EXPIREAT PEXPIREAT PERSIST
		DEL UNLINK`) {
		singleKeyWrites[name] = true
	}
}

// singleKeyWrite reports whether args is a plain write of one key: a
// command of singleKeyWrites with its key (DEL and UNLINK: with one key
// only).
func singleKeyWrite(args []string) bool {
	if len(args) < 2 {
		return false
	}
	name := strings.ToUpper(args[0])
	if !singleKeyWrites[name] {
		return false
	}
	if name == "DEL" || name == "UNLINK" {
		return len(args) == 2
	}
	return true
}
