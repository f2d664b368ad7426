package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// auditTxCommits runs a plain transaction after a key it INCRs was
// changed by another client: it must commit. A WATCH left on the pooled
// transaction connection by an earlier Watch would abort it.
func auditTxCommits(t *testing.T, ctx context.Context, eng *engine.Engine, key, after string) {
	t.Helper()
	if err := eng.Set(ctx, key, "10", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	tx := eng.Tx()
	n := tx.Incr(key)
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("transaction after %s: %v (a WATCH left on a pooled connection?)", after, err)
	}
	if v, err := n.Await(ctx); err != nil || v != 11 {
		t.Fatalf("INCR after %s = %d, %v; want 11", after, v, err)
	}
}

// However a Watch ends (fn's error, a panic, Discard, an empty fn, an
// argument the engine rejects, ctx's deadline inside fn, a nested Watch
// on the same key), it leaves no WATCH on the pooled connection: the
// next transaction on it commits although the watched key changed.
// Blocking commands inside a Tx answer at once; DISCARD through Do is
// refused.
func TestAuditPtxWatchEndings(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	const k = "audit:w"
	boom := errors.New("boom")
	endings := map[string]func(tx *engine.Tx) error{
		"fn error":    func(tx *engine.Tx) error { tx.Incr(k); return boom },
		"Discard":     func(tx *engine.Tx) error { tx.Incr(k); tx.Discard(); return nil },
		"nothing":     func(tx *engine.Tx) error { return nil },
		"bad arg":     func(tx *engine.Tx) error { tx.HSet(k+":h", "odd"); return nil },
		"read only":   func(tx *engine.Tx) error { _, err := tx.Read().Get(ctx, k); return err },
		"DISCARD cmd": func(tx *engine.Tx) error { return tx.Do("DISCARD").Err(ctx) },
		"panic":       func(tx *engine.Tx) error { tx.Incr(k); panic(boom) },
	}
	for name, fn := range endings {
		func() {
			defer func() {
				r := recover()
				if (r != nil) != (name == "panic") {
					t.Fatalf("%s: recovered %v", name, r)
				}
			}()
			err := eng.Watch(ctx, fn, k)
			t.Logf("Watch ending with %s: %v", name, err)
		}()
		auditTxCommits(t, ctx, eng, k, name)
	}

	// ctx's deadline passes while fn runs: Watch fails with it, nothing
	// queued runs.
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err := eng.Watch(dctx, func(tx *engine.Tx) error {
		<-dctx.Done()
		tx.Set(k, "late", 0)
		return nil
	}, k)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Watch past its deadline: %v, want DeadlineExceeded", err)
	}
	auditTxCommits(t, ctx, eng, k, "a deadline")

	// Nested: the inner Watch commits a change to the outer's watched key,
	// so the outer aborts.
	var inner error
	err = eng.Watch(ctx, func(tx *engine.Tx) error {
		inner = eng.Watch(ctx, func(tx2 *engine.Tx) error { tx2.Incr(k); return nil }, k)
		tx.Set(k, "outer", 0)
		return nil
	}, k)
	if inner != nil || !errors.Is(err, engine.ErrTxAborted) {
		t.Fatalf("nested Watch: inner %v, outer %v; want nil, ErrTxAborted", inner, err)
	}
	auditTxCommits(t, ctx, eng, k, "a nested Watch")

	// Blocking commands inside MULTI do not block.
	tx := eng.Tx()
	bl := tx.Do("BLPOP", "audit:empty", "0")
	xr := tx.Do("XREAD", "BLOCK", "0", "STREAMS", "audit:stream", "$")
	start := time.Now()
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("Tx with blocking commands: %v", err)
	}
	for name, f := range map[string]*futures.Future[engine.Reply]{"BLPOP": bl, "XREAD": xr} {
		if r, err := f.Await(ctx); err != nil || !r.IsNil() {
			t.Fatalf("%s in a Tx = %v, %v; want a nil reply at once", name, r, err)
		}
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Tx with blocking commands took %s", el)
	}
}

