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

	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// stateCommands are commands that change their connection's state, as a
// user would send them through Do.
var stateCommands = [][]string{
	{"MULTI"}, {"exec"}, {"DISCARD"}, {"WATCH", "shared"}, {"UNWATCH"},
	{"SELECT", "1"}, {"select", "0"},
	{"CLIENT", "REPLY", "OFF"}, {"client", "reply", "skip"},
	{"CLIENT", "TRACKING", "ON"}, {"CLIENT", "SETNAME", "other"},
	{"CLIENT", "NO-EVICT", "ON"},
	{"HELLO", "2"}, {"AUTH", "nobody", "x"}, {"RESET"},
	{"READONLY"}, {"READWRITE"}, {"ASKING"},
	{"SUBSCRIBE", "ch"}, {"psubscribe", "ch*"}, {"SSUBSCRIBE", "ch"}, {"UNSUBSCRIBE"},
	{"MONITOR"}, {"QUIT"}, {"SCRIPT", "DEBUG", "YES"},
}

func wantStateError(t *testing.T, what string, err error) {
	t.Helper()
	var cse *engine.ConnectionStateError
	if !errors.As(err, &cse) || !errors.Is(err, engine.ErrConnectionState) || !errors.Is(err, engine.ErrInvalidArgument) || cse.Use == "" {
		t.Fatalf("%s: err = %v, want a *ConnectionStateError", what, err)
	}
}

