package valkeygo_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/valkeygo"
	"github.com/vactor-io/vactor/valkeytest"
)

// waitTimeout bounds waits that should take a fraction of it.
const waitTimeout = 10 * time.Second

func dial(t *testing.T, opts drivers.Options) *valkeygo.Conn {
	t.Helper()
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 5 * time.Second
	}
	c, err := valkeygo.Driver{}.Dial(context.Background(), opts)
	if err != nil {
		t.Fatalf("Dial(%s): %v", opts.Addr, err)
	}
	conn, ok := c.(*valkeygo.Conn)
	if !ok {
		t.Fatalf("Dial returned %T, want *valkeygo.Conn", c)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// clientsNamed returns the CLIENT LIST lines of the connections named name.
func clientsNamed(t *testing.T, c drivers.ValkeyConn, name string) []string {
	t.Helper()
	list, err := c.Do(context.Background(), c.B().ClientList().Build()).ToString()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	var out []string
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") {
			out = append(out, line)
		}
	}
	return out
}

// A pipeline's replies come back in order, each with its own type; a
// server error fails only its own command.
func TestDialDoMultiInOrder(t *testing.T) {
	srv := valkeytest.Start(t)
	conn := dial(t, drivers.Options{Addr: srv.Addr()})
	ctx := context.Background()
	b := conn.B()
	res := conn.DoMulti(ctx,
		b.Set().Key("k").Value("v1").Build(),
		b.Get().Key("k").Build(),
		b.Incr().Key("n").Build(),
		b.Incr().Key("n").Build(),
		b.Get().Key("missing").Build(),
		b.Lpush().Key("k").Element("x").Build(), // WRONGTYPE: k holds a string
		b.Rpush().Key("l").Element("a", "b", "c").Build(),
		b.Lrange().Key("l").Start(0).Stop(-1).Build(),
		b.Get().Key("k").Build(),
	)
	if len(res) != 9 {
		t.Fatalf("DoMulti of 9 commands returned %d results", len(res))
	}
	wantStr := func(i int, want string) {
		t.Helper()
		if got, err := res[i].ToString(); err != nil || got != want {
			t.Fatalf("result %d = (%q, %v), want %q", i, got, err, want)
		}
	}
	wantInt := func(i int, want int64) {
		t.Helper()
		if got, err := res[i].AsInt64(); err != nil || got != want {
			t.Fatalf("result %d = (%d, %v), want %d", i, got, err, want)
		}
	}
	wantStr(0, "OK")
	wantStr(1, "v1")
	wantInt(2, 1)
	wantInt(3, 2)
	if err := res[4].Error(); !valkey.IsValkeyNil(err) {
		t.Fatalf("result 4 (GET missing) error %v, want valkey nil", err)
	}
	var verr *valkey.ValkeyError
	if err := res[5].Error(); !errors.As(err, &verr) || !strings.HasPrefix(err.Error(), "WRONGTYPE") || res[5].NonValkeyError() != nil {
		t.Fatalf("result 5 (LPUSH on a string) error %v, want a WRONGTYPE server error", err)
	}
	wantInt(6, 3)
	if got, err := res[7].AsStrSlice(); err != nil || strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("result 7 = (%q, %v), want [a b c]", got, err)
	}
	wantStr(8, "v1")

	// Do serves a single command on the same connection.
	if got, err := conn.Do(ctx, b.Get().Key("k").Build()).ToString(); err != nil || got != "v1" {
		t.Fatalf("Do(GET k) = (%q, %v), want v1", got, err)
	}
}