// Pipelines: a cancelled Exec completes every future and does not touch
// another pipeline; 100,000 commands keep their order.
func TestAuditPtxPipelineCancelAndHuge(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)

	p := eng.Pipeline()
	const n = 100_000
	fs := make([]*futures.Future[int64], n)
	for i := range fs {
		fs[i] = p.Incr("audit:huge")
	}
	if err := p.Exec(ctx); err != nil {
		t.Fatalf("Exec of %d: %v", n, err)
	}
	for i, f := range fs {
		if v, err := f.Await(ctx); err != nil || v != int64(i+1) {
			t.Fatalf("INCR %d = %d, %v", i, v, err)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	p = eng.Pipeline()
	fs = fs[:20_000]
	for i := range fs {
		fs[i] = p.Incr("audit:cancel")
	}
	other := eng.Pipeline()
	ofs := make([]*futures.Future[int64], 1000)
	for i := range ofs {
		ofs[i] = other.Incr("audit:other")
	}
	go func() {
		<-fs[0].Done()
		cancel()
	}()
	err := p.Exec(cctx)
	if oerr := other.Exec(ctx); oerr != nil {
		t.Fatalf("other pipeline: %v", oerr)
	}
	// The INCRs that ran are a prefix of the pipeline, in order; some of
	// them, written before the cancel, have futures failed with Canceled
	// all the same (see Pipeline.Exec). So a future that succeeded at
	// index i reads i+1.
	ran := 0
	for i, f := range fs {
		v, ferr := f.Await(ctx)
		switch {
		case ferr == nil:
			ran++
			if v != int64(i+1) {
				t.Fatalf("INCR %d = %d, want %d (%d succeeded so far)", i, v, i+1, ran)
			}
		case !errors.Is(ferr, context.Canceled):
			t.Fatalf("INCR %d: %v", i, ferr)
		}
	}
	if ran < len(fs) && !errors.Is(err, context.Canceled) {
		t.Fatalf("Exec with ctx cancelled: %v (%d of %d ran)", err, ran, len(fs))
	}
	for i, f := range ofs {
		if v, err := f.Await(ctx); err != nil || v != int64(i+1) {
			t.Fatalf("other INCR %d = %d, %v", i, v, err)
		}
	}
	t.Logf("cancelled Exec: %v, %d of %d ran", err, ran, len(fs))
}

// A Pipeline filled by several goroutines while another calls Exec: no
// panic, no race, and every future completes, either sent with the
// pipeline or failed with ErrInvalidArgument (added after Exec).
func TestAuditPtxPipelineConcurrentAdd(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	for round := range 20 {
		p := eng.Pipeline()
		var mu sync.Mutex
		var all []*futures.Future[int64]
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 200 {
					f := p.Exists(fmt.Sprintf("audit:c:%d", g), fmt.Sprintf("audit:c:%d:%d", g, i))
					g := p.Incr(fmt.Sprintf("audit:c:%d:%d", round, g))
					mu.Lock()
					all = append(all, f, g)
					mu.Unlock()
				}
			})
		}
		err := p.Exec(ctx)
		wg.Wait()
		p.Discard()
		if err != nil {
			t.Fatalf("Exec: %v", err)
		}
		for i, f := range all {
			if _, err := f.Await(ctx); err != nil && !errors.Is(err, engine.ErrInvalidArgument) {
				t.Fatalf("round %d future %d: %v", round, i, err)
			}
		}
	}
}

// Cluster mode: TxReader.Do finds the keys of a command as Engine.Do does
// (PING's argument, OBJECT's subcommand are no keys); the empty key is a
// key (slot 0) in a Tx, a Watch and a Pipeline.
func TestAuditPtxCluster(t *testing.T) {
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	const k = "{audit}k"
	err := eng.Watch(ctx, func(tx *engine.Tx) error {
		if r, err := tx.Read().Do(ctx, "PING", "hello"); err != nil {
			return fmt.Errorf("PING hello: %w", err)
		} else if s, _ := r.String(); s != "hello" {
			return fmt.Errorf("PING hello = %q", s)
		}
		if _, err := tx.Read().Do(ctx, "OBJECT", "ENCODING", k); !errors.Is(err, engine.ErrNil) && err != nil {
			return fmt.Errorf("OBJECT ENCODING: %w", err)
		}
		if _, err := tx.Read().Do(ctx, "GET", "{other}k"); !errors.Is(err, engine.ErrCrossSlot) {
			return fmt.Errorf("GET of another slot: %v, want ErrCrossSlot", err)
		}
		tx.Set(k, "1", 0)
		return nil
	}, k)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}

	tx := eng.Tx()
	set, get := tx.Set("", "empty", 0), tx.Get("")
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("Tx on the empty key: %v", err)
	}
	pipeWant(t, ctx, "SET \"\"", set, struct{}{})
	pipeWant(t, ctx, "GET \"\"", get, "empty")
	err = eng.Watch(ctx, func(tx *engine.Tx) error {
		v, err := tx.Read().Get(ctx, "")
		if err != nil {
			return err
		}
		tx.Set("", v+"!", 0)
		return nil
	}, "")
	if err != nil {
		t.Fatalf("Watch on the empty key: %v", err)
	}
	p := eng.Pipeline()
	pg := p.Get("")
	if err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	pipeWant(t, ctx, "pipeline GET \"\"", pg, "empty!")

	// After a failover of the watched key's primary, WatchRetry follows:
	// the first WATCH is redirected (MOVED) on the old primary, the rerun
	// goes to the new one.
	replica := auditReplicaOf(t, ctx, eng, c, k)
	if err := c.Failover(replica); err != nil {
		t.Fatal(err)
	}
	err = eng.WatchRetry(ctx, 10, func(tx *engine.Tx) error {
		tx.Set(k, "after failover", 0)
		return nil
	}, k)
	if err != nil {
		t.Fatalf("WatchRetry after a failover: %v", err)
	}
}

