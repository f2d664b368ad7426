package engine_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// countingProxy forwards TCP connections to a server and counts the
// connections it accepts: a server does not count those that fail their
// TLS handshake (INFO's total_connections_received leaves them out).
type countingProxy struct {
	ln       net.Listener
	upstream string
	accepts  atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
	closed   bool
}

// newCountingProxy starts a proxy to upstream on a free loopback port; it
// stops at the end of the test.
func newCountingProxy(t testing.TB, upstream string) *countingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{ln: ln, upstream: upstream}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepts.Add(1)
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				_ = c.Close()
				continue
			}
			if !p.track(c, up) {
				return
			}
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		p.closed = true
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	return p
}

// track records conns for the cleanup; false (and conns closed) once the
// proxy stopped.
func (p *countingProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	p.conns = append(p.conns, conns...)
	return true
}

// Addr is the address to dial instead of the server's.
func (p *countingProxy) Addr() string { return p.ln.Addr().String() }

// Accepted returns how many connections the proxy accepted so far.
func (p *countingProxy) Accepted() int64 { return p.accepts.Load() }

// exerciseDialPaths runs a command over every kind of connection the
// engine dials: the connection actors, a blocking call, a transaction,
// a dedicated connection, a subscriber, a stream consumer and the batch
// writer. Each dials with the engine's TLS settings and credentials, so a
// path that forgot them fails here (mutual TLS refuses a connection
// without the client certificate, ACL one without the password). Its keys,
// channel and stream start with prefix.
func exerciseDialPaths(t *testing.T, ctx context.Context, eng *engine.Engine, prefix string) {
	t.Helper()
	if err := eng.Set(ctx, prefix+":k", "v", 0).Err(ctx); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if v, err := eng.Get(ctx, prefix+":k").Await(ctx); err != nil || v != "v" {
		t.Fatalf("GET = %q, %v", v, err)
	}
	// A blocking command runs on a blocking connection of its own.
	if err := eng.RPush(ctx, prefix+":list", "x").Err(ctx); err != nil {
		t.Fatalf("RPUSH: %v", err)
	}
	r, err := eng.Do(ctx, "BLPOP", prefix+":list", "1").Await(ctx)
	if err != nil {
		t.Fatalf("BLPOP: %v", err)
	}
	if got, err := r.Strings(); err != nil || len(got) != 2 || got[1] != "x" {
		t.Fatalf("BLPOP = %q, %v", got, err)
	}
	// A transaction, on the transaction connections.
	tx := eng.Tx()
	n := tx.Incr(prefix + ":n")
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("EXEC: %v", err)
	}
	if v, err := n.Await(ctx); err != nil || v != 1 {
		t.Fatalf("INCR in EXEC = %d, %v", v, err)
	}
	// A dedicated connection.
	err = eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		_, err := c.Do(ctx, "PING")
		return err
	})
	if err != nil {
		t.Fatalf("Dedicated: %v", err)
	}
	// A subscriber.
	sub, err := eng.Subscribe(ctx, prefix+":ch")
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()
	if err := eng.Publish(ctx, prefix+":ch", "hello").Err(ctx); err != nil {
		t.Fatalf("PUBLISH: %v", err)
	}
	for got := false; !got; {
		select {
		case ev := <-sub.Channel():
			got = ev.Kind == engine.SubMessage && ev.Message.Payload == "hello"
		case <-ctx.Done():
			t.Fatal("no message on the subscription")
		}
	}
	// A stream consumer.
	if err := eng.XAdd(ctx, prefix+":stream", "f", "v").Err(ctx); err != nil {
		t.Fatalf("XADD: %v", err)
	}
	handled := make(chan string, 1)
	cons, err := eng.Consume(ctx, prefix+":stream", "g", "c", func(_ context.Context, x engine.XEntry) error {
		select {
		case handled <- x.Fields["f"]:
		default:
		}
		return nil
	}, engine.ConsumeOptions{StartID: "0"})
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	defer cons.Close()
	select {
	case v := <-handled:
		if v != "v" {
			t.Fatalf("consumer got f=%q", v)
		}
	case <-ctx.Done():
		t.Fatal("the consumer handled nothing")
	}
	// The batch writer.
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	if err != nil {
		t.Fatalf("NewBatchWriter: %v", err)
	}
	if err := w.Set(ctx, prefix+":w", "written", 0); err != nil {
		t.Fatalf("BatchWriter.Set: %v", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatalf("BatchWriter.Close: %v", err)
	}
	if v, err := eng.Get(ctx, prefix+":w").Await(ctx); err != nil || v != "written" {
		t.Fatalf("GET of the batch writer's key = %q, %v", v, err)
	}
}