// The driver keeps to one TCP connection, also for a pipeline larger than
// valkey-go's default BlockingPipeline (2000), as long as it is within
// MaxPipeline.
func TestOneConnectionForLargePipelines(t *testing.T) {
	srv := valkeytest.Start(t)
	name := "vactor-test-one-conn"
	conn := dial(t, drivers.Options{Addr: srv.Addr(), ClientName: name, MaxPipeline: 3000})
	ctx := context.Background()
	b := conn.B()

	id := func(r valkey.ValkeyResult) int64 {
		t.Helper()
		v, err := r.AsInt64()
		if err != nil {
			t.Fatalf("CLIENT ID: %v", err)
		}
		return v
	}
	small := id(conn.DoMulti(ctx, b.Ping().Build(), b.ClientId().Build())[1])

	const n = 2500
	cmds := make([]valkey.Completed, 0, n)
	for range n - 1 {
		cmds = append(cmds, b.Ping().Build())
	}
	cmds = append(cmds, b.ClientId().Build())
	res := conn.DoMulti(ctx, cmds...)
	if len(res) != n {
		t.Fatalf("DoMulti of %d commands returned %d results", n, len(res))
	}
	for i, r := range res[:n-1] {
		if s, err := r.ToString(); err != nil || s != "PONG" {
			t.Fatalf("result %d = (%q, %v), want PONG", i, s, err)
		}
	}
	if large := id(res[n-1]); large != small {
		t.Fatalf("a pipeline of %d ran on client %d, a small one on %d: want one connection", n, large, small)
	}
	if got := clientsNamed(t, conn, name); len(got) != 1 {
		t.Fatalf("%d connections named %s, want 1:\n%s", len(got), name, strings.Join(got, "\n"))
	}
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentServer accepts connections and never answers. It sends each
// accepted connection on the returned channel and closes everything when
// the test ends.
func silentServer(t *testing.T) (addr string, accepted <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan net.Conn, 16)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- c:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), ch
}

func TestDialClosedPortFails(t *testing.T) {
	addr := closedAddr(t)
	const timeout = 2 * time.Second
	start := time.Now()
	c, err := valkeygo.Driver{}.Dial(context.Background(), drivers.Options{Addr: addr, DialTimeout: timeout})
	elapsed := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatalf("Dial(%s) to a closed port succeeded", addr)
	}
	if c != nil {
		t.Fatalf("Dial failed with %v but returned a Conn %v", err, c)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %q does not name the address %s", err, addr)
	}
	if elapsed > timeout {
		t.Fatalf("Dial took %v, more than DialTimeout %v", elapsed, timeout)
	}
}

// DialTimeout bounds the handshake too: a server that accepts and never
// answers fails the dial after about DialTimeout.
func TestDialTimeoutBoundsHandshake(t *testing.T) {
	addr, accepted := silentServer(t)
	const timeout = 300 * time.Millisecond
	start := time.Now()
	c, err := valkeygo.Driver{}.Dial(context.Background(), drivers.Options{Addr: addr, DialTimeout: timeout})
	elapsed := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatalf("Dial(%s) to a silent server succeeded", addr)
	}
	select {
	case <-accepted:
	default:
		t.Fatal("the silent server never saw a connection: the test did not test the handshake")
	}
	if !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %q does not name the address %s", err, addr)
	}
	if elapsed > timeout+2*time.Second {
		t.Fatalf("Dial took %v with DialTimeout %v", elapsed, timeout)
	}
}

func TestDialCancelledContext(t *testing.T) {
	addr, accepted := silentServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := valkeygo.Driver{}.Dial(ctx, drivers.Options{Addr: addr, DialTimeout: 5 * time.Second})
	if !errors.Is(err, context.Canceled) || c != nil {
		t.Fatalf("Dial with a cancelled ctx = (%v, %v), want context.Canceled", c, err)
	}
	select {
	case <-accepted:
		t.Fatal("Dial with a cancelled ctx connected anyway")
	default:
	}
}

