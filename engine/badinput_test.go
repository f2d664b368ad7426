package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

func TestUnknownCommandIsServerError(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	_, err := eng.Do(ctx, "NOSUCHCOMMAND", "a").Await(ctx)
	var se *engine.ServerError
	if !errors.As(err, &se) || se.Prefix != "ERR" || !strings.Contains(se.Message, "unknown command") {
		t.Fatalf("unknown command err = %#v", err)
	}
	if _, err := eng.Do(ctx, "").Await(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("empty command name err = %v", err)
	}
	// The connection still works.
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestWrongTypeIsServerError(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if _, err := eng.Do(ctx, "LPUSH", "list", "a").Await(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := eng.Get(ctx, "list").Await(ctx)
	if !errors.Is(err, &engine.ServerError{Prefix: "WRONGTYPE"}) {
		t.Fatalf("GET on a list err = %v, want WRONGTYPE", err)
	}
	_, err = eng.Incr(ctx, "list").Await(ctx)
	var se *engine.ServerError
	if !errors.As(err, &se) || se.Prefix != "WRONGTYPE" {
		t.Fatalf("INCR on a list err = %v", err)
	}
	// Not an integer: a server error too, not a panic.
	eng.Set(ctx, "s", "abc", 0)
	if _, err := eng.Incr(ctx, "s").Await(ctx); !errors.As(err, &se) || se.Prefix != "ERR" {
		t.Fatalf("INCR on a non-integer err = %v", err)
	}
}

// A value over the server's proto-max-bulk-len fails that command with a
// clear error; the engine reconnects and serves the next commands.
func TestValueOverProtoMaxBulkLen(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--proto-max-bulk-len", "1mb"}})
	ctx := ctxT(t)
	eng, err := open(ctx, t, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	big := strings.Repeat("x", 1<<20+1)
	_, err = eng.Set(ctx, "big", big, 0).Await(ctx)
	if err == nil {
		t.Fatal("SET of a value over proto-max-bulk-len succeeded")
	}
	t.Logf("oversized SET: %v", err)
	// The engine recovers: the next commands succeed.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := eng.Set(ctx, "small", "ok", 0).Await(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine did not recover after the oversized value: %v", err)
		}
	}
	if v, err := eng.Get(ctx, "small").Await(ctx); err != nil || v != "ok" {
		t.Fatalf("Get after recovery = %q, %v", v, err)
	}
	if n, _ := eng.Exists(ctx, "big").Await(ctx); n != 0 {
		t.Fatal("oversized value was stored")
	}
}

func TestBinaryAndEmptyKeysRoundTrip(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	cases := map[string]string{
		"":                        "empty key",
		"\x00\x01\xff\r\n$3":      "binary\x00value\r\n",
		"ключ":                    "",
		strings.Repeat("k", 1000): strings.Repeat("\x00", 4096),
	}
	for k, v := range cases {
		if _, err := eng.Set(ctx, k, v, 0).Await(ctx); err != nil {
			t.Fatalf("Set %q: %v", k, err)
		}
	}
	for k, v := range cases {
		got, err := eng.Get(ctx, k).Await(ctx)
		if err != nil || got != v {
			t.Fatalf("Get %q = %q, %v; want %q", k, got, err, v)
		}
	}
}

func TestInvalidConfig(t *testing.T) {
	ctx := context.Background()
	_, err := open(ctx, t, config.DefaultConfig().WithPort(70000))
	if !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), "70000") {
		t.Fatalf("bad port err = %v", err)
	}
	_, err = open(ctx, t, config.DefaultConfig().WithDialTimeout(-time.Second))
	if !errors.Is(err, config.ErrInvalidConfig) {
		t.Fatalf("negative timeout err = %v", err)
	}
	_, err = open(ctx, t, config.DefaultConfig().WithDriver("nope"))
	if !errors.Is(err, drivers.ErrUnknownDriver) || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "valkey-go") {
		t.Fatalf("unknown driver err = %v", err)
	}
	_, err = open(ctx, t, config.DefaultConfig().WithPassword("s3cret").WithPort(0))
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v is nil or leaks the password", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	checks := map[string]error{
		"MSET odd":      eng.MSet(ctx, "a").Err(ctx),
		"MGET none":     func() error { _, err := eng.MGet(ctx).Await(ctx); return err }(),
		"DEL none":      eng.Del(ctx).Err(ctx),
		"SET neg ttl":   eng.Set(ctx, "k", "v", -5*time.Second).Err(ctx),
		"SET NX and XX": eng.SetArgs(ctx, "k", "v", engine.SetOptions{NX: true, XX: true}).Err(ctx),
		"EXPIRE 0":      eng.Expire(ctx, "k", 0).Err(ctx),
	}
	for name, err := range checks {
		if !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
	if n, _ := eng.Exists(ctx, "k", "a").Await(ctx); n != 0 {
		t.Fatal("an invalid command was sent")
	}
	// The hints name a call that takes the ttl (qa-AL AL3: "use PExpire"
	// for a ttl PExpire refuses too).
	for _, c := range []struct {
		err  error
		hint string
	}{
		{eng.Expire(ctx, "k", 500*time.Millisecond).Err(ctx), "(use PExpire)"},
		{eng.Expire(ctx, "k", 0).Err(ctx), "(to remove the key now use Del or Unlink)"},
		{eng.Expire(ctx, "k", -time.Second).Err(ctx), "(to remove the key now use Del or Unlink)"},
		{eng.PExpire(ctx, "k", 0).Err(ctx), "(to remove the key now use Del or Unlink)"},
		{eng.PExpire(ctx, "k", 500*time.Microsecond).Err(ctx), "(ttls are whole milliseconds: round it up)"},
	} {
		if !errors.Is(c.err, engine.ErrInvalidArgument) || !strings.HasSuffix(c.err.Error(), c.hint) {
			t.Errorf("err = %v, want ErrInvalidArgument ending in %q", c.err, c.hint)
		}
	}
}

