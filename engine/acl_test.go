package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// cmdStat returns field (calls, rejected_calls, failed_calls) of cmd
// (lower case) in srv's INFO commandstats; 0 when cmd never ran.
func cmdStat(t testing.TB, srv *valkeytest.Server, cmd, field string) int64 {
	t.Helper()
	r, err := srv.Do("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := r.(string)
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":")
		if !ok {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			if k, v, _ := strings.Cut(kv, "="); k == field {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("INFO commandstats %q: %v", line, err)
				}
				return n
			}
		}
	}
	return 0
}

// whoami returns the ACL user the engine's connection actors run as.
func whoami(t testing.TB, ctx context.Context, eng *engine.Engine) string {
	t.Helper()
	r, err := eng.Do(ctx, "ACL", "WHOAMI").Await(ctx)
	if err != nil {
		t.Fatalf("ACL WHOAMI: %v", err)
	}
	s, err := r.String()
	if err != nil {
		t.Fatalf("ACL WHOAMI: %v", err)
	}
	return s
}

// A command the ACL user may not run fails with NOPERM as a *ServerError,
// is sent once (the server counts one rejected call), even when marked
// idempotent, and leaves the connection serving the user's other
// commands.
func TestACLNoPermNotRetried(t *testing.T) {
	srv := valkeytest.Start(t)
	if err := srv.AddUser("app", "app-pass", "~*", "&*", "+@all", "-get"); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithUsername("app").WithPassword("app-pass"))
	defer eng.Close()
	if who := whoami(t, ctx, eng); who != "app" {
		t.Fatalf("ACL WHOAMI = %q, want app", who)
	}
	for i, cctx := range []context.Context{ctx, engine.WithIdempotent(ctx)} {
		_, err := eng.Get(cctx, "k").Await(ctx)
		var se *engine.ServerError
		if !errors.As(err, &se) || se.Prefix != "NOPERM" {
			t.Fatalf("GET as a user without +get = %v, want a NOPERM *ServerError", err)
		}
		if got := cmdStat(t, srv, "get", "rejected_calls"); got != int64(i+1) {
			t.Fatalf("after %d GETs the server rejected %d, want %d (no retry)", i+1, got, i+1)
		}
	}
	if err := eng.Set(ctx, "k", "v", 0).Err(ctx); err != nil {
		t.Fatalf("SET after NOPERM: %v", err)
	}
	if st := eng.Stats(); st.Retries != 0 || st.Reconnects != 0 {
		t.Fatalf("Stats: %d retries, %d reconnects after NOPERM; want 0 and 0", st.Retries, st.Reconnects)
	}
}

// rotating is a CredentialsProvider whose password can be changed; it
// counts its calls.
type rotating struct {
	mu    sync.Mutex
	user  string
	pass  string
	err   error
	calls int
}

func (r *rotating) provide(ctx context.Context) (string, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if _, ok := ctx.Deadline(); !ok {
		return "", "", errors.New("provider called without a deadline")
	}
	return r.user, r.pass, r.err
}

func (r *rotating) rotate(pass string) {
	r.mu.Lock()
	r.pass = pass
	r.mu.Unlock()
}

func (r *rotating) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// A password rotated on the server and in the CredentialsProvider: after
// a server restart the connection actors and a subscriber reconnect with
// the new password, and every kind of connection dialled afterwards uses
// it.
func TestCredentialsProviderRotation(t *testing.T) {
	srv := valkeytest.Start(t)
	if err := srv.AddUser("app", "old-pass", "~*", "&*", "+@all"); err != nil {
		t.Fatal(err)
	}
	creds := &rotating{user: "app", pass: "old-pass"}
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithCredentialsProvider(creds.provide))
	defer eng.Close()
	if who := whoami(t, ctx, eng); who != "app" {
		t.Fatalf("ACL WHOAMI = %q, want app (the provider's user)", who)
	}
	// A subscriber lives across the restart: it resubscribes over a new
	// connection, with the new password.
	sub, err := eng.Subscribe(ctx, "news")
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()

	if err := srv.SetUserPassword("app", "new-pass"); err != nil {
		t.Fatal(err)
	}
	creds.rotate("new-pass")
	calls := creds.count()
	if err := srv.Restart(); err != nil { // the server keeps the user, with the new password only
		t.Fatal(err)
	}
	// The connection actors reconnect on their own; commands succeed
	// again once they have.
	deadline := time.Now().Add(20 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := eng.Set(cctx, "after", "v", 0).Err(cctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SET after the restart still fails: %v", err)
		}
	}
	if who := whoami(t, ctx, eng); who != "app" {
		t.Fatalf("ACL WHOAMI after the restart = %q, want app", who)
	}
	if creds.count() == calls {
		t.Fatal("the provider was not asked again after the restart")
	}
	for resubscribed := false; !resubscribed; {
		select {
		case ev := <-sub.Channel():
			resubscribed = ev.Kind == engine.Resubscribed
		case <-ctx.Done():
			t.Fatal("the subscriber did not resubscribe after the restart")
		}
	}
	if err := eng.Publish(ctx, "news", "rotated").Err(ctx); err != nil {
		t.Fatalf("PUBLISH: %v", err)
	}
	for got := false; !got; {
		select {
		case ev := <-sub.Channel():
			got = ev.Kind == engine.SubMessage && ev.Message.Payload == "rotated"
		case <-ctx.Done():
			t.Fatal("no message on the resubscribed subscription")
		}
	}
	// Every other kind of connection, dialled after the rotation.
	exerciseDialPaths(t, ctx, eng, "after")
}

