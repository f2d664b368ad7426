package glide_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
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