// tlsFiles is the file style of TLS settings for certs: the CA, and the
// client certificate for mutual TLS.
func tlsFiles(certs *valkeytest.Certs) config.TLSConfig {
	return config.TLSConfig{
		Enabled:  true,
		CAFile:   certs.CA.CertFile,
		CertFile: certs.Client.CertFile,
		KeyFile:  certs.Client.KeyFile,
	}
}

// A standalone server that requires client certificates (tls-auth-clients
// yes) serves the engine over TLS on every kind of connection, with the
// settings given as files or as the caller's own *tls.Config.
func TestTLSStandaloneRoundTrip(t *testing.T) {
	certs := valkeytest.NewCertsT(t)
	srv := valkeytest.Start(t, valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsYes}})
	for _, tc := range []struct {
		name string
		cfg  config.Config
	}{
		{"files", config.DefaultConfig().WithAddrs(srv.Addr()).WithTLS(tlsFiles(certs))},
		{"tls.Config", config.DefaultConfig().WithAddrs(srv.Addr()).WithTLSConfig(certs.TLSConfig())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			dials := &dialHook{}
			eng := engineOn(t, tc.cfg.WithHooks(dials))
			exerciseDialPaths(t, ctx, eng, tc.name)
			if err := eng.Close(); err != nil {
				t.Fatal(err)
			}
			// Close delivered the events: every dial says TLS, and the
			// pooled and dedicated connections were among them.
			dials.mu.Lock()
			defer dials.mu.Unlock()
			var pooled, dedicated bool
			for _, d := range dials.dialed {
				if !d.TLS || d.Err != nil {
					t.Errorf("dial event %+v, want TLS and no error", d)
				}
				pooled, dedicated = pooled || !d.Dedicated, dedicated || d.Dedicated
			}
			if !pooled || !dedicated || len(dials.dials) != len(dials.dialed) {
				t.Errorf("%d PreConnection and %d PostConnection events (pooled %t, dedicated %t)", len(dials.dials), len(dials.dialed), pooled, dedicated)
			}
			for _, d := range dials.dials {
				if !d.TLS {
					t.Errorf("PreConnection event %+v, want TLS", d)
				}
			}
		})
	}
}

// dialHook records the dial events (PreConnection, PostConnection).
type dialHook struct {
	mu     sync.Mutex
	dials  []hooks.Dial
	dialed []hooks.Dialed
}

func (h *dialHook) PreConnection(ev hooks.Dial) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dials = append(h.dials, ev)
}

func (h *dialHook) PostConnection(ev hooks.Dialed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dialed = append(h.dialed, ev)
}

// The caller's *tls.Config wins over the file settings, and the engine
// works on a clone: changing it afterwards does not reach the engine.
func TestTLSConfigWinsAndIsCloned(t *testing.T) {
	certs := valkeytest.NewCertsT(t)
	srv := valkeytest.Start(t, valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs}})
	own := certs.TLSConfig()
	// File settings that would fail: a CA file that does not exist.
	cfg := config.DefaultConfig().WithAddrs(srv.Addr()).
		WithTLS(config.TLSConfig{Enabled: true, CAFile: "/nonexistent/ca.pem"}).
		WithTLSConfig(own)
	eng := engineOn(t, cfg)
	defer eng.Close()
	own.RootCAs = x509.NewCertPool() // trusts nothing from now on
	ctx := ctxT(t)
	// A new connection (a dedicated one) still verifies with the CA.
	err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		_, err := c.Do(ctx, "PING")
		return err
	})
	if err != nil {
		t.Fatalf("Dedicated after the caller changed its tls.Config: %v", err)
	}
}