// A connection lent by Dedicated is RESET when given back, and
// authenticates again as the provider's user, not as the default user.
func TestDedicatedResetKeepsProviderUser(t *testing.T) {
	srv := valkeytest.Start(t)
	if err := srv.AddUser("app", "app-pass", "~*", "&*", "+@all"); err != nil {
		t.Fatal(err)
	}
	creds := &rotating{user: "app", pass: "app-pass"}
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithCredentialsProvider(creds.provide))
	defer eng.Close()
	var ids []string
	for range 2 {
		err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
			rs, err := c.DoMulti(ctx, []string{"CLIENT", "ID"}, []string{"ACL", "WHOAMI"})
			if err != nil {
				return err
			}
			id, _ := rs[0].Int64()
			who, _ := rs[1].String()
			if who != "app" {
				t.Errorf("Dedicated connection runs as %q, want app", who)
			}
			ids = append(ids, strconv.FormatInt(id, 10))
			return nil
		})
		if err != nil {
			t.Fatalf("Dedicated: %v", err)
		}
	}
	if ids[0] != ids[1] {
		t.Fatalf("the second Dedicated got connection %s, not the reset one %s: nothing tested", ids[1], ids[0])
	}
}

// A failing CredentialsProvider fails New with a *ConnectError that says
// so and wraps the provider's error.
func TestCredentialsProviderErrorFailsNew(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Password: "provider-Pa55word-6f1e"})
	boom := errors.New("secret store unreachable")
	creds := &rotating{err: boom}
	err := wantNewFails(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithCredentialsProvider(creds.provide),
		"CredentialsProvider failed", config.DefaultConfig().DialTimeout)
	if !errors.Is(err, boom) {
		t.Fatalf("error %v does not wrap the provider's", err)
	}
	// Nothing the server said: the handshake was never sent (the NOAUTH
	// with which a server requiring a password answered valkey-go's Close
	// PING led the text, qa-AI).
	var se *engine.ServerError
	if strings.Contains(err.Error(), "NOAUTH") || strings.Contains(err.Error(), "server closed") || errors.As(err, &se) {
		t.Fatalf("error %v blames the server", err)
	}
}

// A CredentialsProvider that panics fails New as one that returns an
// error does, instead of ending the program (the driver calls it on a
// goroutine of its own).
func TestCredentialsProviderPanicFailsNew(t *testing.T) {
	srv := valkeytest.Start(t)
	provider := func(context.Context) (string, string, error) { panic("vault client is nil") }
	err := wantNewFails(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithCredentialsProvider(provider),
		"CredentialsProvider failed", config.DefaultConfig().DialTimeout)
	if !strings.Contains(err.Error(), "panic: vault client is nil") {
		t.Fatalf("error %v does not give the panic's value", err)
	}
}

// A credentials provider that does not return (a secrets manager that
// hangs, ignoring its ctx) fails the dial at DialTimeout with a Reason that
// names the provider, not the server's silence (qa-AD 9: "no answer
// within the dial timeout").
func TestCredentialsProviderHangNamed(t *testing.T) {
	srv := valkeytest.Start(t)
	release := make(chan struct{})
	defer close(release) // the provider's goroutine ends with the test
	hang := func(context.Context) (string, string, error) {
		<-release
		return "", "", nil
	}
	cfg := config.DefaultConfig().WithAddrs(srv.Addr()).WithCredentialsProvider(hang).WithDialTimeout(500 * time.Millisecond)
	err := wantNewFails(t, cfg, "Config.CredentialsProvider did not return within the dial timeout", 5*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v: want it to wrap context.DeadlineExceeded", err)
	}
}

// TestSlowProviderFillsPool: New dials its pool's connections at once
// (and they share the provider's calls), so a credentials provider that
// takes a quarter of DialTimeout does not make a pool of 8 miss the
// timeout (review-29: dialled one after
// another, the fourth did, and the error blamed the provider).
func TestSlowProviderFillsPool(t *testing.T) {
	srv := valkeytest.Start(t)
	var calls atomic.Int64
	provider := func(ctx context.Context) (string, string, error) {
		calls.Add(1)
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return "", "", ctx.Err()
		}
		return "", "", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()).WithCredentialsProvider(provider).WithPoolSize(8).WithDialTimeout(time.Second))
	if err != nil {
		t.Fatalf("New with a pool of 8 and a provider answering in 250 ms: %v", err)
	}
	defer eng.Close()
	if n := calls.Load(); n < 1 || n > 8 {
		t.Fatalf("provider called %d times for a pool of 8", n)
	}
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// providerBlame counts the failed dials a PostConnection hook sees, by
// whether their error blames the credentials provider.
type providerBlame struct {
	mu              sync.Mutex
	provider, other int
}