// A ctx cancelled while the handshake waits ends the dial at once, and
// the abandoned attempt closes its socket then, not at DialTimeout (it
// went on handshaking, after Dial had returned and after an engine's
// Close, until DialTimeout).
func TestDialCancelledDuringHandshake(t *testing.T) {
	addr, accepted := silentServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const timeout = 5 * time.Second
	type result struct {
		c   drivers.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := valkeygo.Driver{}.Dial(ctx, drivers.Options{Addr: addr, DialTimeout: timeout})
		done <- result{c, err}
	}()
	var server net.Conn
	select {
	case server = <-accepted:
	case <-time.After(waitTimeout):
		t.Fatal("Dial never connected to the silent server")
	}
	cancel()
	start := time.Now()
	var r result
	select {
	case r = <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Dial did not return after its ctx was cancelled")
	}
	if elapsed := time.Since(start); elapsed > timeout/2 {
		t.Fatalf("Dial returned %v after the cancel; it waited for DialTimeout instead of ctx", elapsed)
	}
	if !errors.Is(r.err, context.Canceled) || r.c != nil {
		t.Fatalf("Dial = (%v, %v), want context.Canceled", r.c, r.err)
	}
	if !strings.Contains(r.err.Error(), addr) {
		t.Fatalf("error %q does not name the address %s", r.err, addr)
	}
	// The abandoned attempt closes its socket at the cancel: the server
	// side reads EOF well before DialTimeout.
	server.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.Copy(io.Discard, server); err != nil {
		t.Fatalf("the abandoned dial's socket was not closed: %v", err)
	}
	if elapsed := time.Since(start); elapsed > timeout/2 {
		t.Fatalf("the abandoned dial's socket closed %v after the cancel; want it closed at the cancel, not at DialTimeout (%v)", elapsed, timeout)
	}
}

func TestClientOption(t *testing.T) {
	tlsConf := &tls.Config{ServerName: "example"}
	for _, maxPipeline := range []int{0, 1, 100, valkey.DefaultBlockingPipeline - 1, valkey.DefaultBlockingPipeline, 5000} {
		t.Run(strconv.Itoa(maxPipeline), func(t *testing.T) {
			o := drivers.Options{
				Addr:         "10.0.0.1:6380",
				Username:     "user",
				Password:     "secret",
				DB:           3,
				ClientName:   "name",
				DialTimeout:  1500 * time.Millisecond,
				ReadTimeout:  3 * time.Second,
				WriteTimeout: 2 * time.Second,
				TLS:          tlsConf,
				MaxPipeline:  maxPipeline,
			}
			opt := valkeygo.ClientOption(o)
			if !opt.ForceSingleClient {
				t.Error("ForceSingleClient is off")
			}
			if opt.PipelineMultiplex != -1 {
				t.Errorf("PipelineMultiplex = %d, want -1 (one connection)", opt.PipelineMultiplex)
			}
			if !opt.DisableRetry {
				t.Error("DisableRetry is off")
			}
			if !opt.DisableCache {
				t.Error("DisableCache is off")
			}
			// valkey-go's default ring (1,024 slots) costs a new connection
			// about two thirds of its client CPU; the driver's connections
			// never have more than a few calls at once.
			if opt.RingScaleEachConn <= 0 || opt.RingScaleEachConn >= valkey.DefaultRingScale {
				t.Errorf("RingScaleEachConn = %d, want a ring smaller than valkey-go's default (%d)", opt.RingScaleEachConn, valkey.DefaultRingScale)
			}
			// valkey-go moves a DoMulti of BlockingPipeline or more commands
			// to a dedicated connection.
			if opt.BlockingPipeline <= maxPipeline {
				t.Errorf("BlockingPipeline = %d, want > MaxPipeline %d", opt.BlockingPipeline, maxPipeline)
			}
			if opt.BlockingPipeline < valkey.DefaultBlockingPipeline {
				t.Errorf("BlockingPipeline = %d, below valkey-go's default %d", opt.BlockingPipeline, valkey.DefaultBlockingPipeline)
			}
			if len(opt.InitAddress) != 1 || opt.InitAddress[0] != o.Addr {
				t.Errorf("InitAddress = %q, want [%s]", opt.InitAddress, o.Addr)
			}
			if opt.Username != o.Username || opt.Password != o.Password || opt.SelectDB != o.DB || opt.ClientName != o.ClientName {
				t.Errorf("credentials/db/name = %q %q %d %q", opt.Username, opt.Password, opt.SelectDB, opt.ClientName)
			}
			if opt.TLSConfig != tlsConf {
				t.Errorf("TLSConfig = %p, want %p", opt.TLSConfig, tlsConf)
			}
			if opt.Dialer.Timeout != o.DialTimeout {
				t.Errorf("Dialer.Timeout = %v, want DialTimeout %v", opt.Dialer.Timeout, o.DialTimeout)
			}
			if opt.ConnWriteTimeout != o.ReadTimeout {
				t.Errorf("ConnWriteTimeout = %v, want max(ReadTimeout, WriteTimeout) = %v", opt.ConnWriteTimeout, o.ReadTimeout)
			}
		})
	}
	if opt := valkeygo.ClientOption(drivers.Options{Addr: "h:1"}); opt.ConnWriteTimeout != 0 || opt.TLSConfig != nil {
		t.Errorf("zero Options: ConnWriteTimeout %v, TLSConfig %v; want 0 and nil", opt.ConnWriteTimeout, opt.TLSConfig)
	}
}

