package engine_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// busyIncr increments KEYS[1], then keeps the server busy for ARGV[1]
// microseconds: a transaction or dedicated call still being answered.
const busyIncr = `redis.call('INCR', KEYS[1])
local s = redis.call('TIME')
local start = s[1] * 1000000 + s[2]
while true do
	local n = redis.call('TIME')
	if n[1] * 1000000 + n[2] - start > tonumber(ARGV[1]) then break end
end
return 1`

// waitBusy waits until srv runs a script: a PING on a new connection
// gets no answer within 150 ms (an idle server answers in well under
// that, two CPU hogs and -race tests included; the scripts run 1 s and
// more).
func waitBusy(t *testing.T, srv *valkeytest.Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", srv.Addr(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(150 * time.Millisecond))
		_, err = c.Write([]byte("PING\r\n"))
		if err == nil {
			_, err = c.Read(make([]byte, 16))
		}
		c.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not get busy within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func getInt(t *testing.T, srv *valkeytest.Server, key string) int {
	t.Helper()
	r, err := srv.Do("GET", key)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.(string)
	n, _ := strconv.Atoi(s)
	return n
}

// Close lets a transaction or dedicated call already written be answered
// (within DrainTimeout), as it does the connection actors' pipelines,
// rather than closing its connection under it: the caller learns that it
// ran. Before, Close closed the connection at once and a committed
// transaction came back as ErrOutcomeUnknown, a dedicated write that ran
// as ErrClosed ("not written").
func TestCloseDrainsTxAndDedicated(t *testing.T) {
	for _, via := range []string{"Tx", "Dedicated"} {
		t.Run(via, func(t *testing.T) {
			eng, srv := newEngine(t)
			ctx := ctxT(t)
			done := make(chan error, 1)
			go func() {
				if via == "Tx" {
					tx := eng.Tx()
					tx.Do("EVAL", busyIncr, "1", "x", "1000000")
					done <- tx.Exec(ctx)
					return
				}
				done <- eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
					_, err := c.Do(ctx, "EVAL", busyIncr, "1", "x", "1000000")
					return err
				})
			}()
			waitBusy(t, srv)
			start := time.Now()
			if err := eng.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			took := time.Since(start)
			if err := <-done; err != nil {
				t.Fatalf("%s answered during Close's drain: %v, want nil", via, err)
			}
			if took > 3*time.Second {
				t.Fatalf("Close took %s", took)
			}
			if n := getInt(t, srv, "x"); n != 1 {
				t.Fatalf("x = %d, want 1", n)
			}
		})
	}
}

// A dedicated call Close cuts after the drain ran on the server: it fails
// with ErrOutcomeUnknown, never with ErrClosed, which says "not written".
func TestCloseCutsDedicatedOutcomeUnknown(t *testing.T) {
	eng, srv := newEngine(t, func(c config.Config) config.Config {
		c.DrainTimeout = 50 * time.Millisecond
		return c
	})
	ctx := ctxT(t)
	done := make(chan error, 1)
	go func() {
		done <- eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
			_, err := c.Do(ctx, "EVAL", busyIncr, "1", "x", "1500000")
			return err
		})
	}()
	waitBusy(t, srv)
	_ = eng.Close()
	err := <-done
	if !errors.Is(err, engine.ErrOutcomeUnknown) || errors.Is(err, engine.ErrClosed) {
		t.Fatalf("a dedicated call cut by Close after the drain: %v, want ErrOutcomeUnknown and not ErrClosed", err)
	}
	waitCond(t, 10*time.Second, "x = 1 once the script ends", func() bool { return getInt(t, srv, "x") == 1 })
}

// After the server closed the idle pooled connections (CLIENT KILL, a
// restart), the next Tx and Dedicated call go out on new connections:
// nothing was written on the dead ones, so they are sent again, as the
// connection actors' commands are. Before, each failed once per dead
// connection ("transaction not executed", "command not sent").
func TestTxDedicatedAfterIdleConnsKilled(t *testing.T) {
	eng, srv := newEngine(t)
	ctx := ctxT(t)
	for round := range 3 {
		tx := eng.Tx()
		tx.Do("INCR", "x")
		if err := tx.Exec(ctx); err != nil {
			t.Fatalf("round %d: Tx before the kill: %v", round, err)
		}
		if err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
			_, err := c.Do(ctx, "INCR", "x")
			return err
		}); err != nil {
			t.Fatalf("round %d: Dedicated before the kill: %v", round, err)
		}
		if _, err := srv.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
			t.Fatal(err)
		}
		// Idle for less than the pool's PING check (1 s): the dead
		// connections are lent as they are.
		time.Sleep(100 * time.Millisecond)
		tx = eng.Tx()
		tx.Do("INCR", "x")
		if err := tx.Exec(ctx); err != nil {
			t.Fatalf("round %d: Tx after the kill: %v", round, err)
		}
		if err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
			_, err := c.Do(ctx, "INCR", "x")
			return err
		}); err != nil {
			t.Fatalf("round %d: Dedicated after the kill: %v", round, err)
		}
	}
	if n := getInt(t, srv, "x"); n != 12 {
		t.Fatalf("x = %d, want 12", n)
	}
}

// The commands a batch writer fails because its own Close stopped it are
// reported to OnError as "batch writer closed" (matching ErrClosed), not
// as "engine closed" while the engine still serves.
func TestBatchWriterOwnCloseError(t *testing.T) {
	eng, srv := newEngine(t, func(c config.Config) config.Config {
		c.DrainTimeout = 100 * time.Millisecond
		return c
	})
	ctx := ctxT(t)
	var mu sync.Mutex
	texts := map[string]int{}
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{OnError: func(_ []string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if !errors.Is(err, engine.ErrClosed) {
			return // a pipeline in flight cut after the drain: outcome unknown
		}
		texts[err.Error()]++
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil { // nothing drains: the writes stay queued
		t.Fatal(err)
	}
	defer func() { _ = srv.Resume() }()
	for i := range 5000 {
		if err := w.Set(ctx, "bw:"+strconv.Itoa(i), "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.Close(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with an ended ctx: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if texts["vactor: batch writer closed"] == 0 || texts["vactor: engine closed"] != 0 {
		t.Fatalf("OnError errors matching ErrClosed: %v; want \"vactor: batch writer closed\" only", texts)
	}
}
