package glide_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/glide"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// killClient kills the server's client id (CLIENT KILL ID) from a
// connection of the test's own and waits until the server no longer
// lists it.
func killClient(t *testing.T, srv *valkeytest.Server, id int64) {
	t.Helper()
	if _, err := srv.Do("CLIENT", "KILL", "ID", strconv.FormatInt(id, 10)); err != nil {
		t.Fatalf("CLIENT KILL ID %d: %v", id, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := srv.Do("CLIENT", "LIST", "ID", strconv.FormatInt(id, 10))
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := v.(string); s == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("client %d still listed 5 s after CLIENT KILL", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func glideEngine(t *testing.T, srv *valkeytest.Server) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()).WithDriver(glide.Name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}

// TestWatchAcrossGlideReconnect: glide replaces a lost connection on its
// own, and the new one has lost the WATCH; the transaction must not then
// run unchecked over a concurrent write (QA-P 1: the other client's 555
// was overwritten with "100-spent", 2 of 2 runs).
func TestWatchAcrossGlideReconnect(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := glideEngine(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := srv.Do("SET", "acct", "100"); err != nil {
		t.Fatal(err)
	}
	err := eng.Watch(ctx, func(tx *engine.Tx) error {
		v, err := tx.Read().Get(ctx, "acct")
		if err != nil {
			return err
		}
		r, err := tx.Read().Do(ctx, "CLIENT", "ID")
		if err != nil {
			return err
		}
		id, err := r.Int64()
		if err != nil {
			return err
		}
		if _, err := srv.Do("SET", "acct", "555"); err != nil { // a concurrent writer: must abort this transaction
			return err
		}
		killClient(t, srv, id)
		tx.Set("acct", v+"-spent", 0)
		return nil
	}, "acct")
	final, _ := srv.Do("GET", "acct")
	if final != "555" {
		t.Fatalf("acct = %v after Watch (err %v): the transaction ran without its WATCH over the concurrent write", final, err)
	}
	if err == nil {
		t.Fatal("Watch returned nil, yet its transaction did not run")
	}
	t.Logf("Watch: %v", err)
}

// TestDedicatedAcrossGlideReconnect: a Dedicated connection's SELECT is
// lost when glide replaces the connection; the next call must fail as not
// sent, not write to database 0 (QA-P 1).
func TestDedicatedAcrossGlideReconnect(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := glideEngine(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var setErr error
	err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		if _, err := c.Do(ctx, "SELECT", "1"); err != nil {
			return err
		}
		r, err := c.Do(ctx, "CLIENT", "ID")
		if err != nil {
			return err
		}
		id, err := r.Int64()
		if err != nil {
			return err
		}
		killClient(t, srv, id)
		_, setErr = c.Do(ctx, "SET", "db1key", "x")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := srv.Do("EXISTS", "db1key"); n != int64(0) {
		t.Fatalf("EXISTS db1key in database 0 = %v: the SET went to database 0 after the reconnect (its error: %v)", n, setErr)
	}
	if !errors.Is(setErr, drivers.ErrNotSent) {
		t.Fatalf("SET after the reconnect: %v, want an error wrapping drivers.ErrNotSent", setErr)
	}
	t.Logf("SET after the reconnect: %v", setErr)
}

// MULTI ... EXEC sent one command at a time on a Dedicated connection
// (documented: every command runs there, stateful ones included). The
// check that glide has not replaced the connection (CLIENT ID) was queued
// inside the MULTI: its reply, QUEUED, failed every call after MULTI
// (qa-AE 1). A replacement inside the MULTI is still seen: the check
// sends MULTI, which only a connection outside MULTI accepts.
func TestDedicatedMultiByHand(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := glideEngine(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var exec engine.Reply
	err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		for _, args := range [][]string{{"MULTI"}, {"SET", "mk", "v"}, {"INCR", "mn"}, {"GET", "mk"}} {
			r, err := c.Do(ctx, args[0], args[1:]...)
			if err != nil {
				return fmt.Errorf("%v: %w", args, err)
			}
			if s, _ := r.String(); args[0] != "MULTI" && s != "QUEUED" {
				return fmt.Errorf("%v answered %q, want QUEUED", args, s)
			}
		}
		var err error
		exec, err = c.Do(ctx, "EXEC")
		return err
	})
	if err != nil {
		t.Fatalf("MULTI by hand on a Dedicated connection: %v", err)
	}
	if v, err := exec.Any(); err != nil || fmt.Sprint(v) != "[OK 1 v]" {
		t.Fatalf("EXEC = %v (%v), want [OK 1 v]", v, err)
	}

	// Glide replaces the connection inside the MULTI: the next call
	// fails, not sent, and nothing of the transaction runs.
	err = eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		if _, err := c.Do(ctx, "MULTI"); err != nil {
			return err
		}
		if _, err := c.Do(ctx, "INCR", "mn"); err != nil {
			return err
		}
		killClient(t, srv, dedicatedClientID(t, srv))
		if _, err := c.Do(ctx, "INCR", "mn"); !errors.Is(err, drivers.ErrNotSent) {
			t.Errorf("INCR after glide replaced the connection inside MULTI: %v, want not sent", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := srv.Do("GET", "mn"); err != nil || fmt.Sprint(v) != "1" {
		t.Fatalf("mn = %v (%v), want 1: nothing of the cut transaction ran", v, err)
	}
}

// dedicatedClientID returns the id of the one client of the server inside
// MULTI (flags x in CLIENT LIST).
func dedicatedClientID(t *testing.T, srv *valkeytest.Server) int64 {
	t.Helper()
	v, err := srv.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := v.(string)
	for _, line := range strings.Split(s, "\n") {
		var id int64
		fields := strings.Fields(line)
		multi := false
		for _, f := range fields {
			switch {
			case strings.HasPrefix(f, "id="):
				id, _ = strconv.ParseInt(strings.TrimPrefix(f, "id="), 10, 64)
			case f == "flags=x":
				multi = true
			}
		}
		if multi {
			return id
		}
	}
	t.Fatalf("no client inside MULTI in CLIENT LIST:\n%s", s)
	return 0
}

// TestDedicatedMultiStateStale: the MULTI state the driver tracks for its
// connection check can be wrong; the check then finds the connection
// outside MULTI and carries on, as valkey-go's Dedicated does
// (review-29): RESET ends a MULTI (the server runs it, not queues it),
// and a MULTI the server refused (NOPERM) never began. Before, the next
// call failed as if glide had replaced the connection, and so did every
// later one.
func TestDedicatedMultiStateStale(t *testing.T) {
	srv := valkeytest.Start(t)
	const pass = "glide-nomulti-Pa55word-7c2e"
	if _, err := srv.Do("ACL", "SETUSER", "nomulti", "on", ">"+pass, "~*", "&*", "+@all", "-multi"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eng := glideEngine(t, srv)
	err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		for _, args := range [][]string{{"MULTI"}, {"RESET"}, {"SET", "after-reset", "v"}, {"GET", "after-reset"}} {
			if _, err := c.Do(ctx, args[0], args[1:]...); err != nil {
				return fmt.Errorf("%v: %w", args, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("MULTI, RESET, then commands on a Dedicated connection: %v", err)
	}
	if v, _ := srv.Do("GET", "after-reset"); v != "v" {
		t.Errorf("after-reset = %v, want v", v)
	}

	noMulti, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()).WithDriver(glide.Name).WithUsername("nomulti").WithPassword(pass))
	if err != nil {
		t.Fatal(err)
	}
	defer noMulti.Close()
	err = noMulti.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		if _, err := c.Do(ctx, "MULTI"); !errors.Is(err, &engine.ServerError{Prefix: "NOPERM"}) {
			return fmt.Errorf("MULTI as a user without it: %v, want NOPERM", err)
		}
		for range 2 {
			if r, err := c.Do(ctx, "INCR", "after-noperm"); err != nil {
				return fmt.Errorf("INCR after the refused MULTI: %w", err)
			} else if s, _ := r.String(); s == "QUEUED" {
				return errors.New("INCR after the refused MULTI was queued")
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if v, _ := srv.Do("GET", "after-noperm"); fmt.Sprint(v) != "2" {
		t.Errorf("after-noperm = %v, want 2", v)
	}
}
