package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/driverstest"
	"github.com/vactor-io/vactor/drivers/valkeygo"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/engine/enginetest"
	"github.com/vactor-io/vactor/valkeytest"
)

// Drivers registered by these tests: valkey-go with its fast path hidden
// (the engine runs it through drivers.Fast's adapter), and the same with
// few capabilities.
const (
	adaptedDriver = "test-valkey-go-adapted"
	limitedDriver = "test-limited"
)

var registerTestDrivers = sync.OnceFunc(func() {
	drivers.Register(adaptedDriver, driverstest.NeutralOnly(valkeygo.Driver{}))
	drivers.Register(limitedDriver, limited{driverstest.NeutralOnly(valkeygo.Driver{})})
	drivers.Register(cutAtCtxEndDriver, cutAtCtxEnd{driverstest.NeutralOnly(valkeygo.Driver{})})
})

// cutAtCtxEndDriver's blocking calls run cutBlocking (which ends their
// ctx) and fail with a connection's error, as a driver that closes a
// blocking call's connection when its ctx ends may report it.
const cutAtCtxEndDriver = "test-cut-at-ctx-end"

var cutBlocking atomic.Pointer[func()]

type cutAtCtxEnd struct{ drivers.Driver }

func (d cutAtCtxEnd) Dial(ctx context.Context, o drivers.Options) (drivers.Conn, error) {
	c, err := d.Driver.Dial(ctx, o)
	if err != nil {
		return nil, err
	}
	return cutConn{c}, nil
}

func (d cutAtCtxEnd) Capabilities() drivers.Capabilities { return drivers.CapabilitiesOf(d.Driver) }

type cutConn struct{ drivers.Conn }

func (c cutConn) Exec(ctx context.Context, cmds []drivers.Command, out []drivers.Result) {
	if f := cutBlocking.Load(); f != nil && len(cmds) == 1 && cmds[0].Flags&drivers.Blocking != 0 {
		(*f)()
		out[0].Err = errors.New("test: connection closed as its ctx ended")
		return
	}
	c.Conn.Exec(ctx, cmds, out)
}

// limited is a driver that says it supports TLS without a *tls.Config
// and nothing else optional.
type limited struct{ drivers.Driver }

func (limited) Capabilities() drivers.Capabilities { return drivers.Capabilities{TLS: true} }

// New refuses a configuration that asks for more than the driver
// supports, naming the driver, the capability and the setting.
func TestNewRejectsWhatTheDriverCannotDo(t *testing.T) {
	registerTestDrivers()
	base := config.DefaultConfig().WithAddrs("127.0.0.1:1").WithDriver(limitedDriver)
	cases := []struct {
		name       string
		cfg        config.Config
		capability string
		setting    string
	}{
		{"client certificate", base.WithTLS(config.TLSConfig{Enabled: true, CertFile: "c.pem", KeyFile: "k.pem"}), "TLSConfig", "TLS.CertFile"},
		{"server name", base.WithTLS(config.TLSConfig{Enabled: true, ServerName: "db.example"}), "TLSConfig", "TLS.ServerName"},
		{"tls.Config", base.WithTLSConfig(valkeytest.NewCertsT(t).TLSConfig()), "TLSConfig", "TLS.Config"},
		{"credentials provider", base.WithCredentialsProvider(func(context.Context) (string, string, error) { return "", "", nil }), "Credentials", "CredentialsProvider"},
		{"sentinel", base.WithSentinel("mymaster", "127.0.0.1:2"), "Sentinel", "SentinelMode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.cfg.Validate(); err != nil {
				t.Fatalf("the configuration is invalid: %v", err)
			}
			eng, err := open(context.Background(), t, c.cfg)
			if err == nil {
				eng.Close()
				t.Fatal("New accepted it")
			}
			var ue *drivers.UnsupportedError
			if !errors.Is(err, drivers.ErrUnsupported) || !errors.As(err, &ue) {
				t.Fatalf("New: %v, want a *drivers.UnsupportedError", err)
			}
			for _, want := range []string{limitedDriver, c.capability, c.setting} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
		})
	}
}

