package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// Cluster mode, a slot migrating, {t}1 already on the importing node and
// {t}2 not: DEL {t}1 {t}2 then SET {t}1 after, fired back to back into
// one pipeline (the connection held up by CLIENT PAUSE WRITE). The DEL
// gets TRYAGAIN (its keys are split), the SET ASK: after the backoff the
// slot actor sent the SET to the importing node beside the DEL to the
// owner, and once the migration ended the DEL ran after the SET there,
// deleting what it wrote (rv42 F1's form of qa-BD F3). The DEL must fail
// with its TRYAGAIN instead (nothing ran), or run first.
func TestClusterTryAgainPastAskKeepsOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	src, dst := c.Primaries()[0], c.Primaries()[1]
	tag, slot := tagServedBy(t, c, src, "tra")
	k1, k2, k3 := tag+"1", tag+"2", tag+"3"
	for _, k := range []string{k1, k2, k3} {
		if err := eng.Set(ctx, k, "before", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
	}
	do := func(n *valkeytest.ClusterNode, args ...string) { t.Helper(); nodeDo(t, n, args...) }
	mig := beginMigration(t, c, src, dst, slot, k1)
	// Hold the connection's next pipeline so that DEL and SET queue as one.
	do(src, "CLIENT", "PAUSE", "300", "WRITE")
	held := eng.Set(ctx, k3, "held", 0)
	awaitPostponed(t, src) // SET k3 written, waiting out the pause
	del := eng.Del(ctx, k1, k2)
	set := eng.Set(ctx, k1, "after", 0)
	// Once the SET was redirected (ASK) the migration ends.
	for deadline := time.Now().Add(5 * time.Second); eng.Stats().Redirects < 1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	mig.move(k2, k3)
	mig.end()
	if err := held.Err(ctx); err != nil {
		t.Fatalf("SET %s: %v", k3, err)
	}
	_, derr := del.Await(ctx)
	if err := set.Err(ctx); err != nil {
		t.Fatalf("SET %s: %v", k1, err)
	}
	t.Logf("DEL: %v; Redirects %d", derr, eng.Stats().Redirects)
	v, err := eng.Get(ctx, k1).Await(ctx)
	if err != nil || v != "after" {
		t.Fatalf("DEL %s %s (error %v) then SET %s acknowledged: GET %s = %q, %v (the DEL ran after the SET)", k1, k2, derr, k1, k1, v, err)
	}
	if derr != nil && !errors.Is(derr, &engine.ServerError{Prefix: "TRYAGAIN"}) {
		t.Errorf("DEL failed with %v, want its TRYAGAIN reply", derr)
	}
}

// awaitPostponed waits until n holds a client's command back (CLIENT
// PAUSE WRITE blocks the client that sent a write: blocked_clients).
func awaitPostponed(t *testing.T, n *valkeytest.ClusterNode) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		info, err := n.Do("INFO", "clients")
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := info.(string); !strings.Contains(s, "blocked_clients:0\r\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no client held back by CLIENT PAUSE WRITE within 5s")
		}
		time.Sleep(time.Millisecond) // polling the server
	}
}

// tagServedBy returns a hash tag made from prefix whose slot n serves,
// and that slot.
func tagServedBy(t *testing.T, c *valkeytest.Cluster, n *valkeytest.ClusterNode, prefix string) (string, int) {
	t.Helper()
	ranges, err := c.SlotsOf(n)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		tag := fmt.Sprintf("{%s%d}", prefix, i)
		s, err := c.KeySlot(tag)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ranges {
			if s >= r[0] && s <= r[1] {
				return tag, s
			}
		}
	}
}

// nodeDo runs a command on n, failing the test on an error.
func nodeDo(t *testing.T, n *valkeytest.ClusterNode, args ...string) {
	t.Helper()
	if _, err := n.Do(args...); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
}

// handMigration is a slot's migration from src to dst made by hand
// (CLUSTER SETSLOT, MIGRATE), for the tests that need one half done.
type handMigration struct {
	t        *testing.T
	c        *valkeytest.Cluster
	src, dst *valkeytest.ClusterNode
	slot     string
}

// beginMigration marks slot importing on dst and migrating on src, and
// moves keys to dst.
func beginMigration(t *testing.T, c *valkeytest.Cluster, src, dst *valkeytest.ClusterNode, slot int, keys ...string) *handMigration {
	t.Helper()
	m := &handMigration{t: t, c: c, src: src, dst: dst, slot: fmt.Sprint(slot)}
	nodeDo(t, dst, "CLUSTER", "SETSLOT", m.slot, "IMPORTING", src.ID)
	nodeDo(t, src, "CLUSTER", "SETSLOT", m.slot, "MIGRATING", dst.ID)
	m.move(keys...)
	return m
}

// move moves keys to the importing node.
func (m *handMigration) move(keys ...string) {
	m.t.Helper()
	nodeDo(m.t, m.src, append([]string{"MIGRATE", m.dst.Host(), fmt.Sprint(m.dst.Port()), "", "0", "5000", "KEYS"}, keys...)...)
}

// end gives the slot to the importing node on every primary.
func (m *handMigration) end() {
	m.t.Helper()
	for _, n := range m.c.Primaries() {
		nodeDo(m.t, n, "CLUSTER", "SETSLOT", m.slot, "NODE", m.dst.ID)
	}
}
