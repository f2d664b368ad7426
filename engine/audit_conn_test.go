package engine_test

// A user-side audit of connection configuration against real servers:
// URLs and VALKEY_* variables as the engine dials them, extreme but valid
// settings, ACL errors and password rotation, and TLS misconfigurations.
// The default config everywhere except for what each test is about.

import (
	"context"
	"crypto/x509"
	"errors"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// A URL with an ACL user and a password holding every special character
// (percent-encoded) and a database path connects as that user to that
// database; so does the same URL in VALKEY_URL.
func TestAuditConnURL(t *testing.T) {
	srv := valkeytest.Start(t)
	const user, pass = "app@corp", "p@ss w/o?r#d%:x" // the user name too
	if err := srv.AddUser(user, pass, "~*", "&*", "+@all"); err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "redis", User: url.UserPassword(user, pass), Host: srv.Addr(), Path: "/3"}
	ctx := ctxT(t)
	check := func(t *testing.T, cfg config.Config) {
		eng := engineOn(t, cfg)
		defer eng.Close()
		if who := whoami(t, ctx, eng); who != user {
			t.Fatalf("ACL WHOAMI = %q, want %q", who, user)
		}
		r, err := eng.Do(ctx, "CLIENT", "INFO").Await(ctx)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := r.String()
		if !strings.Contains(info, " db=3 ") || !strings.Contains(info, " name=vactor ") {
			t.Fatalf("CLIENT INFO = %q, want db=3 and name=vactor", info)
		}
	}
	t.Run("ParseURL", func(t *testing.T) {
		cfg, err := config.ParseURL(u.String())
		if err != nil {
			t.Fatal(err)
		}
		check(t, cfg)
	})
	t.Run("VALKEY_URL", func(t *testing.T) {
		for _, v := range config.EnvVars {
			t.Setenv(v, "")
		}
		t.Setenv("VALKEY_URL", u.String())
		cfg, err := config.LoadFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		check(t, cfg)
	})
}