// auditReplicaOf returns a replica of the primary that serves key.
func auditReplicaOf(t *testing.T, ctx context.Context, eng *engine.Engine, c *valkeytest.Cluster, key string) *valkeytest.ClusterNode {
	t.Helper()
	slot, err := eng.Do(ctx, "CLUSTER", "KEYSLOT", key).Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := slot.Int64()
	r, err := eng.Do(ctx, "CLUSTER", "NODES").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := r.String()
	var owner string
	lines := strings.Split(strings.TrimSpace(text), "\n")
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 9 || !strings.Contains(f[2], "master") {
			continue
		}
		for _, rng := range f[8:] {
			lo, hi, _ := strings.Cut(rng, "-")
			a, _ := strconv.ParseInt(lo, 10, 64)
			b, err := strconv.ParseInt(hi, 10, 64)
			if err != nil {
				b = a
			}
			if a <= n && n <= b {
				owner = f[0]
			}
		}
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 4 || f[3] != owner {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		for _, rep := range c.Replicas() {
			if rep.Addr() == addr {
				return rep
			}
		}
	}
	t.Fatalf("no replica of the primary of slot %d (%s) in\n%s", n, owner, text)
	return nil
}

// The Client returns ErrNil where its doc says so, zero values elsewhere.
func TestAuditPtxClientMissing(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	c := eng.Sync()
	const k = "audit:none"
	nils := map[string]error{}
	_, nils["Get"] = c.Get(ctx, k)
	_, nils["GetDel"] = c.GetDel(ctx, k)
	_, nils["HGet"] = c.HGet(ctx, k, "f")
	_, nils["LPop"] = c.LPop(ctx, k)
	_, nils["RPop"] = c.RPop(ctx, k)
	_, nils["ZScore"] = c.ZScore(ctx, k, "m")
	for name, err := range nils {
		if !errors.Is(err, engine.ErrNil) {
			t.Errorf("%s of a missing key: %v, want ErrNil", name, err)
		}
	}
	if m, err := c.HGetAll(ctx, k); err != nil || len(m) != 0 {
		t.Errorf("HGetAll = %v, %v", m, err)
	}
	if l, err := c.LRange(ctx, k, 0, -1); err != nil || len(l) != 0 {
		t.Errorf("LRange = %v, %v", l, err)
	}
	if s, err := c.SMembers(ctx, k); err != nil || len(s) != 0 {
		t.Errorf("SMembers = %v, %v", s, err)
	}
	if ok, err := c.SIsMember(ctx, k, "m"); err != nil || ok {
		t.Errorf("SIsMember = %v, %v", ok, err)
	}
	if ttl, err := c.TTL(ctx, k); err != nil || ttl.Exists {
		t.Errorf("TTL = %+v, %v", ttl, err)
	}
	if v, err := c.MGet(ctx, k, k); err != nil || len(v) != 2 || v[0] != nil || v[1] != nil {
		t.Errorf("MGet = %v, %v", v, err)
	}
	if r, err := c.Do(ctx, "GET", k); err != nil || !r.IsNil() {
		t.Errorf("Do GET = %v, %v; want a nil Reply", r, err)
	}
}

// Exec returns with every future complete, TTL's included (it was
// decoded through futures.Then, completed later on the callback
// goroutine).
func TestAuditPtxTTLDoneAtExec(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if err := eng.Set(ctx, "audit:ttl", "v", time.Hour).Err(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		tx, p := eng.Tx(), eng.Pipeline()
		tf, pf := tx.TTL("audit:ttl"), p.TTL("audit:ttl")
		if err := tx.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if !tf.IsDone() || !pf.IsDone() {
			t.Fatalf("run %d: TTL future pending after Exec returned (Tx %v, Pipeline %v)", i, tf.IsDone(), pf.IsDone())
		}
		for _, f := range []*futures.Future[engine.TTL]{tf, pf} {
			if ttl, err := f.Await(ctx); err != nil || !ttl.HasExpiry || ttl.Remaining <= 0 {
				t.Fatalf("TTL = %+v, %v", ttl, err)
			}
		}
	}
}

// TxReader.Do refuses a blocking command that would hold the watched
// connection until its read timed out (BLPOP ... 0), at once; a short
// one runs.
func TestAuditPtxReadBlocking(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	err := eng.Watch(ctx, func(tx *engine.Tx) error {
		bctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := tx.Read().Do(bctx, "BLPOP", "audit:bl", "0"); !errors.Is(err, engine.ErrInvalidArgument) {
			return fmt.Errorf("Read().Do BLPOP 0: %v, want ErrInvalidArgument", err)
		}
		if r, err := tx.Read().Do(ctx, "BLPOP", "audit:bl", "0.01"); err != nil || !r.IsNil() {
			return fmt.Errorf("Read().Do BLPOP 0.01: %v, %v; want a nil reply", r, err)
		}
		tx.Set("audit:bl:done", "1", 0)
		return nil
	}, "audit:bl")
	if err != nil {
		t.Fatal(err)
	}
}