func TestCloseIdempotentAndLaterCallsFail(t *testing.T) {
	srv := valkeytest.Start(t)
	conn := dial(t, drivers.Options{Addr: srv.Addr()})
	b := conn.B()
	ctx := context.Background()
	if s, err := conn.Do(ctx, b.Ping().Build()).ToString(); err != nil || s != "PONG" {
		t.Fatalf("PING before Close = (%q, %v)", s, err)
	}
	for i := range 3 {
		if err := conn.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	res := conn.DoMulti(ctx, b.Ping().Build(), b.Get().Key("k").Build(), b.Ping().Build())
	if len(res) != 3 {
		t.Fatalf("DoMulti after Close returned %d results for 3 commands", len(res))
	}
	for i, r := range res {
		if err := r.Error(); err == nil || r.NonValkeyError() == nil {
			t.Fatalf("DoMulti after Close: result %d error %v, want a transport error", i, err)
		}
	}
	if err := conn.Do(ctx, b.Ping().Build()).NonValkeyError(); err == nil {
		t.Fatal("Do after Close succeeded")
	}
	// A blocking command after Close is known not written (review-29:
	// valkey-go's own error read as possibly run).
	blpop := func() valkey.Completed { return b.Blpop().Key("q").Timeout(0).Build() }
	for name, err := range map[string]error{
		"Do":      conn.Do(ctx, blpop()).NonValkeyError(),
		"DoMulti": conn.DoMulti(ctx, blpop())[0].NonValkeyError(),
	} {
		if !errors.Is(err, drivers.ErrNotSent) || !errors.Is(err, drivers.ErrClosed) {
			t.Errorf("blocking %s after Close: %v, want ErrNotSent and ErrClosed", name, err)
		}
	}
}

// Close while a blocking command is in flight makes it return at once
// (drivers.Conn: Close "must make it return"), through DoMulti and Do.
func TestCloseUnblocksBlockingCommand(t *testing.T) {
	for _, via := range []string{"DoMulti", "Do"} {
		t.Run(via, func(t *testing.T) {
			srv := valkeytest.Start(t)
			conn := dial(t, drivers.Options{Addr: srv.Addr()})
			observer := dial(t, drivers.Options{Addr: srv.Addr()})
			blpop := conn.B().Blpop().Key("nothing-here").Timeout(5).Build()

			type result struct {
				res     valkey.ValkeyResult
				elapsed time.Duration
			}
			done := make(chan result, 1)
			start := time.Now()
			go func() {
				var r valkey.ValkeyResult
				if via == "Do" {
					r = conn.Do(context.Background(), blpop)
				} else {
					res := conn.DoMulti(context.Background(), blpop)
					if len(res) != 1 {
						panic(fmt.Sprintf("DoMulti returned %d results for 1 command", len(res)))
					}
					r = res[0]
				}
				done <- result{r, time.Since(start)}
			}()
			waitBlocked(t, observer, done)

			closed := time.Now()
			if err := conn.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case r := <-done:
				if since := time.Since(closed); since > time.Second {
					t.Errorf("%s returned %v after Close (%v after it started): Close did not interrupt it",
						via, since, r.elapsed)
				}
				if err := r.res.Error(); err == nil || valkey.IsValkeyNil(err) {
					t.Errorf("BLPOP interrupted by Close: error %v, want a transport error (not the nil reply of its timeout)", err)
				}
			case <-time.After(waitTimeout):
				t.Fatalf("%s still blocked long after Close", via)
			}
		})
	}
}

