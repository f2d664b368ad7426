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
	// A struct of the program's holding the engine in an unexported
	// field: fmt prints the engine's fields (once nothing runs, so that
	// reading them without their locks races with nothing).
	cons.Close()
	_ = sub.Close()
	_ = bw.Close(ctx)
	_ = eng.Close()
	type holder struct{ e *engine.Engine }
	wantNoSecret(t, map[string]any{"holder": holder{eng}, "*holder": &holder{eng}})
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