// Calls that need a capability the driver lacks fail with
// drivers.ErrUnsupported; the rest of the engine works.
func TestCallsNeedingCapabilities(t *testing.T) {
	registerTestDrivers()
	eng, _ := newEngine(t, func(c config.Config) config.Config { return c.WithDriver(limitedDriver) })
	ctx := ctxT(t)
	if _, err := eng.Set(ctx, "k", "v", 0).Await(ctx); err != nil {
		t.Fatalf("SET over the limited driver: %v", err)
	}
	// The error names the call made (it said Subscribe for all four).
	for name, sub := range map[string]func() (*engine.Subscription, error){
		"Subscribe":  func() (*engine.Subscription, error) { return eng.Subscribe(ctx, "ch") },
		"PSubscribe": func() (*engine.Subscription, error) { return eng.PSubscribe(ctx, "ch*") },
		"SSubscribe": func() (*engine.Subscription, error) { return eng.SSubscribe(ctx, "ch") },
		"SubscribeWith": func() (*engine.Subscription, error) {
			return eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"a"}, Patterns: []string{"b*"}})
		},
	} {
		if _, err := sub(); !errors.Is(err, drivers.ErrUnsupported) || !strings.Contains(err.Error(), "needed by "+name) {
			t.Errorf("%s: %v, want ErrUnsupported naming %s", name, err, name)
		}
	}
	if _, err := eng.Do(ctx, "BLPOP", "l", "1").Await(ctx); !errors.Is(err, drivers.ErrUnsupported) {
		t.Errorf("BLPOP: %v, want ErrUnsupported", err)
	}
	err := eng.Dedicated(ctx, func(*engine.DedicatedConn) error { return nil })
	if !errors.Is(err, drivers.ErrUnsupported) {
		t.Errorf("Dedicated: %v, want ErrUnsupported", err)
	}
	_, err = eng.Consume(ctx, "s", "g", "c", func(context.Context, engine.XEntry) error { return nil }, engine.ConsumeOptions{})
	if !errors.Is(err, drivers.ErrUnsupported) {
		t.Errorf("Consume: %v, want ErrUnsupported", err)
	}
}

// A call on a closed engine fails with ErrClosed whatever the driver
// supports, and before its arguments are checked, as Do does: the
// capability check ran first, so Subscribe after Close said "does not
// support pub/sub" over glide (qa-AZ; fix-36), and an invalid argument
// hid the closed engine over valkey-go.
func TestClosedBeforeCapabilities(t *testing.T) {
	registerTestDrivers()
	for _, driver := range []string{"", limitedDriver} {
		t.Run("driver="+driver, func(t *testing.T) {
			eng, _ := newEngine(t, func(c config.Config) config.Config {
				if driver != "" {
					c = c.WithDriver(driver)
				}
				return c
			})
			ctx := ctxT(t)
			if err := eng.Close(); err != nil {
				t.Fatal(err)
			}
			handler := func(context.Context, engine.XEntry) error { return nil }
			for name, call := range map[string]func() error{
				"Subscribe":  func() error { _, err := eng.Subscribe(ctx, "ch"); return err },
				"PSubscribe": func() error { _, err := eng.PSubscribe(ctx, "ch*"); return err },
				"SSubscribe": func() error { _, err := eng.SSubscribe(ctx, "ch"); return err },
				"SubscribeWith": func() error {
					_, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"a"}, Patterns: []string{"b*"}})
					return err
				},
				"Subscribe no channel": func() error { _, err := eng.Subscribe(ctx); return err },
				"BLPOP":                func() error { _, err := eng.Do(ctx, "BLPOP", "l", "1").Await(ctx); return err },
				"Dedicated": func() error {
					return eng.Dedicated(ctx, func(*engine.DedicatedConn) error { return nil })
				},
				"Consume": func() error {
					_, err := eng.Consume(ctx, "s", "g", "c", handler, engine.ConsumeOptions{})
					return err
				},
				"Dedicated nil":  func() error { return eng.Dedicated(ctx, nil) },
				"Watch nil":      func() error { return eng.Watch(ctx, nil, "k") },
				"Watch no key":   func() error { return eng.Watch(ctx, func(*engine.Tx) error { return nil }) },
				"WatchRetry nil": func() error { return eng.WatchRetry(ctx, 3, nil, "k") },
				"WatchRetry 0":   func() error { return eng.WatchRetry(ctx, 0, func(*engine.Tx) error { return nil }, "k") },
				"Consume no stream": func() error {
					_, err := eng.Consume(ctx, "", "g", "c", handler, engine.ConsumeOptions{})
					return err
				},
			} {
				if err := call(); !errors.Is(err, engine.ErrClosed) || errors.Is(err, drivers.ErrUnsupported) {
					t.Errorf("%s after Close: %v, want ErrClosed", name, err)
				}
			}
		})
	}
}

