package engine_test

import (
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
)

// A command that fails with an error reply returns the zero value with
// its error, never the reply's text as if it were the data: valkey-go's
// ToString gives an error reply's text as the string, so before the fix
// Get on a list returned "WRONGTYPE Operation against ..." as the value.
// Checked through the futures, the sync Client, a Pipeline, a Tx and a
// Watch's reader.
func TestErrorReplyGivesZeroValue(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if _, err := eng.RPush(ctx, "list", "a").Await(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Set(ctx, "str", "v", 0).Await(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(what, v string, err error) {
		t.Helper()
		checkServerError(t, what, err, "WRONGTYPE")
		if v != "" {
			t.Errorf("%s: value %q with the error %v, want \"\"", what, v, err)
		}
	}
	await := func(f *futures.Future[string]) (string, error) { return f.Await(ctx) }

	v, err := await(eng.Get(ctx, "list"))
	check("Get", v, err)
	v, err = await(eng.GetDel(ctx, "list"))
	check("GetDel", v, err)
	v, err = await(eng.GetEx(ctx, "list", time.Minute))
	check("GetEx", v, err)
	v, err = await(eng.HGet(ctx, "str", "f"))
	check("HGet", v, err)
	v, err = await(eng.LPop(ctx, "str"))
	check("LPop", v, err)
	v, err = await(eng.RPop(ctx, "str"))
	check("RPop", v, err)
	v, err = await(eng.XAdd(ctx, "str", "f", "v"))
	check("XAdd", v, err)

	s := eng.Sync()
	v, err = s.Get(ctx, "list")
	check("Sync Get", v, err)
	v, err = s.HGet(ctx, "str", "f")
	check("Sync HGet", v, err)
	v, err = s.LPop(ctx, "str")
	check("Sync LPop", v, err)

	p := eng.Pipeline()
	pg, ph := p.Get("list"), p.HGet("str", "f")
	if err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	v, err = await(pg)
	check("Pipeline Get", v, err)
	v, err = await(ph)
	check("Pipeline HGet", v, err)

	tx := eng.Tx()
	tg := tx.Get("list")
	if err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	v, err = await(tg)
	check("Tx Get", v, err)

	err = eng.Watch(ctx, func(tx *engine.Tx) error {
		v, err := tx.Read().Get(ctx, "list")
		check("TxReader Get", v, err)
		return nil
	}, "list")
	if err != nil {
		t.Fatal(err)
	}
}
