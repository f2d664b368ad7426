package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// rv42 F1: cluster mode, a slot migrating. {t}1 already moved to the
// importing node, {t}2 not yet. DEL {t}1 {t}2 then SET {t}1 after, in one
// pipeline: the DEL gets TRYAGAIN (its keys are split), the SET gets ASK and
// runs on the importing node at once. ranLater only looks for a later
// command that ran in the pipeline, not one redirected (ASK/MOVED) that
// runs elsewhere before the DEL's resend: once {t}2 moves too, the DEL is
// sent again and deletes the SET written after it.
func TestRV42WriterTryAgainPastAsk(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	src, dst := c.Primaries()[0], c.Primaries()[1]
	tag, slot := tagServedBy(t, c, src, "rv42x")
	k1, k2, k3 := tag+"1", tag+"2", tag+"3"
	for _, k := range []string{k1, k2, k3} {
		if _, err := src.Do("SET", k, "before"); err != nil {
			t.Fatal(err)
		}
	}
	do := func(n *valkeytest.ClusterNode, args ...string) { t.Helper(); nodeDo(t, n, args...) }
	var delErr error
	w := bwWriter(t, eng, engine.BatchWriterOptions{ConnsPerNode: 1, OnError: func(cmd []string, err error) {
		if cmd[0] == "DEL" {
			delErr = err
		} else {
			t.Errorf("OnError(%q, %v)", cmd, err)
		}
	}})
	// Warm the lane (its connection) up.
	if err := w.Set(ctx, k3, "warm", 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mig := beginMigration(t, c, src, dst, slot, k1)
	// Hold the lane's next pipeline so that DEL and SET queue as one.
	do(src, "CLIENT", "PAUSE", "300", "WRITE")
	if err := w.Set(ctx, k3, "held", 0); err != nil {
		t.Fatal(err)
	}
	awaitPostponed(t, src) // SET k3 written, waiting out the pause
	if err := w.Del(ctx, k1, k2); err != nil {
		t.Fatal(err)
	}
	if err := w.Set(ctx, k1, "after", 0); err != nil {
		t.Fatal(err)
	}
	// Once the SET was redirected (ASK) the migration ends.
	deadline := time.Now().Add(5 * time.Second)
	for w.Stats().Redirects == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(5 * time.Millisecond)
	mig.move(k2, k3)
	mig.end()
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	t.Logf("%s; %d resent, %d redirects; DEL: %v", st, st.Retries, st.Redirects, delErr)
	v, err := eng.Get(ctx, k1).Await(ctx)
	if err != nil || v != "after" {
		t.Fatalf("DEL %s %s (error %v) then SET %s acknowledged: GET %s = %q, %v (the DEL ran after the SET)", k1, k2, delErr, k1, k1, v, err)
	}
}

// rv42 F3: msetOK is sticky. Once an MSET was acknowledged, runs of SETs
// are merged anywhere in a pipeline; a server that refuses MSET later (an
// ACL change) gets SET k a merged mid-pipeline, refused, and sent again
// as a SET after the DEL k behind it ran.
func TestRV42WriterMSetRefusedLater(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx := ctxT(t)
	if _, err := srv.Do("ACL", "SETUSER", "rvm", "on", ">rvm-Pa55word-3e8", "~*", "+@all"); err != nil {
		t.Fatal(err)
	}
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithUsername("rvm").WithPassword("rvm-Pa55word-3e8"))
	defer eng.Close()
	w := bwWriter(t, eng, engine.BatchWriterOptions{ConnsPerNode: 1, OnError: func(cmd []string, err error) {
		t.Logf("OnError(%q, %v)", cmd, err)
	}})
	// An acknowledged MSET: a trailing run of SETs.
	for range 50 {
		for i := range 4 {
			if err := w.Set(ctx, fmt.Sprintf("rv42:warm:%d", i), "x", 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("ACL", "SETUSER", "rvm", "-mset"); err != nil {
		t.Fatal(err)
	}
	// One pipeline: SET k a, SET k2 b, DEL k (held behind a paused one).
	if _, err := srv.Do("CLIENT", "PAUSE", "300", "WRITE"); err != nil {
		t.Fatal(err)
	}
	if err := w.Set(ctx, "rv42:hold", "x", 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := w.Set(ctx, "rv42:k", "a", 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Set(ctx, "rv42:k2", "b", 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Del(ctx, "rv42:k"); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", w.Stats())
	if v, err := srv.Do("GET", "rv42:k"); err != nil || v != nil {
		t.Fatalf("SET k a then DEL k: GET k = %v, %v (the SET landed after the DEL)", v, err)
	}
}
