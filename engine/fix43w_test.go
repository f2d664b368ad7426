package engine_test

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// Cluster mode, a slot migrating: {t}1 already on the importing node, {t}2
// on neither (a DEL of a key that does not exist). The writer's DEL {t}1
// {t}2 gets ASK from the source (it has neither key) and TRYAGAIN from the
// importing node (with ASKING, a multi-key command whose keys are not all
// there). Once another client has written {t}2 (on the importing node, by
// the ASK), the DEL sent again with ASKING runs. Sent again without ASKING
// (the flag was dropped when it was first sent), the importing node
// answered MOVED back to the source, which answered ASK again, each hop a
// try: after the second TRYAGAIN the DEL failed with MOVED (MaxRetries 5)
// although its next resend with ASKING would have run.
func TestFix43WriterTryAgainAfterAskKeepsAsking(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	src, dst := c.Primaries()[0], c.Primaries()[1]
	tag, slot := tagServedBy(t, c, src, "f43a")
	k1, k2 := tag+"1", tag+"2"
	if _, err := src.Do("SET", k1, "before"); err != nil {
		t.Fatal(err)
	}
	var delErr error
	w := bwWriter(t, eng, engine.BatchWriterOptions{OnError: func(cmd []string, err error) {
		t.Logf("OnError(%q, %v)", cmd, err)
		delErr = err
	}})
	beginMigration(t, c, src, dst, slot, k1)
	base := tryAgains(t, dst)
	if err := w.Del(ctx, k1, k2); err != nil {
		t.Fatal(err)
	}
	// Two TRYAGAINs from the importing node: the DEL has been sent there
	// twice (with its ASKING) and waits out a backoff.
	for deadline := time.Now().Add(5 * time.Second); tryAgains(t, dst) < base+2; {
		if time.Now().After(deadline) {
			t.Fatalf("the importing node answered TRYAGAIN %d times in 5s, want 2; %s", tryAgains(t, dst)-base, w.Stats())
		}
		time.Sleep(time.Millisecond) // polling the server
	}
	// Another client writes {t}2: ASK'd, it lands on the importing node.
	if err := eng.Set(ctx, k2, "other", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	t.Logf("%s; %d resent, %d redirects; %d TRYAGAIN", st, st.Retries, st.Redirects, tryAgains(t, dst)-base)
	if delErr != nil || st.Failed != 0 {
		t.Fatalf("DEL %s %s failed with %v, want it run once {t}2 was on the importing node (sent again with ASKING)", k1, k2, delErr)
	}
	for _, k := range []string{k1, k2} {
		if n, err := eng.Exists(ctx, k).Await(ctx); err != nil || n != 0 {
			t.Fatalf("EXISTS %s = %d, %v after the DEL was acknowledged", k, n, err)
		}
	}
	if st.Redirects != 1 {
		t.Errorf("%d redirects, want 1 (the first ASK; the resends go to the importing node with ASKING)", st.Redirects)
	}
}

var tryAgainStat = regexp.MustCompile(`errorstat_TRYAGAIN:count=(\d+)`)

// tryAgains returns how many TRYAGAIN errors n has replied.
func tryAgains(t *testing.T, n *valkeytest.ClusterNode) int {
	t.Helper()
	info, err := n.Do("INFO", "errorstats")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := info.(string)
	m := tryAgainStat.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	v, _ := strconv.Atoi(m[1])
	return v
}

// A SET the writer merged into an MSET that the server refused is reported
// through OnError with an error that says so: the server's text names
// 'mset', a command the caller never sent. The *ServerError stays
// reachable (errors.As, errors.Is with its prefix). The MSET is refused
// after an ACL change, mid-pipeline, with a later DEL of its key run
// behind it (rv42 F3), so that the SET is reported, not resent.
func TestFix43WriterMergedSetErrorSaysMerged(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx := ctxT(t)
	if _, err := srv.Do("ACL", "SETUSER", "f43", "on", ">f43-Pa55word-9c1", "~*", "+@all"); err != nil {
		t.Fatal(err)
	}
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithUsername("f43").WithPassword("f43-Pa55word-9c1"))
	defer eng.Close()
	var mu sync.Mutex
	errs := map[string]error{}
	w := bwWriter(t, eng, engine.BatchWriterOptions{ConnsPerNode: 1, OnError: func(cmd []string, err error) {
		t.Logf("OnError(%q, %v)", cmd, err)
		mu.Lock()
		errs[strings.Join(cmd, " ")] = err
		mu.Unlock()
	}})
	// An acknowledged MSET (a trailing run of SETs): merging anywhere.
	for range 50 {
		for i := range 4 {
			if err := w.Set(ctx, fmt.Sprintf("f43:warm:%d", i), "x", 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("ACL", "SETUSER", "f43", "-mset"); err != nil {
		t.Fatal(err)
	}
	// One pipeline: SET k a, SET k2 b (an MSET), DEL k, held behind a
	// paused SET.
	if _, err := srv.Do("CLIENT", "PAUSE", "300", "WRITE"); err != nil {
		t.Fatal(err)
	}
	if err := w.Set(ctx, "f43:hold", "x", 0); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		info, err := srv.Do("INFO", "clients")
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := info.(string); !strings.Contains(s, "blocked_clients:0\r\n") {
			break // SET f43:hold written, waiting out the pause
		}
		if time.Now().After(deadline) {
			t.Fatal("no client held back by CLIENT PAUSE WRITE within 5s")
		}
		time.Sleep(time.Millisecond) // polling the server
	}
	if err := w.Set(ctx, "f43:k", "a", 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Set(ctx, "f43:k2", "b", 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Del(ctx, "f43:k"); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", w.Stats())
	mu.Lock()
	err, ok := errs["SET f43:k a"]
	n := len(errs)
	mu.Unlock()
	if !ok || n != 1 {
		t.Fatalf("OnError calls %v, want one, for SET f43:k a (its MSET refused, DEL f43:k ran after it)", errs)
	}
	if !strings.HasPrefix(err.Error(), "vactor: batch writer: SET merged into an MSET: ") {
		t.Errorf("error %q does not say the SET was merged into an MSET", err)
	}
	var se *engine.ServerError
	if !errors.As(err, &se) || se.Prefix != "NOPERM" || !errors.Is(err, &engine.ServerError{Prefix: "NOPERM"}) {
		t.Errorf("error %v (%T): want a *engine.ServerError with prefix NOPERM under it", err, err)
	}
	if v, err := srv.Do("GET", "f43:k2"); err != nil || v != "b" {
		t.Errorf("GET f43:k2 = %v, %v, want b (resent as a SET)", v, err)
	}
}
