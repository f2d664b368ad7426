package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
)

// defaultPrefix names the bench's keys on an empty server.
const defaultPrefix = "vactor:bench:"

// keyspace is the bench's own keys on the target: it checks that they
// may be written, fills them, and deletes them (and nothing else).
type keyspace struct {
	eng    *engine.Engine
	cfg    config.Config
	prefix string
	keys   []string
}

// dbSize returns the number of keys in the selected database, summed
// over the primaries in cluster mode.
func dbSize(ctx context.Context, eng *engine.Engine, cfg config.Config) (int64, error) {
	if !cfg.ClusterMode {
		return dbSizeOf(ctx, eng)
	}
	nodes, err := clusterTopology(ctx, eng)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, p := range primaries(nodes) {
		n, err := func() (int64, error) {
			node, err := newEngine(ctx, nodeConfig(cfg, p.Addr))
			if err != nil {
				return 0, err
			}
			defer func() { _ = node.Close() }()
			return dbSizeOf(ctx, node)
		}()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", p.Addr, err)
		}
		total += n
	}
	return total, nil
}

func dbSizeOf(ctx context.Context, eng *engine.Engine) (int64, error) {
	r, err := eng.Do(ctx, "DBSIZE").Await(ctx)
	if err != nil {
		return 0, fmt.Errorf("DBSIZE: %w", err)
	}
	return r.Int64()
}

// claim decides the bench's key prefix: on a server that holds data it
// needs the user's prefix (given is false otherwise), and none of the
// keys it would write may exist.
func claim(ctx context.Context, eng *engine.Engine, cfg config.Config, prefix string, given bool, n int) (*keyspace, error) {
	size, err := dbSize(ctx, eng, cfg)
	if err != nil {
		return nil, err
	}
	if size > 0 && !given {
		return nil, fmt.Errorf("%w (%d keys): vactor bench writes keys of its own and deletes them afterwards; "+
			"give -keyspace-prefix PREFIX to write PREFIX0 .. PREFIX%d beside the data", errHoldsData, size, n-1)
	}
	ks := &keyspace{eng: eng, cfg: cfg, prefix: prefix, keys: keyNames(prefix, n)}
	if size > 0 {
		exist, err := ks.existing(ctx)
		if err != nil {
			return nil, err
		}
		if exist > 0 {
			return nil, fmt.Errorf("%w: %d of the keys %s0 .. %s%d exist; choose another -keyspace-prefix",
				errHoldsData, exist, prefix, prefix, n-1)
		}
	}
	return ks, nil
}

// existing counts the bench's keys that exist (EXISTS, 1,000 keys a
// command; the engine splits them by slot in cluster mode).
func (ks *keyspace) existing(ctx context.Context) (int64, error) {
	var total int64
	for i := 0; i < len(ks.keys); i += 1000 {
		n, err := ks.eng.Exists(ctx, ks.keys[i:min(i+1000, len(ks.keys))]...).Await(ctx)
		if err != nil {
			return 0, fmt.Errorf("EXISTS: %w", err)
		}
		total += n
	}
	return total, nil
}

// fill sets every key to a value of size bytes through a batch writer.
func (ks *keyspace) fill(ctx context.Context, size int) error {
	value := benchValue(size)
	return ks.write(ctx, func(w *engine.BatchWriter, k string) error { return w.Set(ctx, k, value, 0) })
}

// drop deletes the bench's keys, exactly those (UNLINK, one a key).
func (ks *keyspace) drop(ctx context.Context) error {
	return ks.write(ctx, func(w *engine.BatchWriter, k string) error { return w.Write(ctx, "UNLINK", k) })
}

// checkDelete checks, before any key is written, that the bench may
// delete them: UNLINK of its first key, which does not exist (claim
// checked), so deletes nothing.
func (ks *keyspace) checkDelete(ctx context.Context) error {
	if _, err := ks.eng.Do(ctx, "UNLINK", ks.keys[0]).Await(ctx); err != nil {
		return fmt.Errorf("the bench could not delete its keys afterwards, so it writes none: UNLINK %s: %w", ks.keys[0], err)
	}
	return nil
}

// reportLeft says, after drop failed with err, which of the bench's keys
// are left on the server.
func (ks *keyspace) reportLeft(ctx context.Context, stderr io.Writer, err error) {
	n := len(ks.keys)
	fmt.Fprintf(stderr, "vactor bench: could not delete the keys %s0 .. %s%d: %v\n", ks.prefix, ks.prefix, n-1, err)
	var left []string
	for i := 0; i < n; i += 1000 {
		// One EXISTS a key, 1,000 in flight at a time (the engine
		// pipelines them).
		batch := ks.keys[i:min(i+1000, n)]
		fs := make([]*futures.Future[int64], len(batch))
		for j, k := range batch {
			fs[j] = ks.eng.Exists(ctx, k)
		}
		for j, f := range fs {
			v, err := f.Await(ctx)
			if err != nil {
				fmt.Fprintf(stderr, "vactor bench: some of the keys %s0 .. %s%d may be left on the server (EXISTS %s: %v): delete them\n",
					ks.prefix, ks.prefix, n-1, batch[j], err)
				return
			}
			if v != 0 {
				left = append(left, batch[j])
			}
		}
	}
	if len(left) == 0 {
		fmt.Fprintln(stderr, "vactor bench: none of its keys is left on the server (EXISTS of each)")
		return
	}
	const shown = 10
	list := strings.Join(left[:min(len(left), shown)], " ")
	if len(left) > shown {
		list += fmt.Sprintf(" ... (%d more)", len(left)-shown)
	}
	fmt.Fprintf(stderr, "vactor bench: %d of its keys are left on the server: %s\n", len(left), list)
}

// write runs one command per key through a batch writer and reports the
// first failure.
func (ks *keyspace) write(ctx context.Context, one func(*engine.BatchWriter, string) error) error {
	var failed atomic.Pointer[error]
	w, err := ks.eng.NewBatchWriter(engine.BatchWriterOptions{
		Idempotent: true,
		OnError: func(cmd []string, err error) {
			err = fmt.Errorf("%s %s: %w", cmd[0], cmd[1], err)
			failed.CompareAndSwap(nil, &err)
		},
	})
	if err != nil {
		return err
	}
	for _, k := range ks.keys {
		if err := one(w, k); err != nil {
			_ = w.Close(ctx)
			return err
		}
	}
	if err := w.Close(ctx); err != nil {
		return err
	}
	if p := failed.Load(); p != nil {
		return *p
	}
	return nil
}
