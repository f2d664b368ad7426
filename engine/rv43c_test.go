package engine_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// aclDenied is the server's count of NOPERM error replies
// (INFO errorstats errorstat_NOPERM; 0 when absent).
func aclDenied(t *testing.T, srv *valkeytest.Server) int {
	t.Helper()
	info, err := srv.Do("INFO", "errorstats")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := info.(string)
	m := regexp.MustCompile(`errorstat_NOPERM:count=(\d+)`).FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// rv43c: an ACL user refused CLIENT ID consumed without a refusal per read
// before the unblocking Close; the CLIENT ID pipelined with each read then
// added one NOPERM per read on the server (errorstat_NOPERM,
// total_error_replies, ACL LOG), a steady error rate for a healthy
// consumer. A refused probe must stop the session asking again.
func TestRV43CConsumeNoRefusalPerRead(t *testing.T) {
	srv := valkeytest.Start(t)
	if err := srv.AddUser("app", "app-pass", "~*", "&*", "+@all", "-client|id"); err != nil {
		t.Fatal(err)
	}
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithUsername("app").WithPassword("app-pass"))
	defer eng.Close()
	ctx := ctxT(t)
	c, err := eng.Consume(ctx, "s", "g", "c", func(context.Context, engine.XEntry) error { return nil },
		engine.ConsumeOptions{Block: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitCond(t, 5*time.Second, "the read blocked", func() bool { return infoBlocked(t, srv) == "1" })
	before := aclDenied(t, srv)
	time.Sleep(time.Second) // ~100 reads of 5 ms
	after := aclDenied(t, srv)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if d := after - before; d > 1 {
		t.Errorf("%d commands refused by ACL in 1 s of reads (Block 5ms): one per read", d)
	}
}

// The read's connection killed while the handler runs (rv43c 3): the
// driver dials a new one for the next read in the same session, so the id
// Close unblocks is the killed connection's (CLIENT UNBLOCK answers 0) and
// Close falls back to closing the connection after unblockWait: still
// prompt (the window this leaves for one read is documented on Close).
func TestRV43CStaleReadConn(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	defer eng.Close()
	ctx := ctxT(t)
	in, release := make(chan struct{}, 1), make(chan struct{})
	c, err := eng.Consume(ctx, "s", "g", "c", func(context.Context, engine.XEntry) error {
		in <- struct{}{}
		<-release
		return nil
	}, engine.ConsumeOptions{Block: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waitCond(t, 5*time.Second, "the read blocked", func() bool { return infoBlocked(t, srv) == "1" })
	dsAwait(t, ctx, "XADD", eng.XAdd(ctx, "s", "n", "1"))
	<-in
	list, err := srv.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := list.(string)
	m := regexp.MustCompile(`(?m)^id=(\d+) .* cmd=xreadgroup`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no xreadgroup client: %s", s)
	}
	if _, err := srv.Do("CLIENT", "KILL", "ID", m[1]); err != nil {
		t.Fatal(err)
	}
	waitCond(t, 5*time.Second, "the killed connection gone", func() bool {
		list, err := srv.Do("CLIENT", "LIST")
		s, _ := list.(string)
		return err == nil && !strings.Contains(s, "id="+m[1]+" ")
	})
	close(release)
	waitCond(t, 5*time.Second, "the next read blocked", func() bool { return infoBlocked(t, srv) == "1" })
	st := c.Stats()
	start := time.Now()
	c.Close()
	took := time.Since(start)
	t.Logf("killed read conn id %s; reconnects %d lastErr %v; Close took %v", m[1], st.Reconnects, st.LastError, took)
	if took > time.Second {
		t.Fatalf("Close with a stale read-connection id took %v, want < 1s", took)
	}
}