// The engine runs over a driver that has only the neutral interface,
// through drivers.Fast's adapter: commands, pipelines, errors, nil
// replies, transactions, blocking commands and pub/sub.
func TestEngineOverAdapter(t *testing.T) {
	registerTestDrivers()
	eng, _ := newEngine(t, func(c config.Config) config.Config { return c.WithDriver(adaptedDriver).WithPoolSize(2) })
	ctx := ctxT(t)
	if _, err := eng.Set(ctx, "k", "v\x00\xff", 0).Await(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := eng.Get(ctx, "k").Await(ctx); err != nil || v != "v\x00\xff" {
		t.Fatalf("GET: %q %v", v, err)
	}
	if _, err := eng.Get(ctx, "missing").Await(ctx); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("GET missing: %v, want ErrNil", err)
	}
	var se *engine.ServerError
	if _, err := eng.Do(ctx, "LPUSH", "k", "x").Await(ctx); !errors.As(err, &se) || se.Prefix != "WRONGTYPE" {
		t.Fatalf("LPUSH on a string: %v, want WRONGTYPE", err)
	}
	incrs := make([]int64, 0, 100)
	for range 100 {
		n, err := eng.Incr(ctx, "n").Await(ctx)
		if err != nil {
			t.Fatal(err)
		}
		incrs = append(incrs, n)
	}
	for i, n := range incrs {
		if n != int64(i+1) {
			t.Fatalf("INCR %d returned %d", i, n)
		}
	}
	tx := eng.Tx()
	a := tx.Incr("txn")
	b := tx.Incr("txn")
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("Tx: %v", err)
	}
	if x, _ := a.Await(ctx); x != 1 {
		t.Fatalf("first INCR in Tx: %d", x)
	}
	if x, _ := b.Await(ctx); x != 2 {
		t.Fatalf("second INCR in Tx: %d", x)
	}
	// A blocking command, answered by a push from the engine.
	pop := eng.Do(ctx, "BLPOP", "bl", "0")
	if _, err := eng.Do(ctx, "RPUSH", "bl", "x").Await(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := pop.Await(ctx); err != nil {
		t.Fatalf("BLPOP: %v", err)
	} else if vs, _ := r.Strings(); len(vs) != 2 || vs[1] != "x" {
		t.Fatalf("BLPOP: %q", vs)
	}
	// Pub/sub through the adapter's ValkeyPubSub.
	sub, err := eng.Subscribe(ctx, "news")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := eng.Do(ctx, "PUBLISH", "news", "hello").Await(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i, _ := n.Int64(); i == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscription never reached the server")
		}
		time.Sleep(5 * time.Millisecond) // polling the server until it counts the subscriber
	}
	for {
		select {
		case ev := <-sub.Channel():
			if ev.Kind != engine.SubMessage {
				continue
			}
			if ev.Message.Payload != "hello" {
				t.Fatalf("message: %+v", ev.Message)
			}
			return
		case <-time.After(10 * time.Second):
			t.Fatal("no message")
		}
	}
}

// Per-key order through the public API (engine/enginetest, which other
// drivers run too), over the valkey-go driver and over the adapter.
func TestOrderScenario(t *testing.T) {
	registerTestDrivers()
	t.Run("valkey-go", func(t *testing.T) { enginetest.Order(t, checked(enginetest.Options{})) })
	t.Run("adapter", func(t *testing.T) { enginetest.Order(t, checked(enginetest.Options{Driver: adaptedDriver})) })
}

// The typed commands of a rate limiter, a queue and a leaderboard through
// the public API (engine/enginetest, which the glide driver runs too).
func TestCommandsScenario(t *testing.T) {
	enginetest.Commands(t, checked(enginetest.Options{}))
}

// Pipeline's and Tx's typed commands give what the Engine's give, value,
// error and effect (engine/enginetest, which the glide driver runs too).
func TestPipelineCommandsScenario(t *testing.T) {
	enginetest.PipelineCommands(t, checked(enginetest.Options{}))
}

// A blocking pop whose driver reports the end of its ctx with the error of
// the connection it cut (not the ctx's) fails as any pop its ctx cut:
// ErrOutcomeUnknown wrapping the ctx's error (review-32b B4: it failed
// with the connection's bare error, read as a transport failure).
func TestBlockingPopCutByDriverAtCtxEnd(t *testing.T) {
	registerTestDrivers()
	srv := valkeytest.Start(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithDriver(cutAtCtxEndDriver))
	ctx := ctxT(t)
	defer cutBlocking.Store(nil)
	for i := range 50 {
		c, cancel := context.WithCancel(ctx)
		f := func() { cancel() }
		cutBlocking.Store(&f)
		_, err := eng.BRPop(c, 0, "q").Await(ctx)
		cancel()
		if !errors.Is(err, context.Canceled) || !errors.Is(err, engine.ErrOutcomeUnknown) {
			t.Fatalf("call %d: %v; want ErrOutcomeUnknown wrapping context.Canceled", i, err)
		}
	}
}