// A cluster with TLS everywhere (tls-cluster, tls-replication, client
// certificates required) serves the engine over TLS on every node, with
// either style of settings; the slot map's TLS ports are dialled with the
// same settings.
func TestTLSClusterRoundTrip(t *testing.T) {
	certs := valkeytest.NewCertsT(t)
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsYes}})
	for _, tc := range []struct {
		name string
		cfg  config.Config
	}{
		{"files", config.DefaultConfig().WithAddrs(c.Addrs()...).WithClusterMode(true).WithTLS(tlsFiles(certs))},
		{"tls.Config", config.DefaultConfig().WithAddrs(c.Addrs()...).WithClusterMode(true).WithTLSConfig(c.ClientTLS())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			eng := engineOn(t, tc.cfg)
			defer eng.Close()
			// Keys on every primary.
			const n = 300
			for i := range n {
				k := tc.name + ":" + strconv.Itoa(i)
				if err := eng.Set(ctx, k, k, 0).Err(ctx); err != nil {
					t.Fatalf("SET %s: %v", k, err)
				}
			}
			for i := range n {
				k := tc.name + ":" + strconv.Itoa(i)
				if v, err := eng.Get(ctx, k).Await(ctx); err != nil || v != k {
					t.Fatalf("GET %s = %q, %v", k, v, err)
				}
			}
			for _, p := range c.Primaries() {
				if keys := infoKeys(t, p); keys == 0 {
					t.Errorf("primary %s holds no key", p.Addr())
				}
			}
			exerciseDialPaths(t, ctx, eng, tc.name)
		})
	}

	// A client that does not trust the cluster's CA fails at New, having
	// tried each seed once.
	t.Run("unknown CA", func(t *testing.T) {
		other := valkeytest.NewCertsT(t)
		var proxies []*countingProxy
		var seeds []string
		for _, n := range c.Nodes() {
			p := newCountingProxy(t, n.Addr())
			proxies = append(proxies, p)
			seeds = append(seeds, p.Addr())
		}
		cfg := config.DefaultConfig().WithAddrs(seeds...).WithClusterMode(true).WithTLSConfig(other.TLSConfig())
		err := wantNewFails(t, cfg, "not trust", cfg.DialTimeout)
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) {
			t.Errorf("errors.As(x509.UnknownAuthorityError) = false for %v", err)
		}
		afterNew := 0
		for _, p := range proxies {
			n := p.Accepted()
			if n > 1 {
				t.Errorf("seed %s: %d connections from New, want at most 1", p.upstream, n)
			}
			afterNew += int(n)
		}
		time.Sleep(noRetryWindow)
		total := 0
		for _, p := range proxies {
			total += int(p.Accepted())
		}
		if total != afterNew {
			t.Errorf("%d connections to the seeds after engine.New failed, want 0", total-afterNew)
		}
	})
}

// infoKeys returns how many keys node holds (DBSIZE).
func infoKeys(t *testing.T, node *valkeytest.ClusterNode) int64 {
	t.Helper()
	r, err := node.Do("DBSIZE")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := r.(int64)
	return n
}

// wantNewFails runs engine.New with cfg, which must fail in less than
// limit with a *engine.ConnectError whose reason contains reason; it
// returns the error.
func wantNewFails(t *testing.T, cfg config.Config, reason string, limit time.Duration) error {
	t.Helper()
	start := time.Now()
	eng, err := open(context.Background(), t, cfg)
	took := time.Since(start)
	if err == nil {
		eng.Close()
		t.Fatal("engine.New succeeded, want an error")
	}
	t.Logf("engine.New failed after %v: %v", took.Round(time.Millisecond), err)
	if took >= limit {
		t.Errorf("engine.New took %v, want less than %v (DialTimeout %v)", took, limit, cfg.DialTimeout)
	}
	var ce *engine.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *engine.ConnectError", err, err)
	}
	if !strings.Contains(ce.Reason, reason) {
		t.Errorf("reason %q, want it to contain %q", ce.Reason, reason)
	}
	return err
}

