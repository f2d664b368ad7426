package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// fmtSecret is the password of TestFmtNeverShowsPassword: long enough that
// no address or number printed beside it can contain it by chance.
const fmtSecret = "fmt-Secret-Pa55word-9d41"

// No fmt verb shows the password: not of the Engine, of its Sync client,
// nor of anything that holds the engine (a Tx, a Pipeline, a Subscription,
// a BatchWriter, a Consumer, a DedicatedConn), nor of a struct of the
// user's that holds one in an unexported field. fmt does not call the
// methods of unexported fields, and %s of a pointer it cannot print
// dumps the struct behind it: the engine kept its config and its
// drivers' options (the password in both) as plain struct fields.
func TestFmtNeverShowsPassword(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Password: fmtSecret})
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithPassword(fmtSecret))
	defer eng.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	sub, err := eng.Subscribe(ctx, "fmt:ch")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	bw, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer bw.Close(ctx)
	cons, err := eng.Consume(ctx, "fmt:s", "g", "c", func(context.Context, engine.XEntry) error { return nil }, engine.ConsumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var ded *engine.DedicatedConn
	if err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error { ded = c; return nil }); err != nil {
		t.Fatal(err)
	}
	wantNoSecret(t, map[string]any{
		"Engine": eng, "Sync": eng.Sync(), "Tx": eng.Tx(), "Pipeline": eng.Pipeline(),
		"Subscription": sub, "BatchWriter": bw, "Consumer": cons, "DedicatedConn": ded,
		"Config": eng.Config(),
	})
	if got, want := fmt.Sprint(eng), "vactor.Engine(standalone "+srv.Addr()+")"; got != want {
		t.Errorf("fmt.Sprint(eng) = %q, want %q", got, want)
	}
	// A struct of the program's holding the engine, or a handle of its,
	// in an unexported field, printed with a verb fmt has no use for a
	// pointer (%s: fmt then prints the pointer's struct field by field,
	// without its methods) while the engine works: each handle's one
	// field is a pointer to its state, so fmt reads none of it (a map
	// read beside its writer was fatal, review-29).
	type holder struct {
		e    *engine.Engine
		sub  *engine.Subscription
		bw   *engine.BatchWriter
		cons *engine.Consumer
	}
	h := holder{eng, sub, bw, cons}
	stop := make(chan struct{})
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		for {
			select {
			case <-stop:
				return
			default:
			}
			// CLIENT NO-EVICT is sticky: the connection is closed after
			// use, so each call dials (the pools' maps change).
			_ = eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
				_, err := c.Do(ctx, "CLIENT", "NO-EVICT", "on")
				return err
			})
			_ = bw.Set(ctx, "fmt:k", "v", 0)
		}
	}()
	for range 200 {
		for _, v := range []any{h, &h} {
			if out := fmt.Sprintf("%s", v); strings.Contains(out, "map[") || strings.Contains(out, fmtSecret) {
				t.Fatalf("%%s of a holder prints the handles' state: %.300s", out)
			}
		}
	}
	close(stop)
	<-busy
	wantNoSecret(t, map[string]any{"holder": h, "*holder": &h})
}

// wantNoSecret fails t when any fmt verb of any of values shows fmtSecret.
func wantNoSecret(t *testing.T, values map[string]any) {
	t.Helper()
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, fmtSecret) {
				t.Errorf("fmt %s of %s shows the password: %.300s", verb, name, out)
			}
		}
	}
}
