package glide_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers/glide"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// TestTxRepliesOfEveryShape: a Tx whose commands' replies are maps, sets,
// scored ranges or streams (glide converts a reply by its command, and the
// QUEUED each gets inside MULTI failed that: the transaction ran and every
// future failed with ErrOutcomeUnknown, qa-AH 2) completes with the
// values; a Watch with such a read commits once; a WATCHed key changed
// aborts it; a command refused while queued aborts it with EXECABORT and
// nothing runs.
func TestTxRepliesOfEveryShape(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := glideEngine(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"HSET", "sh:h", "f", "v"}, {"SADD", "sh:s", "m"}, {"ZADD", "sh:z", "1.5", "a"},
		{"XADD", "sh:x", "1-1", "k", "v"},
	} {
		if _, err := srv.Do(args...); err != nil {
			t.Fatal(err)
		}
	}
	tx := eng.Tx()
	n := tx.Incr("sh:n")
	h := tx.HGetAll("sh:h")
	s := tx.SMembers("sh:s")
	z := tx.Do("ZRANGE", "sh:z", "0", "-1", "WITHSCORES")
	x := tx.Do("XRANGE", "sh:x", "-", "+")
	cfg := tx.Do("CONFIG", "GET", "maxmemory")
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if v, err := n.Await(ctx); err != nil || v != 1 {
		t.Errorf("INCR = %v, %v", v, err)
	}
	if v, err := h.Await(ctx); err != nil || fmt.Sprint(v) != "map[f:v]" {
		t.Errorf("HGETALL = %v, %v", v, err)
	}
	if v, err := s.Await(ctx); err != nil || fmt.Sprint(v) != "[m]" {
		t.Errorf("SMEMBERS = %v, %v", v, err)
	}
	for name, f := range map[string]interface {
		Await(context.Context) (engine.Reply, error)
	}{"ZRANGE": z, "XRANGE": x, "CONFIG GET": cfg} {
		r, err := f.Await(ctx)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if v, err := r.Any(); err != nil || v == nil {
			t.Errorf("%s = %v, %v", name, v, err)
		}
	}

	// Watch with a map read: commits once.
	if err := eng.Watch(ctx, func(tx *engine.Tx) error {
		tx.Incr("sh:n")
		tx.HGetAll("sh:h")
		return nil
	}, "sh:h"); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	// A WATCHed key changed: aborted, nothing written.
	err := eng.Watch(ctx, func(tx *engine.Tx) error {
		if _, err := srv.Do("HSET", "sh:h", "f", "changed"); err != nil {
			return err
		}
		tx.Incr("sh:n")
		tx.HGetAll("sh:h")
		return nil
	}, "sh:h")
	if !errors.Is(err, engine.ErrTxAborted) {
		t.Errorf("Watch over a changed key: %v, want ErrTxAborted", err)
	}
	// A command refused while queued: EXECABORT, nothing runs.
	tx = eng.Tx()
	inc := tx.Incr("sh:n")
	tx.Do("HGETALL") // wrong number of arguments
	tx.HGetAll("sh:h")
	err = tx.Exec(ctx)
	if !errors.Is(err, &engine.ServerError{Prefix: "EXECABORT"}) {
		t.Errorf("Exec with a command refused while queued: %v, want EXECABORT", err)
	}
	if _, err := inc.Await(ctx); err == nil {
		t.Error("INCR of an aborted transaction succeeded")
	}
	if v, err := srv.Do("GET", "sh:n"); err != nil || fmt.Sprint(v) != "2" {
		t.Errorf("sh:n = %v (%v), want 2: each transaction that ran, once", v, err)
	}
}

// TestClusterTxAskRepliesOfEveryShape: in cluster mode a transaction on a
// migrating slot whose key is not on its owner goes to the importing node
// with ASKING before MULTI; with glide it too goes out as an atomic batch
// (after the ASKING), so a map reply in it reads (review-30 3: the ASKING
// in front made it plain commands, and HGETALL's QUEUED failed glide's
// conversion: ErrOutcomeUnknown after it ran).
func TestClusterTxAskRepliesOfEveryShape(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := valkeytest.StartClusterT(t)
	const key = "{gtxask}h"
	slot, _, dst := halfMigrate(t, c, key)
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(c.Addrs()...).WithClusterMode(true).WithDriver(glide.Name))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	tx := eng.Tx()
	tx.HSet(key, "f", "v")
	h := tx.HGetAll(key)
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("Tx on a migrating slot (ASK): %v", err)
	}
	if v, err := h.Await(ctx); err != nil || fmt.Sprint(v) != "map[f:v]" {
		t.Fatalf("HGETALL in the Tx = %v, %v", v, err)
	}
	if n, err := dst.Do("CLUSTER", "COUNTKEYSINSLOT", strconv.Itoa(slot)); err != nil || fmt.Sprint(n) != "1" {
		t.Fatalf("keys of the slot on the importing node = %v, %v: the Tx ran there", n, err)
	}
}

// TestLongTxRepliesOfEveryShape: a Tx longer than the pipeline limit
// (MaxBatchSize) reaches glide whole, as its atomic batch: sent in parts
// (as the engine sends it over valkey-go), it went out as plain commands
// and a map reply inside failed with ErrOutcomeUnknown though it ran.
func TestLongTxRepliesOfEveryShape(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()).WithDriver(glide.Name).WithMaxBatchSize(16))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if _, err := srv.Do("HSET", "lt:h", "f", "v"); err != nil {
		t.Fatal(err)
	}
	tx := eng.Tx()
	var ns []*futures.Future[int64]
	var hs []*futures.Future[map[string]string]
	for range 20 {
		ns = append(ns, tx.Incr("lt:n"))
		hs = append(hs, tx.HGetAll("lt:h"))
	}
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("Exec of %d commands with MaxBatchSize 16: %v", 2*len(ns), err)
	}
	for i := range ns {
		if v, err := ns[i].Await(ctx); err != nil || v != int64(i+1) {
			t.Fatalf("INCR %d = %v, %v", i, v, err)
		}
		if v, err := hs[i].Await(ctx); err != nil || fmt.Sprint(v) != "map[f:v]" {
			t.Fatalf("HGETALL %d = %v, %v", i, v, err)
		}
	}
}