// clientInfo returns the fields of a CLIENT INFO reply.
func clientInfo(t *testing.T, r engine.Reply) map[string]string {
	t.Helper()
	s, err := r.String()
	if err != nil {
		t.Fatalf("CLIENT INFO: %v", err)
	}
	m := map[string]string{}
	for _, f := range strings.Fields(strings.TrimPrefix(s, "txt:")) { // a verbatim string
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

// Commands that change their connection's state fail at once through
// every path that reaches a shared connection, and other callers' GETs,
// running all along, keep reading their value (before the fix MULTI put
// the shared connection in a transaction: they read "QUEUED").
func TestDoRefusesConnectionState(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if err := eng.Set(ctx, "shared", "value", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	const readers, reads = 8, 300
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	start := make(chan struct{})
	for range readers {
		wg.Go(func() {
			<-start
			for range reads {
				v, err := eng.Get(ctx, "shared").Await(ctx)
				if err != nil || v != "value" {
					errs <- fmt.Errorf("GET shared = %q, %v", v, err)
					return
				}
			}
		})
	}
	close(start)
	client := eng.Sync()
	var doErrs, syncErrs []error
	atOnce := true
	for _, c := range stateCommands {
		f := eng.Do(ctx, c[0], c[1:]...)
		atOnce = atOnce && f.IsDone()
		doErrs = append(doErrs, f.Err(ctx))
		_, err := client.Do(ctx, c[0], c[1:]...)
		syncErrs = append(syncErrs, err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, c := range stateCommands {
		wantStateError(t, fmt.Sprint("Do ", c), doErrs[i])
		wantStateError(t, fmt.Sprint("Client.Do ", c), syncErrs[i])
	}
	if !atOnce {
		t.Fatal("a refused Do was not failed at once")
	}
	// The shared connection is as configured.
	r, err := eng.Do(ctx, "CLIENT", "INFO").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info := clientInfo(t, r); info["db"] != "0" || info["multi"] != "-1" || info["resp"] != "3" || info["flags"] != "N" || info["name"] != eng.Config().ClientName {
		t.Fatalf("shared connection state after refused commands: %v", info)
	}

	// A Pipeline refuses the command; the others in it run.
	p := eng.Pipeline()
	sel := p.Do("SELECT", "1")
	get := p.Get("shared")
	wantStateError(t, "Pipeline.Exec", p.Exec(ctx)) // it reports the refused SELECT
	wantStateError(t, "Pipeline.Do SELECT", sel.Err(ctx))
	if v, err := get.Await(ctx); err != nil || v != "value" {
		t.Fatalf("pipeline GET = %q, %v", v, err)
	}

	// A Tx refuses it and sends nothing (inside MULTI the server would run
	// SELECT on the pooled transaction connection).
	tx := eng.Tx()
	set := tx.Set("tx:key", "x", 0)
	wantStateError(t, "Tx.Do SELECT", tx.Do("SELECT", "1").Err(ctx))
	wantStateError(t, "Tx.Do EXEC", tx.Do("EXEC").Err(ctx))
	wantStateError(t, "Tx.Exec", tx.Exec(ctx))
	wantStateError(t, "Tx SET", set.Err(ctx))
	if n, err := eng.Exists(ctx, "tx:key").Await(ctx); err != nil || n != 0 {
		t.Fatalf("EXISTS tx:key = %d, %v: the refused transaction was sent", n, err)
	}

	// TxReader.Do inside Watch: the connection goes back to the pool.
	err = eng.Watch(ctx, func(tx *engine.Tx) error {
		_, err := tx.Read().Do(ctx, "SELECT", "1")
		wantStateError(t, "TxReader.Do SELECT", err)
		tx.Set("watched", "w", 0)
		return nil
	}, "watched")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := eng.Get(ctx, "watched").Await(ctx); err != nil || v != "w" {
		t.Fatalf("GET watched = %q, %v", v, err)
	}

	// The batch writer's connections carry every Write.
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range stateCommands {
		wantStateError(t, fmt.Sprint("BatchWriter.Write ", c), w.Write(ctx, c...))
	}
	if err := w.Write(ctx, "SET", "bw", "1"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := eng.Get(ctx, "bw").Await(ctx); err != nil || v != "1" {
		t.Fatalf("GET bw = %q, %v", v, err)
	}
}

// Dedicated runs MULTI ... EXEC sent one command at a time, also when the
// connection sits idle inside MULTI for longer than valkey-go's idle-PING
// interval (a PING would be queued in the transaction); SELECT moves only
// that connection; the shared connections still see database 0.
func TestDedicatedMultiExecAndSelect(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if err := eng.Set(ctx, "k0", "db0", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	var readErr error
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { // another caller all along
		for {
			select {
			case <-stop:
				return
			default:
			}
			if v, err := eng.Get(ctx, "k0").Await(ctx); err != nil || v != "db0" {
				readErr = fmt.Errorf("GET k0 = %q, %v", v, err)
				return
			}
		}
	})
	err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		for _, cmd := range [][]string{{"MULTI"}, {"SET", "tx", "1"}, {"INCR", "tx"}} {
			if _, err := c.Do(ctx, cmd[0], cmd[1:]...); err != nil {
				return fmt.Errorf("%v: %w", cmd, err)
			}
		}
		// Idle inside MULTI past two of valkey-go's idle-PING intervals.
		time.Sleep(2*valkey.DefaultTCPKeepAlive + 300*time.Millisecond)
		r, err := c.Do(ctx, "EXEC")
		if err != nil {
			return err
		}
		arr, err := r.Array()
		if err != nil || len(arr) != 2 {
			return fmt.Errorf("EXEC = %v (%d replies), %v; want 2 replies", arr, len(arr), err)
		}
		if n, err := arr[1].Int64(); err != nil || n != 2 {
			return fmt.Errorf("INCR in EXEC = %d, %v", n, err)
		}
		if _, err := c.Do(ctx, "SELECT", "1"); err != nil {
			return err
		}
		if _, err := c.Do(ctx, "SET", "k1", "db1"); err != nil {
			return err
		}
		if r, err := c.Do(ctx, "GET", "k0"); err != nil || !r.IsNil() {
			return fmt.Errorf("GET k0 in db 1 = %v, %v; want nil", r, err)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if readErr != nil {
		t.Fatal(readErr)
	}
	if _, err := eng.Get(ctx, "k1").Await(ctx); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("GET k1 on the shared connection = %v, want ErrNil (it is in db 1)", err)
	}
	if v, err := eng.Get(ctx, "tx").Await(ctx); err != nil || v != "2" {
		t.Fatalf("GET tx = %q, %v", v, err)
	}
	// A later Dedicated starts in database 0 again (same connection or not).
	err = eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		r, err := c.Do(ctx, "GET", "k0")
		if err != nil {
			return err
		}
		if v, err := r.String(); err != nil || v != "db0" {
			return fmt.Errorf("GET k0 = %q, %v", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// After Dedicated, the connection goes back to the pool in the state it
// was dialled in: the configured user, database and client name, RESP3,
// no MULTI, WATCH, tracking or NO-EVICT, whatever the function did.
func TestDedicatedRestoresState(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx := ctxT(t)
	admin := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	defer admin.Close()
	if err := admin.Do(ctx, "ACL", "SETUSER", "app", "on", ">apppw", "~*", "&*", "+@all").Err(ctx); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "ACL", "SETUSER", "limited", "on", ">limpw", "~*", "+get").Err(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultConfig().WithAddrs(srv.Addr())
	cfg.Username, cfg.Password, cfg.DB, cfg.ClientName = "app", "apppw", 2, "vx-app"
	eng := engineOn(t, cfg)
	defer eng.Close()
	if err := eng.Set(ctx, "in2", "two", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	var id string
	err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		r, err := c.Do(ctx, "CLIENT", "INFO")
		if err != nil {
			return err
		}
		info := clientInfo(t, r)
		id = info["id"]
		if info["db"] != "2" || info["name"] != "vx-app" || info["user"] != "app" || info["resp"] != "3" {
			return fmt.Errorf("fresh dedicated connection: %v", info)
		}
		for _, cmd := range [][]string{
			{"WATCH", "in2"}, {"SELECT", "5"}, {"CLIENT", "SETNAME", "other"},
			{"CLIENT", "TRACKING", "ON"}, {"HELLO", "2"}, {"MULTI"}, {"SET", "x", "y"},
		} {
			if _, err := c.Do(ctx, cmd[0], cmd[1:]...); err != nil {
				return fmt.Errorf("%v: %w", cmd, err)
			}
		}
		return nil // inside MULTI, RESP2, db 5, named "other", tracking
	})
	if err != nil {
		t.Fatal(err)
	}
	// restored checks that the pool's idle connection came back as dialled.
	restored := func(c *engine.DedicatedConn) error {
		r, err := c.Do(ctx, "CLIENT", "INFO")
		if err != nil {
			return err
		}
		info := clientInfo(t, r)
		if info["id"] != id {
			return fmt.Errorf("connection %s, want %s again (the pool's idle one)", info["id"], id)
		}
		if info["db"] != "2" || info["name"] != "vx-app" || info["user"] != "app" || info["resp"] != "3" ||
			info["multi"] != "-1" || info["flags"] != "N" || info["watch"] != "0" && info["watch"] != "" {
			return fmt.Errorf("reused dedicated connection not restored: %v", info)
		}
		r, err = c.Do(ctx, "GET", "in2")
		if err != nil {
			return err
		}
		if v, err := r.String(); err != nil || v != "two" {
			return fmt.Errorf("GET in2 = %q, %v", v, err)
		}
		return nil
	}
	err = eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		if err := restored(c); err != nil {
			return err
		}
		// Another user, with fewer rights.
		if _, err := c.Do(ctx, "AUTH", "limited", "limpw"); err != nil {
			return err
		}
		_, err := c.Do(ctx, "SET", "in2", "x")
		checkServerError(t, "SET as limited", err, "NOPERM")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Dedicated(ctx, restored); err != nil {
		t.Fatal(err)
	}
	// CLIENT NO-EVICT survives RESET on Redis 7.0: that connection is
	// closed, not reused.
	err = eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		_, err := c.Do(ctx, "CLIENT", "NO-EVICT", "ON")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		r, err := c.Do(ctx, "CLIENT", "INFO")
		if err != nil {
			return err
		}
		if info := clientInfo(t, r); info["id"] == id || info["flags"] != "N" || info["db"] != "2" {
			return fmt.Errorf("after NO-EVICT: %v (the NO-EVICT connection was %s)", info, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A transaction (same pool kind, other pool) is not affected either.
	tx := eng.Tx()
	got := tx.Get("in2")
	if err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := got.Await(ctx); err != nil || v != "two" {
		t.Fatalf("Tx GET in2 = %q, %v", v, err)
	}
}

// With a password on the server, RESET logs the connection out: Dedicated
// logs it in again before the next user gets it.
func TestDedicatedReauthenticates(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Password: "secret"})
	ctx := ctxT(t)
	cfg := config.DefaultConfig().WithAddrs(srv.Addr())
	cfg.Password = "secret"
	eng := engineOn(t, cfg)
	defer eng.Close()
	var id string
	err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		r, err := c.Do(ctx, "CLIENT", "ID")
		if err != nil {
			return err
		}
		n, err := r.Int64()
		id = fmt.Sprint(n, err)
		if _, err := c.Do(ctx, "RESET"); err != nil {
			return err
		}
		_, err = c.Do(ctx, "GET", "k")
		checkServerError(t, "GET after RESET", err, "NOAUTH")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		r, err := c.Do(ctx, "CLIENT", "ID")
		if err != nil {
			return err
		}
		n, err := r.Int64()
		if got := fmt.Sprint(n, err); got != id {
			return fmt.Errorf("connection %s, want %s again", got, id)
		}
		_, err = c.Do(ctx, "GET", "k")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// What Dedicated refuses, what it does after its function returns, after
// a panic, and when the engine closes under it.
func TestDedicatedMisuse(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if err := eng.Dedicated(ctx, nil); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Dedicated(nil) = %v", err)
	}
	var kept *engine.DedicatedConn
	errFn := errors.New("fn failed")
	err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		kept = c
		for _, cmd := range [][]string{{"SUBSCRIBE", "c"}, {"MONITOR"}, {"CLIENT", "REPLY", "OFF"}, {"client", "reply", "skip"}, {"xsubscribe"}} {
			_, err := c.Do(ctx, cmd[0], cmd[1:]...)
			var cse *engine.ConnectionStateError
			if !errors.As(err, &cse) || !cse.Dedicated {
				t.Errorf("Dedicated %v: err = %v, want a *ConnectionStateError", cmd, err)
			}
		}
		if _, err := c.Do(ctx, ""); !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("empty command: %v", err)
		}
		if _, err := c.DoMulti(ctx, []string{"PING"}, []string{"SUBSCRIBE", "c"}); !errors.Is(err, engine.ErrConnectionState) {
			t.Errorf("DoMulti with SUBSCRIBE: %v", err)
		}
		if _, err := c.Do(ctx, "CLIENT", "REPLY", "ON"); err != nil {
			t.Errorf("CLIENT REPLY ON: %v", err)
		}
		// DoMulti: one round trip; error replies in their Reply.
		rs, err := c.DoMulti(ctx, []string{"SET", "m", "1"}, []string{"LPUSH", "m", "x"}, []string{"GET", "m"}, []string{"GET", "missing"})
		if len(rs) != 4 || !errors.Is(err, &engine.ServerError{Prefix: "WRONGTYPE"}) {
			t.Errorf("DoMulti = %d replies, %v", len(rs), err)
		} else {
			if v, err := rs[2].String(); err != nil || v != "1" || rs[0].Err() != nil || rs[2].Err() != nil {
				t.Errorf("DoMulti GET = %q, %v", v, err)
			}
			if !errors.Is(rs[1].Err(), &engine.ServerError{Prefix: "WRONGTYPE"}) || !rs[3].IsNil() || rs[3].Err() != nil {
				t.Errorf("DoMulti replies: %v %v", rs[1].Err(), rs[3])
			}
		}
		return errFn
	})
	if !errors.Is(err, errFn) {
		t.Fatalf("Dedicated returned %v, want fn's error", err)
	}
	if _, err := kept.Do(ctx, "PING"); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Do after Dedicated returned: %v", err)
	}

	// A panic in fn closes the connection and goes on.
	var panicked, panicID string
	func() {
		defer func() {
			if r := recover(); r != nil {
				panicked = fmt.Sprint(r)
			}
		}()
		_ = eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
			r, err := c.Do(ctx, "CLIENT", "ID")
			if err != nil {
				return err
			}
			n, _ := r.Int64()
			panicID = fmt.Sprint(n)
			if _, err := c.Do(ctx, "MULTI"); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	if panicked != "boom" || panicID == "" {
		t.Fatalf("panic = %q, want boom to go on", panicked)
	}
	// The connection was closed: the server lets it go.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := eng.Do(ctx, "CLIENT", "LIST").Await(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := r.String()
		if panicID == "" || !strings.Contains(s, "id="+panicID+" ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the connection of the panicked Dedicated is still open:\n%s", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close ends Dedicated calls in progress, also one blocked on the server
// at once (not after the drain: a blocking command is not waited for; it
// was written, so ErrOutcomeUnknown: the server may have popped an
// element for it), fails later calls with ErrClosed, closes every
// dedicated connection and leaves no goroutine.
func TestDedicatedClose(t *testing.T) {
	srv := valkeytest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	// One connection idle in the pool, one blocked in BLPOP, one whose
	// function is between calls.
	if err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		_, err := c.Do(ctx, "PING")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	blocked, between := make(chan error, 1), make(chan error, 1)
	inBetween, closed := make(chan struct{}), make(chan struct{})
	go func() {
		blocked <- eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
			_, err := c.Do(ctx, "BLPOP", "never", "0")
			return err
		})
	}()
	go func() {
		between <- eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
			close(inBetween)
			<-closed
			_, err := c.Do(ctx, "PING")
			return err
		})
	}()
	<-inBetween
	// The BLPOP is on the server once the server lists it as blocked.
	for {
		r, err := eng.Do(ctx, "INFO", "clients").Await(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := r.String(); strings.Contains(s, "blocked_clients:1") {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	close(closed)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close took %s with a Dedicated call blocked on the server", took)
	}
	if err := <-blocked; !errors.Is(err, engine.ErrOutcomeUnknown) || errors.Is(err, engine.ErrClosed) {
		t.Fatalf("blocked Dedicated after Close = %v, want ErrOutcomeUnknown (written), not ErrClosed", err)
	}
	if s := eng.Stats(); s.OutcomeUnknown != 1 {
		t.Errorf("Stats.OutcomeUnknown = %d after Close, want 1 (the Dedicated BLPOP)", s.OutcomeUnknown)
	}
	if err := <-between; !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Do after Close = %v, want ErrClosed", err)
	}
	if err := eng.Dedicated(ctx, func(*engine.DedicatedConn) error { return nil }); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Dedicated after Close = %v", err)
	}
}

// Cluster mode: DedicatedFor goes to the primary that owns the key's
// slot; MULTI ... EXEC run by hand there; a key of another slot's node
// gets MOVED as a *ServerError; state commands are refused on Do.
func TestDedicatedCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{ReplicasPerPrimary: -1})
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	for _, cmd := range [][]string{{"MULTI"}, {"READONLY"}, {"ASKING"}, {"SELECT", "0"}} {
		wantStateError(t, fmt.Sprint("cluster Do ", cmd), eng.Do(ctx, cmd[0], cmd[1:]...).Err(ctx))
	}
	slot, err := c.KeySlot("{user:1}:a")
	if err != nil {
		t.Fatal(err)
	}
	owner, err := c.NodeForSlot(slot)
	if err != nil {
		t.Fatal(err)
	}
	var other string // a key served by another primary
	for i := 0; other == ""; i++ {
		k := fmt.Sprintf("other:%d", i)
		s, err := c.KeySlot(k)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := c.NodeForSlot(s); err == nil && n.Addr() != owner.Addr() {
			other = k
		}
	}
	err = eng.DedicatedFor(ctx, "{user:1}:a", func(d *engine.DedicatedConn) error {
		if d.Addr() != owner.Addr() {
			return fmt.Errorf("DedicatedFor on %s, want the slot's owner %s", d.Addr(), owner.Addr())
		}
		rs, err := d.DoMulti(ctx, []string{"MULTI"}, []string{"SET", "{user:1}:a", "1"}, []string{"INCR", "{user:1}:b"}, []string{"EXEC"})
		if err != nil {
			return err
		}
		arr, err := rs[3].Array()
		if err != nil || len(arr) != 2 {
			return fmt.Errorf("EXEC = %v, %v", arr, err)
		}
		_, err = d.Do(ctx, "GET", other)
		var se *engine.ServerError
		if !errors.As(err, &se) || se.Prefix != "MOVED" {
			return fmt.Errorf("GET %s on %s: %v, want MOVED", other, d.Addr(), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := eng.Get(ctx, "{user:1}:b").Await(ctx); err != nil || v != "1" {
		t.Fatalf("GET {user:1}:b = %q, %v", v, err)
	}
	// Keyless: some primary.
	err = eng.Dedicated(ctx, func(d *engine.DedicatedConn) error {
		r, err := d.Do(ctx, "ROLE")
		if err != nil {
			return err
		}
		arr, err := r.Array()
		if err != nil || len(arr) == 0 {
			return fmt.Errorf("ROLE = %v, %v", arr, err)
		}
		if role, _ := arr[0].String(); role != "master" {
			return fmt.Errorf("Dedicated on a %s", role)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// budgetHook ends the context of every INCR it sees (a hook applying a
// per-request budget already spent).
type budgetHook struct{}

func (budgetHook) PreExecution(ctx context.Context, cmd hooks.Command) context.Context {
	if !strings.EqualFold(cmd.Name, "INCR") {
		return ctx
	}
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	return ctx
}

// A DedicatedConn command whose PreExecution hook returned an ended
// context is not sent and fails with that context's error; the connection
// stays usable. It failed with ErrOutcomeUnknown ("the command was sent")
// and the connection was thrown away (QA-AA 3).
func TestDedicatedHookEndedContext(t *testing.T) {
	srv := valkeytest.Start(t)
	cfg, _ := withLogCheck(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithHooks(budgetHook{}))
	eng := engineOn(t, cfg)
	defer eng.Close()
	ctx := ctxT(t)
	err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		for range 3 {
			_, err := c.Do(ctx, "INCR", "ded:budget")
			if !errors.Is(err, context.Canceled) || errors.Is(err, engine.ErrOutcomeUnknown) {
				t.Errorf("INCR under an ended hook context: %v, want context.Canceled, not an unknown outcome", err)
			}
		}
		_, err := c.Do(ctx, "SET", "ded:budget:after", "1")
		return err
	})
	if err != nil {
		t.Fatalf("the connection after the refused INCRs: %v", err)
	}
	if v, err := eng.Get(ctx, "ded:budget").Await(ctx); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("GET ded:budget = %q, %v: an INCR ran", v, err)
	}
}

// TestDedicatedLostConnectionNotSent: a DedicatedConn call made after the
// server closed its connection (CLIENT KILL between two calls) fails with
// ErrNotSent, the documented class of a command known not written, and
// the SET did not run; the calls after it fail at once with the same.
func TestDedicatedLostConnectionNotSent(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		r, err := c.Do(ctx, "CLIENT", "ID")
		if err != nil {
			return err
		}
		id, _ := r.Int64()
		if err := killIdle(srv, id, time.Now()); err != nil {
			return err
		}
		for i := range 2 {
			_, err := c.Do(ctx, "SET", "dedicated-lost", "v")
			if !errors.Is(err, engine.ErrNotSent) || errors.Is(err, engine.ErrOutcomeUnknown) {
				t.Errorf("call %d after the kill: %v, want ErrNotSent and not ErrOutcomeUnknown", i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := srv.Do("EXISTS", "dedicated-lost"); err != nil || n != int64(0) {
		t.Fatalf("EXISTS dedicated-lost = %v, %v: the SET reported not sent ran", n, err)
	}
}

// killIdle kills the server's client id (CLIENT KILL) and returns once the
// server no longer lists it and more than twice valkeygo's peekGap has
// passed since last, the connection's last round trip: the condition
// under which the driver checks a connection before writing on it, so
// that the next command on it is known not sent.
func killIdle(srv *valkeytest.Server, id int64, last time.Time) error {
	sid := strconv.FormatInt(id, 10)
	if _, err := srv.Do("CLIENT", "KILL", "ID", sid); err != nil {
		return err
	}
	for {
		list, err := srv.Do("CLIENT", "LIST")
		if err != nil {
			return err
		}
		if !strings.Contains(fmt.Sprint(list), "id="+sid+" ") && time.Since(last) > 25*time.Millisecond {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}