// waitBlocked waits until the server reports one blocked client, failing
// if the blocking call returns on done first.
func waitBlocked[T any](t *testing.T, observer drivers.ValkeyConn, done <-chan T) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := observer.Do(context.Background(), observer.B().Info().Section("clients").Build()).ToString()
		if err != nil {
			t.Fatalf("INFO clients: %v", err)
		}
		if strings.Contains(info, "blocked_clients:1") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the blocking command never blocked on the server:\n%s", info)
		}
		select {
		case r := <-done:
			t.Fatalf("the blocking command returned before Close: %+v", r)
		case <-tick.C:
		}
	}
}

// Dial honours the handshake options: DB, client name, password.
func TestDialOptions(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Password: "s3cret"})
	ctx := context.Background()

	_, err := valkeygo.Driver{}.Dial(ctx, drivers.Options{Addr: srv.Addr(), DialTimeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), srv.Addr()) {
		t.Fatalf("Dial without the password = %v, want an error naming %s", err, srv.Addr())
	}

	conn := dial(t, drivers.Options{Addr: srv.Addr(), Password: "s3cret", DB: 2, ClientName: "vactor-test-opts"})
	b := conn.B()
	res := conn.DoMulti(ctx, b.Set().Key("k").Value("db2").Build(), b.ClientInfo().Build())
	if err := res[0].Error(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	info, err := res[1].ToString()
	if err != nil {
		t.Fatalf("CLIENT INFO: %v", err)
	}
	for _, want := range []string{" db=2 ", " name=vactor-test-opts "} {
		if !strings.Contains(info, want) {
			t.Fatalf("CLIENT INFO %q lacks %q", info, want)
		}
	}
	other := dial(t, drivers.Options{Addr: srv.Addr(), Password: "s3cret"})
	if err := other.Do(ctx, other.B().Get().Key("k").Build()).Error(); !valkey.IsValkeyNil(err) {
		t.Fatalf("GET k on DB 0: %v, want nil (the key was set on DB 2)", err)
	}
}

// closeStalledMax bounds Close of a Conn whose server is stalled.
// valkey-go's close of each of its connections sends a PING and waits up
// to 1 s for the reply before it closes the socket: Close closes the
// sockets of all its connections first (openConns), so that no PING
// waits. Before, it took that second at least once (for a listening
// Conn's two connections closed at the same time), and once per pooled
// connection before that.
const closeStalledMax = 500 * time.Millisecond

// Close of a listening Conn whose server is stalled (SIGSTOP) closes the
// sockets of the pub/sub connection and the first one before valkey-go's
// close of each: it does not wait the second valkey-go waits for a
// stalled server's PING reply (before: one second, and two before the
// two were closed at the same time).
func TestCloseListeningStalledServer(t *testing.T) {
	srv := valkeytest.Start(t)
	conn := dial(t, drivers.Options{Addr: srv.Addr()})
	subscribed := make(chan struct{}, 1)
	done := conn.ListenValkey(valkey.PubSubHooks{
		OnSubscription: func(s valkey.PubSubSubscription) {
			if s.Kind == "subscribe" {
				subscribed <- struct{}{}
			}
		},
	})
	if err := conn.Do(context.Background(), conn.B().Subscribe().Channel("stalled").Build()).Error(); err != nil {
		t.Fatalf("SUBSCRIBE: %v", err)
	}
	select {
	case <-subscribed:
	case err := <-done:
		t.Fatalf("the subscription ended before it was confirmed: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("SUBSCRIBE not confirmed")
	}
	// Both of the Conn's connections are open.
	if got := serverClients(t, srv); got != 2 {
		t.Fatalf("%d client connections on the server, want 2 (pub/sub and the first)", got)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Resume() }()
	start := time.Now()
	if err := conn.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	took := time.Since(start)
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("the subscription did not end after Close")
	}
	if took >= closeStalledMax {
		t.Errorf("Close of a listening Conn took %s against a stalled server, want < %s: it waited for a PING reply (valkey-go's close)", took, closeStalledMax)
	}
	t.Logf("Close in %s", took)
}

// serverClients returns how many client connections srv has, besides the
// one that asks.
func serverClients(t *testing.T, srv *valkeytest.Server) int {
	t.Helper()
	r, err := srv.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	s, _ := r.(string)
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line != "" && !strings.Contains(line, " cmd=client|list ") {
			n++
		}
	}
	return n
}