func (d *providerBlame) PostConnection(ev hooks.Dialed) {
	if ev.Err == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if strings.Contains(ev.Err.Error(), "CredentialsProvider did not return") {
		d.provider++
	} else {
		d.other++
	}
}

func (d *providerBlame) counts() (provider, other int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.provider, d.other
}

// TestSilentServerNotBlamedOnProvider: with the server paused, dials time
// out waiting for its handshake while a working provider (100 ms) is
// called by the other connections' dials: none of those timeouts blames
// the provider (review-29: half of them did, the provider's calls being
// the engine's, not the dial's).
func TestSilentServerNotBlamedOnProvider(t *testing.T) {
	srv := valkeytest.Start(t)
	provider := func(ctx context.Context) (string, string, error) {
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
		return "", "", nil
	}
	d := &providerBlame{}
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithCredentialsProvider(provider).WithPoolSize(8).
		WithDialTimeout(time.Second).WithCircuitBreakerThreshold(100000).WithHooks(d))
	defer eng.Close()
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Resume() }()
	// Commands that time out make the connection actors reconnect, and
	// their dials time out on the paused server.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 8 {
		c, cc := context.WithTimeout(ctx, 100*time.Millisecond)
		_ = eng.Get(c, fmt.Sprintf("blame:%d", i)).Err(c)
		cc()
	}
	for {
		p, o := d.counts()
		if p+o >= 12 {
			if p > 0 {
				t.Fatalf("%d of %d dials to a paused server blamed the credentials provider, which answered in 100 ms", p, p+o)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("only %d failed dials seen", p+o)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHungProviderOneCall: a credentials provider that stops returning
// (it ignores its ctx) while the connections keep being lost: the dials
// fail naming it, and however many there are, at most 4 calls of it are
// under way (review-29: one goroutine blocked in it per dial attempt,
// unbounded, outliving Close). Once it returns, the engine connects
// again.
func TestHungProviderOneCall(t *testing.T) {
	srv := valkeytest.Start(t)
	var hang atomic.Bool
	var inside, maxInside atomic.Int64
	release := make(chan struct{})
	provider := func(ctx context.Context) (string, string, error) {
		if hang.Load() {
			n := inside.Add(1)
			defer inside.Add(-1)
			for m := maxInside.Load(); n > m && !maxInside.CompareAndSwap(m, n); m = maxInside.Load() {
			}
			<-release // ignores ctx: a secrets manager that hangs
		}
		return "", "", nil
	}
	d := &providerBlame{}
	// 8 connection actors: each loss makes 8 dials at once.
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithCredentialsProvider(provider).WithPoolSize(8).
		WithDialTimeout(300*time.Millisecond).WithCircuitBreakerOpenTimeout(200*time.Millisecond).WithHooks(d))
	defer eng.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := eng.Set(ctx, "hung", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	hang.Store(true)
	hungAt := time.Now()
	for {
		if _, err := srv.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
			t.Fatal(err)
		}
		c, cc := context.WithTimeout(ctx, 100*time.Millisecond)
		_ = eng.Get(c, "hung").Err(c)
		cc()
		if p, _ := d.counts(); p >= 10 {
			break
		}
		if ctx.Err() != nil {
			p, o := d.counts()
			t.Fatalf("failed dials: %d naming the provider, %d others", p, o)
		}
	}
	p, _ := d.counts()
	if n := maxInside.Load(); n > 4 {
		t.Errorf("%d calls of the hung provider at once for %d dials failed in %v, want at most 4", n, p, time.Since(hungAt))
	}
	hang.Store(false)
	close(release)
	for {
		c, cc := context.WithTimeout(ctx, time.Second)
		v, err := eng.Get(c, "hung").Await(c)
		cc()
		if err == nil && v == "v" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no GET after the provider returned: %v", err)
		}
	}
}

// TestProviderHungOnceThenAnswers: a provider call that hung once (it
// ignores its ctx) does not fail the dials after its deadline: they call
// the provider again, which answers (review-30: every later dial joined
// the hung call and failed).
func TestProviderHungOnceThenAnswers(t *testing.T) {
	srv := valkeytest.Start(t)
	var hang atomic.Bool
	release := make(chan struct{})
	defer close(release)
	provider := func(ctx context.Context) (string, string, error) {
		if hang.CompareAndSwap(true, false) {
			<-release
		}
		return "", "", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithCredentialsProvider(provider).WithDialTimeout(500*time.Millisecond))
	defer eng.Close()
	hang.Store(true)
	if err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error { _, err := c.Do(ctx, "PING"); return err }); err == nil {
		t.Fatal("Dedicated succeeded while its provider call hung")
	}
	for i := range 3 {
		if err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error { _, err := c.Do(ctx, "PING"); return err }); err != nil {
			t.Fatalf("Dedicated %d after the hung call, the provider answering: %v", i, err)
		}
	}
}