// Settings at the far ends of their documented ranges work: huge
// timeouts, capacities and retry counts, no backoff, one command per
// batch. Nothing panics, commands run, Close is prompt.
func TestAuditConnExtremeSettings(t *testing.T) {
	srv := valkeytest.Start(t)
	const huge = time.Duration(math.MaxInt64)
	ctx := ctxT(t)
	for name, mod := range map[string]func(config.Config) config.Config{
		"huge": func(c config.Config) config.Config {
			return c.WithDialTimeout(huge).WithReadTimeout(huge).WithWriteTimeout(huge).WithDrainTimeout(huge).
				WithMailboxCapacity(math.MaxInt).WithMaxRetries(math.MaxInt).WithMaxRedirects(math.MaxInt).
				WithCircuitBreakerThreshold(100000).WithCircuitBreakerOpenTimeout(huge).WithCircuitBreakerPeriod(huge).
				WithMaxBatchSize(100000).WithPoolSize(8)
		},
		"huge failure-rate breaker": func(c config.Config) config.Config {
			return c.WithCircuitBreakerThreshold(100000).WithCircuitBreakerFailureRate(1).WithCircuitBreakerPeriod(huge)
		},
		"small": func(c config.Config) config.Config {
			return c.WithReadTimeout(0).WithWriteTimeout(0).WithMailboxCapacity(1).
				WithMaxRetries(0).WithMinRetryBackoff(0).WithMaxRetryBackoff(0).WithCircuitBreakerThreshold(1).
				WithCircuitBreakerOpenTimeout(time.Nanosecond).WithCircuitBreakerPeriod(time.Nanosecond).
				WithMaxBatchSize(1).WithDialTimeout(2 * time.Second)
		},
	} {
		t.Run(name, func(t *testing.T) {
			eng := engineOn(t, mod(config.DefaultConfig().WithAddrs(srv.Addr())))
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for i := range 64 {
				wg.Go(func() {
					k := name + ":" + string(rune('a'+i%26))
					if err := eng.Set(ctx, k, "v", 0).Err(ctx); err != nil {
						errs <- err
						return
					}
					if v, err := eng.Get(ctx, k).Await(ctx); err != nil || v != "v" {
						errs <- errors.Join(err, errors.New("GET "+k+" = "+v))
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			start := time.Now()
			if err := eng.Close(); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("Close took %v", d)
			}
		})
	}
}

// A breaker threshold beyond what the breaker can count is refused by New
// (it made a breaker that keeps no count and opens within the first few
// round trips, failing every command with ErrCircuitOpen).
func TestAuditConnBreakerThresholdLimit(t *testing.T) {
	srv := valkeytest.Start(t)
	cfg := config.DefaultConfig().WithAddrs(srv.Addr()).WithCircuitBreakerThreshold(math.MaxInt)
	eng, err := open(ctxT(t), t, cfg)
	if err == nil {
		defer eng.Close()
		ctx := ctxT(t)
		t.Fatalf("engine.New accepted CircuitBreakerThreshold %d; SET then = %v", math.MaxInt, eng.Set(ctx, "k", "v", 0).Err(ctx))
	}
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Field != "CircuitBreakerThreshold" {
		t.Fatalf("engine.New = %v, want a *config.FieldError for CircuitBreakerThreshold", err)
	}
}

// A wrong password, an unknown user or no password where one is needed
// fail New at once with a *ConnectError holding the server's typed
// refusal; no error text holds the password that was tried.
func TestAuditConnWrongCredentials(t *testing.T) {
	const right, wrong = "right-Pa55", "wr0ng-Secret-Pa55"
	srv := valkeytest.Start(t, valkeytest.Options{Password: right})
	base := config.DefaultConfig().WithAddrs(srv.Addr())
	for _, tc := range []struct {
		name   string
		cfg    config.Config
		prefix string
	}{
		{"wrong password", base.WithPassword(wrong), "WRONGPASS"},
		{"unknown user", base.WithUsername("nobody").WithPassword(wrong), "WRONGPASS"},
		{"provider's wrong password", base.WithCredentialsProvider(func(context.Context) (string, string, error) {
			return "", wrong, nil
		}), "WRONGPASS"},
		{"no password", base, "NOAUTH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := wantNewFails(t, tc.cfg, "", 2*time.Second)
			var se *engine.ServerError
			if !errors.As(err, &se) || se.Prefix != tc.prefix {
				t.Fatalf("error %v does not unwrap to a %s *ServerError", err, tc.prefix)
			}
			var ce *engine.ConnectError
			errors.As(err, &ce)
			if ce.Reason == "" {
				t.Errorf("no Reason in %v", err)
			}
			if strings.Contains(err.Error(), wrong) || strings.Contains(ce.Reason, wrong) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// A user lacking one command's permission: in a pipeline, that command
// fails with a NOPERM *ServerError and the others succeed; nothing is
// retried and the connection stays.
func TestAuditConnNoPermInPipeline(t *testing.T) {
	srv := valkeytest.Start(t)
	if err := srv.AddUser("app", "app-pass", "~*", "&*", "+@all", "-incr"); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithUsername("app").WithPassword("app-pass"))
	defer eng.Close()
	p := eng.Pipeline()
	set := p.Set("a", "1", 0)
	incr := p.Incr("a")
	get := p.Get("a")
	if err := p.Exec(ctx); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if err := set.Err(ctx); err != nil {
		t.Errorf("SET: %v", err)
	}
	_, err := incr.Await(ctx)
	var se *engine.ServerError
	if !errors.As(err, &se) || se.Prefix != "NOPERM" {
		t.Errorf("INCR = %v, want a NOPERM *ServerError", err)
	}
	if v, err := get.Await(ctx); err != nil || v != "1" {
		t.Errorf("GET = %q, %v; want 1", v, err)
	}
	if st := eng.Stats(); st.Retries != 0 || st.Reconnects != 0 {
		t.Errorf("Stats: %d retries, %d reconnects; want 0 and 0", st.Retries, st.Reconnects)
	}
}

// Password rotation through a CredentialsProvider when the server drops
// the connections: while the provider still returns the old password the
// reconnects are refused and commands fail fast with a typed error (not a
// hang until their deadline), the refusal (WRONGPASS) reaching the dial
// hooks; once the provider returns the new password the engine reconnects
// and runs them, without a new engine.
func TestAuditConnRotationOnReconnect(t *testing.T) {
	srv := valkeytest.Start(t)
	if err := srv.AddUser("app", "old-pass", "~*", "&*", "+@all"); err != nil {
		t.Fatal(err)
	}
	creds := &rotating{user: "app", pass: "old-pass"}
	dials := &dialHook{}
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithCredentialsProvider(creds.provide).WithHooks(dials))
	defer eng.Close()
	if err := eng.Set(ctx, "k", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetUserPassword("app", "new-pass"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("CLIENT", "KILL", "USER", "app"); err != nil {
		t.Fatal(err)
	}
	// The provider has not rotated yet: commands fail, at once.
	refused := func() bool {
		dials.mu.Lock()
		defer dials.mu.Unlock()
		for _, d := range dials.dialed {
			var se *engine.ServerError
			var ce *engine.ConnectError
			if errors.As(d.Err, &se) && se.Prefix == "WRONGPASS" && errors.As(d.Err, &ce) &&
				strings.HasPrefix(ce.Reason, "authentication failed") {
				return true
			}
		}
		return false
	}
	for i := 0; i < 3 || !refused(); i++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		start := time.Now()
		_, err := eng.Get(cctx, "k").Await(cctx)
		took := time.Since(start)
		cancel()
		if err == nil || errors.Is(err, context.DeadlineExceeded) || took > 3*time.Second {
			t.Fatalf("GET with a stale password = %v after %v, want a prompt error", err, took)
		}
		if i > 200 {
			t.Fatal("no dial refused with WRONGPASS reached the hooks")
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	// Once the breaker is open, a command's error says why: the node and
	// the rejected password (it was a bare ErrCircuitOpen).
	why := time.Now().Add(10 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := eng.Get(cctx, "k").Await(cctx)
		cancel()
		var coe *engine.CircuitOpenError
		var se *engine.ServerError
		if errors.As(err, &coe) && errors.Is(err, engine.ErrCircuitOpen) && coe.Addr == srv.Addr() &&
			errors.As(coe.Cause, &se) && se.Prefix == "WRONGPASS" && strings.Contains(err.Error(), "WRONGPASS") {
			if errors.As(err, &se) {
				t.Fatalf("errors.As finds a *ServerError in %v: the command itself was never sent", err)
			}
			break
		}
		if time.Now().After(why) {
			t.Fatalf("GET with the breaker open = %v; want a *CircuitOpenError naming %s with the WRONGPASS cause", err, srv.Addr())
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	creds.rotate("new-pass")
	deadline := time.Now().Add(10 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		v, err := eng.Get(cctx, "k").Await(cctx)
		cancel()
		if err == nil && v == "v" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET after the provider rotated = %q, %v", v, err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	if who := whoami(t, ctx, eng); who != "app" {
		t.Fatalf("ACL WHOAMI = %q, want app", who)
	}
}

// TLS settings against one server that asks for (but does not require) a
// client certificate and one that requires it.
func TestAuditConnTLS(t *testing.T) {
	certs := valkeytest.NewCertsT(t)
	optional := valkeytest.Start(t, valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsOptional}})
	required := valkeytest.Start(t, valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsYes}})
	otherCA, err := valkeytest.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	on := func(srv *valkeytest.Server, tlsc config.TLSConfig) config.Config {
		return config.DefaultConfig().WithAddrs(srv.Addr()).WithTLS(tlsc)
	}
	files := tlsFiles(certs) // CA and client certificate
	works := func(t *testing.T, cfg config.Config) {
		t.Helper()
		eng := engineOn(t, cfg)
		defer eng.Close()
		if err := eng.Ping(ctx); err != nil {
			t.Fatalf("PING: %v", err)
		}
	}
	t.Run("mTLS with files", func(t *testing.T) { works(t, on(required, files)) })
	t.Run("ServerName held by the certificate", func(t *testing.T) {
		c := files
		c.ServerName = "localhost"
		works(t, on(required, c))
	})
	t.Run("InsecureSkipVerify without CA", func(t *testing.T) {
		works(t, on(optional, config.TLSConfig{Enabled: true, InsecureSkipVerify: true}))
	})
	t.Run("URL skip_verify", func(t *testing.T) {
		cfg, err := config.ParseURL("rediss://" + optional.Addr() + "?skip_verify")
		if err != nil {
			t.Fatal(err)
		}
		works(t, cfg)
	})
	t.Run("ServerName mismatch", func(t *testing.T) {
		c := files
		c.ServerName = "cache.example"
		err := wantNewFails(t, on(required, c), `not valid for "cache.example", the name checked`, 2*time.Second)
		var he x509.HostnameError
		if !errors.As(err, &he) {
			t.Errorf("%v does not unwrap to x509.HostnameError", err)
		}
	})
	t.Run("wrong CA file", func(t *testing.T) {
		c := files
		c.CAFile = otherCA.CertFile
		err := wantNewFails(t, on(required, c), "signed by an authority the client does not trust", 2*time.Second)
		var ue x509.UnknownAuthorityError
		if !errors.As(err, &ue) {
			t.Errorf("%v does not unwrap to x509.UnknownAuthorityError", err)
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		wantNewFails(t, on(required, config.TLSConfig{Enabled: true, CAFile: certs.CA.CertFile}), "requires a client certificate", 2*time.Second)
	})
	t.Run("plain TCP to the TLS port", func(t *testing.T) {
		wantNewFails(t, config.DefaultConfig().WithAddrs(required.Addr()), "TLS port dialled without TLS", 2*time.Second)
	})
	// Files that cannot be used fail New before any dial, naming the file,
	// as configuration errors (*config.FieldError, ErrInvalidConfig) that
	// unwrap to the cause (a missing file: fs.ErrNotExist).
	for name, tc := range map[string]struct {
		tls      config.TLSConfig
		want     string
		notExist bool
	}{
		"missing CA file":   {config.TLSConfig{Enabled: true, CAFile: filepath.Join(dir, "nope.pem")}, `TLS.CAFile "` + filepath.Join(dir, "nope.pem") + `": cannot be read`, true},
		"CA file not PEM":   {config.TLSConfig{Enabled: true, CAFile: garbage}, `garbage.pem": holds no PEM certificate`, false},
		"missing cert file": {config.TLSConfig{Enabled: true, CertFile: filepath.Join(dir, "c.pem"), KeyFile: certs.Client.KeyFile}, `TLS.CertFile "` + filepath.Join(dir, "c.pem") + `": cannot load the client certificate`, true},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			eng, err := open(ctx, t, on(required, tc.tls))
			if err == nil {
				eng.Close()
				t.Fatal("engine.New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
			var fe *config.FieldError
			if !errors.Is(err, config.ErrInvalidConfig) || !errors.As(err, &fe) {
				t.Errorf("error %v is not a configuration error (*config.FieldError)", err)
			}
			if errors.Is(err, fs.ErrNotExist) != tc.notExist {
				t.Errorf("error %v: errors.Is(err, fs.ErrNotExist) = %t, want %t", err, !tc.notExist, tc.notExist)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("New took %v to refuse a file", d)
			}
		})
	}
}

// A database the server does not have, and an address nobody listens on,
// fail New at once with a *ConnectError that says so.
func TestAuditConnBadTarget(t *testing.T) {
	srv := valkeytest.Start(t)
	err := wantNewFails(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithDB(16), "SELECT", 2*time.Second)
	var se *engine.ServerError
	if !errors.As(err, &se) || !strings.Contains(se.Error(), "DB index is out of range") {
		t.Errorf("error %v does not unwrap to the server's refusal of SELECT 16", err)
	}
	addr := srv.Addr()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	wantNewFails(t, config.DefaultConfig().WithAddrs(addr), "connection refused", 2*time.Second)
}
