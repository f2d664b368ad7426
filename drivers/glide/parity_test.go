package glide_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// What a user sees through the engine with the glide driver is what the
// valkey-go driver gives: these tests run the same calls over both, each
// on a server of its own, and compare.

// parityDrivers are the drivers compared: the default one first.
var parityDrivers = []string{"valkey-go", "glide"}

// parityEngine starts a server and an engine on it over driver drv; both
// stop at cleanup.
func parityEngine(t *testing.T, drv string, mod ...func(config.Config) config.Config) (*engine.Engine, *valkeytest.Server) {
	t.Helper()
	srv := valkeytest.Start(t)
	cfg := config.DefaultConfig().WithAddrs(srv.Addr()).WithDriver(drv)
	for _, m := range mod {
		cfg = m(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, cfg)
	if err != nil {
		t.Fatalf("engine.New over %s: %v", drv, err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng, srv
}

// Error replies whose first word is not an upper-case code (a script's or
// a module's) are error replies with glide too: a *ServerError with the
// server's text, the connection kept. Glide writes "-lowercase thing" as
// "lowercase: thing"; the driver took such texts for transport failures,
// so the engine failed the command with ErrOutcomeUnknown and reconnected.
func TestParityErrorReplies(t *testing.T) {
	scripts := []string{
		"return redis.error_reply('lowercase thing')",
		"return redis.error_reply('Mixed Case: thing')",
		"return redis.error_reply('OOPS')",
		"return redis.error_reply('ERR')",
		"return redis.error_reply('WRONGTYPE custom')",
	}
	nested := "return {1, redis.error_reply('lowercase inside'), 3}"
	got := map[string][]string{}
	for _, drv := range parityDrivers {
		eng, _ := parityEngine(t, drv)
		ctx := ctxT(t)
		for _, s := range scripts {
			_, err := eng.Do(ctx, "EVAL", s, "0").Await(ctx)
			var se *engine.ServerError
			if !errors.As(err, &se) {
				t.Errorf("%s: %q: %v (%T), want a *ServerError", drv, s, err, err)
				got[drv] = append(got[drv], "")
				continue
			}
			got[drv] = append(got[drv], se.Prefix+"|"+se.Message)
		}
		r, err := eng.Do(ctx, "EVAL", nested, "0").Await(ctx)
		if err != nil {
			t.Fatalf("%s: %q: %v", drv, nested, err)
		}
		elems, err := r.Array()
		if err != nil || len(elems) != 3 {
			t.Fatalf("%s: %q: %v, %v", drv, nested, elems, err)
		}
		var se *engine.ServerError
		if !errors.As(elems[1].Err(), &se) {
			t.Fatalf("%s: %q: element 1 is %v", drv, nested, elems[1].Err())
		}
		got[drv] = append(got[drv], se.Prefix+"|"+se.Message)
		if st := eng.Stats(); st.Reconnects != 0 || st.OutcomeUnknown != 0 {
			t.Errorf("%s: error replies cost %d reconnects, %d outcome-unknown failures", drv, st.Reconnects, st.OutcomeUnknown)
		}
	}
	for i, want := range got["valkey-go"] {
		if have := got["glide"][i]; have != want {
			t.Errorf("error reply %d: valkey-go %q, glide %q", i, want, have)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A handshake the server refuses (a wrong password) fails engine.New
// with the same *engine.ConnectError: its Reason says what is wrong and
// errors.As finds the server's WRONGPASS reply as a *engine.ServerError.
// With glide the reason was empty and no *ServerError was reachable.
func TestParityWrongPassword(t *testing.T) {
	type seen struct{ reason, prefix string }
	got := map[string]seen{}
	for _, drv := range parityDrivers {
		srv := valkeytest.Start(t, valkeytest.Options{Password: "right"})
		cfg := config.DefaultConfig().WithAddrs(srv.Addr()).WithDriver(drv)
		cfg.Password = "wrong"
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		eng, err := engine.New(ctx, cfg)
		cancel()
		if err == nil {
			_ = eng.Close()
			t.Fatalf("%s: engine.New with a wrong password succeeded", drv)
		}
		var ce *engine.ConnectError
		var se *engine.ServerError
		if !errors.As(err, &ce) || !errors.As(err, &se) {
			t.Errorf("%s: %v (%T): want a *ConnectError and a *ServerError in it", drv, err, err)
			continue
		}
		got[drv] = seen{ce.Reason, se.Prefix}
		// One line (qa-BB BB-2: glide's text ended in "\n").
		if text := err.Error(); strings.ContainsAny(text, "\r\n") || strings.TrimSpace(text) != text {
			t.Errorf("%s: New's error is not one line: %q", drv, text)
		}
	}
	if got["glide"] != got["valkey-go"] || got["glide"].prefix != "WRONGPASS" {
		t.Errorf("valkey-go %+v, glide %+v", got["valkey-go"], got["glide"])
	}
}

// A server at its maxclients limit answers "-ERR max number of clients
// reached" and closes: engine.New fails at once with that reply as a
// *engine.ServerError and the same Reason with both drivers.
func TestParityMaxClients(t *testing.T) {
	type seen struct{ reason, msg string }
	got := map[string]seen{}
	for _, drv := range parityDrivers {
		srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--maxclients", "1"}})
		held, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		if _, err := held.Write([]byte("PING\r\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := held.Read(make([]byte, 16)); err != nil { // +PONG: counted
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()).WithDriver(drv))
		took := time.Since(start)
		cancel()
		if err == nil {
			_ = eng.Close()
			t.Fatalf("%s: engine.New at maxclients succeeded", drv)
		}
		t.Logf("%s: failed after %v: %v", drv, took.Round(time.Millisecond), err)
		var ce *engine.ConnectError
		var se *engine.ServerError
		if !errors.As(err, &ce) || !errors.As(err, &se) {
			t.Errorf("%s: %v (%T): want a *ConnectError and a *ServerError in it", drv, err, err)
			continue
		}
		if took > 2*time.Second {
			t.Errorf("%s: engine.New took %s to fail", drv, took)
		}
		got[drv] = seen{ce.Reason, se.Message}
	}
	if got["glide"] != got["valkey-go"] || !strings.Contains(got["glide"].msg, "max number of clients") {
		t.Errorf("valkey-go %+v, glide %+v", got["valkey-go"], got["glide"])
	}
}

// GEO replies read the same: glide makes GEODIST's distance a double
// ("0.0000" read as 0) and nests GEOSEARCH's WITH* fields in an array of
// their own ([name, [dist, hash, [lon, lat]]]); the driver restores the
// server's [name, dist, hash, [lon, lat]] and distances as strings.
func TestParityGeoReplies(t *testing.T) {
	cmds := [][]string{
		{"GEODIST", "g", "Palermo", "Palermo"},
		{"GEODIST", "g", "Palermo", "Catania", "km"},
		{"GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "500", "km", "ASC", "WITHDIST", "WITHCOORD", "WITHHASH"},
		{"GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "DESC", "WITHCOORD"},
		{"GEOSEARCH", "g", "FROMMEMBER", "Catania", "BYRADIUS", "500", "km", "ASC", "COUNT", "1", "WITHDIST"},
		{"GEOSEARCH", "g", "FROMMEMBER", "Catania", "BYRADIUS", "500", "km", "ASC"},
	}
	got := map[string][]string{}
	for _, drv := range parityDrivers {
		eng, _ := parityEngine(t, drv)
		ctx := ctxT(t)
		if _, err := eng.Do(ctx, "GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania").Await(ctx); err != nil {
			t.Fatal(err)
		}
		for _, c := range cmds {
			r, err := eng.Do(ctx, c[0], c[1:]...).Await(ctx)
			if err != nil {
				t.Fatalf("%s: %q: %v", drv, c, err)
			}
			a, err := r.Any()
			got[drv] = append(got[drv], fmt.Sprintf("%#v %v", a, err))
		}
	}
	for i, c := range cmds {
		if want, have := got["valkey-go"][i], got["glide"][i]; want != have {
			t.Errorf("%q:\n  valkey-go %s\n  glide     %s", c, want, have)
		}
	}
}

// engine.New to an address where nothing listens fails at once with the
// same *engine.ConnectError (its Reason: connection refused;
// errors.Is(err, syscall.ECONNREFUSED)). glide retries refused
// connections until DialTimeout (5 s), and the engine then reported a
// dial timeout.
func TestParityConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	reasons := map[string]string{}
	for _, drv := range parityDrivers {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(addr).WithDriver(drv))
		took := time.Since(start)
		cancel()
		if err == nil {
			_ = eng.Close()
			t.Fatalf("%s: engine.New to %s succeeded", drv, addr)
		}
		var ce *engine.ConnectError
		if !errors.As(err, &ce) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s: %v (%T): want a *ConnectError wrapping ECONNREFUSED", drv, err, err)
			continue
		}
		if took > 2*time.Second {
			t.Errorf("%s: engine.New took %s to fail", drv, took)
		}
		reasons[drv] = ce.Reason
	}
	if reasons["glide"] != reasons["valkey-go"] {
		t.Errorf("reason: valkey-go %q, glide %q", reasons["valkey-go"], reasons["glide"])
	}
}

// An ACL user without +client|setname and the default ClientName
// ("vactor"): glide sets the name with CLIENT SETNAME after HELLO and
// retried the refused handshake until DialTimeout (5 s), and engine.New
// reported a timeout. It fails at once now, with the server's NOPERM as a
// *ServerError in the *ConnectError. (valkey-go sets the name inside
// HELLO, which any user may send, and connects.) Without a client name
// glide connects.
func TestParityClientNameRefused(t *testing.T) {
	srv := valkeytest.Start(t)
	if err := srv.AddUser("noname", "pw", "~*", "+@all", "-client|setname"); err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultConfig().WithAddrs(srv.Addr()).WithDriver("glide")
	cfg.Username, cfg.Password = "noname", "pw"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	eng, err := engine.New(ctx, cfg)
	took := time.Since(start)
	if err == nil {
		_ = eng.Close()
		t.Fatal("engine.New over glide as a user without +client|setname succeeded")
	}
	var ce *engine.ConnectError
	var se *engine.ServerError
	if !errors.As(err, &ce) || !errors.As(err, &se) || se.Prefix != "NOPERM" {
		t.Fatalf("%v (%T): want a *ConnectError with a NOPERM *ServerError in it", err, err)
	}
	if !strings.Contains(ce.Reason, "CLIENT SETNAME") || !strings.Contains(err.Error(), "+client|setname") {
		t.Errorf("reason %q, error %q: want them to name CLIENT SETNAME and +client|setname", ce.Reason, err)
	}
	if took > 2*time.Second {
		t.Errorf("engine.New took %s to fail", took)
	}

	cfg.ClientName = ""
	eng, err = engine.New(ctx, cfg)
	if err != nil {
		t.Fatalf("engine.New over glide without a client name: %v", err)
	}
	defer func() { _ = eng.Close() }()
	if r, err := eng.Do(ctx, "PING").Await(ctx); err != nil {
		t.Fatalf("PING: %v, %v", r, err)
	}
}
