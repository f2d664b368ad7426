package engine_test

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

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
	ss := fmt.Sprint(slot)
	do := func(n *valkeytest.ClusterNode, args ...string) { t.Helper(); nodeDo(t, n, args...) }
	var delErr error
	w := bwWriter(t, eng, engine.BatchWriterOptions{OnError: func(cmd []string, err error) {
		t.Logf("OnError(%q, %v)", cmd, err)
		delErr = err
	}})
	do(dst, "CLUSTER", "SETSLOT", ss, "IMPORTING", src.ID)
	do(src, "CLUSTER", "SETSLOT", ss, "MIGRATING", dst.ID)
	do(src, "MIGRATE", dst.Host(), fmt.Sprint(dst.Port()), "", "0", "5000", "KEYS", k1)
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