// noRetryWindow is how long a test watches a server for connections after
// engine.New failed: more than the first reconnect backoffs the engine
// would use if anything were left running.
const noRetryWindow = time.Second

// Each TLS or authentication misconfiguration fails engine.New at once
// (well within DialTimeout) with a *ConnectError that says what is wrong
// and unwraps to the cause; New makes one connection attempt (PoolSize 1)
// and leaves nothing behind that dials again.
func TestTLSMisconfigFailsAtNew(t *testing.T) {
	certs := valkeytest.NewCertsT(t)
	issue := func(f func() (*valkeytest.KeyPair, error)) *valkeytest.KeyPair {
		kp, err := f()
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	unknownCA, wrongName, expired := issue(certs.UnknownCACert), issue(certs.WrongNameCert), issue(certs.ExpiredCert)
	otherCA := valkeytest.NewCertsT(t) // a client certificate the server does not trust
	base := config.DefaultConfig()
	for _, tc := range []struct {
		name   string
		srv    valkeytest.Options
		cfg    func(config.Config) config.Config
		reason string
		check  func(error) bool
		// timesOut: New fails at DialTimeout, not before.
		timesOut bool
	}{
		{
			name:   "unknown CA",
			srv:    valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, Cert: unknownCA}},
			cfg:    func(c config.Config) config.Config { return c.WithTLS(tlsFiles(certs)) },
			reason: "signed by an authority the client does not trust",
			check: func(err error) bool {
				var e x509.UnknownAuthorityError
				return errors.As(err, &e)
			},
		},
		{
			name:   "wrong server name",
			srv:    valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, Cert: wrongName}},
			cfg:    func(c config.Config) config.Config { return c.WithTLSConfig(certs.TLSConfig()) },
			reason: `not valid for "127.0.0.1", the name checked`,
			check: func(err error) bool {
				var e x509.HostnameError
				return errors.As(err, &e)
			},
		},
		{
			name:   "expired certificate",
			srv:    valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, Cert: expired}},
			cfg:    func(c config.Config) config.Config { return c.WithTLS(tlsFiles(certs)) },
			reason: "has expired",
			check: func(err error) bool {
				var e x509.CertificateInvalidError
				return errors.As(err, &e) && e.Reason == x509.Expired
			},
		},
		{
			name:   "missing client certificate",
			srv:    valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsYes}},
			cfg:    func(c config.Config) config.Config { return c.WithTLSConfig(certs.TLSConfigNoCert()) },
			reason: "requires a client certificate",
			check: func(err error) bool {
				var e tls.AlertError
				return errors.As(err, &e) && e == 116 // certificate_required
			},
		},
		{
			// The Reason names the fix, not only the refusal (qa-AD 7).
			name: "client certificate from another CA",
			srv:  valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsYes}},
			cfg: func(c config.Config) config.Config {
				tc := certs.TLSConfig()
				tc.Certificates = otherCA.TLSConfig().Certificates
				return c.WithTLSConfig(tc)
			},
			reason: "the server does not trust its issuer",
			check: func(err error) bool {
				var e tls.AlertError
				return errors.As(err, &e) && e == 48 // unknown_ca
			},
		},
		{
			name: "wrong password",
			srv:  valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs}, Password: "right"},
			cfg: func(c config.Config) config.Config {
				return c.WithTLSConfig(certs.TLSConfig()).WithPassword("not-the-Pa55word")
			},
			reason: "wrong user name or password",
			check: func(err error) bool {
				var e *engine.ServerError
				return errors.As(err, &e) && e.Prefix == "WRONGPASS"
			},
		},
		{
			name:   "no TLS to a TLS port",
			srv:    valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs}},
			cfg:    func(c config.Config) config.Config { return c },
			reason: "TLS port dialled without TLS",
			check:  func(err error) bool { return err != nil },
		},
		{
			// The server waits for the end of a line that the client's
			// TLS hello does not hold: nothing happens until DialTimeout.
			name:     "TLS to a plain port",
			srv:      valkeytest.Options{},
			cfg:      func(c config.Config) config.Config { return c.WithTLSConfig(certs.TLSConfig()) },
			reason:   "a plain TCP port does not answer a TLS handshake",
			timesOut: true,
			check:    func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := valkeytest.Start(t, tc.srv)
			proxy := newCountingProxy(t, srv.Addr())
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			limit := base.DialTimeout
			if tc.timesOut {
				limit += 2 * time.Second
			}
			err := wantNewFails(t, tc.cfg(base.WithAddrs(proxy.Addr())), tc.reason, limit)
			if !tc.check(err) {
				t.Errorf("error %v does not unwrap to the cause", err)
			}
			afterNew := proxy.Accepted()
			if afterNew != 1 {
				t.Errorf("engine.New opened %d connections, want 1 (PoolSize 1, no retry)", afterNew)
			}
			// Nothing left dials again: watch the server for a while.
			time.Sleep(noRetryWindow)
			if got := proxy.Accepted() - afterNew; got != 0 {
				t.Errorf("%d connections after engine.New failed, want 0", got)
			}
		})
	}
}