func TestFullMailboxRejectPolicy(t *testing.T) {
	eng, _ := newEngine(t, func(c config.Config) config.Config {
		return c.WithMailboxCapacity(4).WithBackpressure(config.BackpressureReject)
	})
	ctx := ctxT(t)
	const n = 20000
	fs := make([]*futures.Future[int64], n)
	for i := range fs {
		fs[i] = eng.Incr(ctx, "ctr")
	}
	ok, rejected := 0, 0
	for _, f := range fs {
		_, err := f.Await(ctx)
		switch {
		case err == nil:
			ok++
		case errors.Is(err, engine.ErrBackpressure):
			rejected++
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if rejected == 0 {
		t.Fatal("no command was rejected by a 4-slot mailbox")
	}
	if got := eng.Stats().Rejected; got != uint64(rejected) {
		t.Fatalf("Stats.Rejected = %d, futures rejected = %d", got, rejected)
	}
	v, err := eng.Get(ctx, "ctr").Await(ctx)
	if err != nil || v != itoa(ok) {
		t.Fatalf("counter = %s (%v), want %d: a rejected command was written or an accepted one lost", v, err, ok)
	}
}

func TestFullMailboxBlockPolicy(t *testing.T) {
	eng, _ := newEngine(t, func(c config.Config) config.Config { return c.WithMailboxCapacity(4) })
	ctx := ctxT(t)
	const n = 20000
	fs := make([]*futures.Future[int64], n)
	for i := range fs {
		fs[i] = eng.Incr(ctx, "ctr")
	}
	for i, f := range fs {
		if v, err := f.Await(ctx); err != nil || v != int64(i+1) {
			t.Fatalf("incr %d = %d, %v", i, v, err)
		}
	}
	// A blocked caller whose context ends fails with the context's error.
	if eng.Stats().Rejected != 0 {
		t.Fatal("block policy rejected commands")
	}
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n)) }

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}