// Sentinel mode over TLS everywhere (client certificates required, ACL
// users on the data nodes and on the sentinels): the engine finds the
// primary through the sentinels and serves every kind of connection. The
// data nodes' credentials come from a provider, the sentinels' from
// another one, each called on every connection it authenticates: the
// sentinels' provider is asked for no data node and the other way round.
func TestTLSSentinelRoundTrip(t *testing.T) {
	certs := valkeytest.NewCertsT(t)
	s := valkeytest.StartSentinelT(t, valkeytest.SentinelOptions{
		TLS:              &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsYes},
		Username:         "app",
		Password:         "data-secret",
		SentinelUsername: "watcher",
		SentinelPassword: "sentinel-secret",
	})
	var dataCalls, sentinelCalls atomic.Int64
	cfg := config.DefaultConfig().WithSentinel(s.MasterName(), s.Addrs()...).
		WithTLSConfig(s.ClientTLS()).
		WithCredentialsProvider(func(context.Context) (string, string, error) {
			dataCalls.Add(1)
			return "app", "data-secret", nil
		}).
		WithSentinelCredentialsProvider(func(context.Context) (string, string, error) {
			sentinelCalls.Add(1)
			return "watcher", "sentinel-secret", nil
		})
	ctx := ctxT(t)
	eng := engineOn(t, cfg)
	defer eng.Close()
	exerciseDialPaths(t, ctx, eng, "sentinel-tls")
	p, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Do("GET", "sentinel-tls:k"); err != nil || got != "v" {
		t.Fatalf("GET on the primary %s = %v, %v; want v", p.Addr(), got, err)
	}
	if st := eng.Stats().Sentinel; st == nil || st.Primary != p.Addr() || st.Subscribed == 0 {
		t.Fatalf("Stats().Sentinel = %+v; want primary %s and the sentinels' events followed", st, p.Addr())
	}
	if dataCalls.Load() == 0 || sentinelCalls.Load() == 0 {
		t.Fatalf("credentials providers called: data nodes %d, sentinels %d; want both", dataCalls.Load(), sentinelCalls.Load())
	}

	// Without the client certificate the sentinels refuse the handshake:
	// New fails, saying why.
	bare := certs.TLSConfig()
	bare.Certificates = nil
	_, err = open(ctx, t, cfg.WithTLSConfig(bare))
	if err == nil {
		t.Fatal("New without a client certificate succeeded against sentinels that require one")
	}
	if !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("New without a client certificate: %v; want the sentinels' alert (certificate required) named", err)
	}
	t.Logf("New without a client certificate: %v", err)
}
