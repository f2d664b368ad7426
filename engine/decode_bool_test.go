package engine_test

import (
	"errors"
	"testing"

	"github.com/vactor-io/vactor/engine"
)

// A typed string command answered with a RESP3 boolean (a proxy's or
// another server's reply of another shape) fails with ErrReplyType, as
// Do's Reply.String does: Get, HGet and the elements of MGet read it as
// "" with no error, valkey-go's ToString taking a boolean's empty text
// (qa45 F7).
func TestTypedStringOfBoolean(t *testing.T) {
	eng, ctx := fakeEngine(t, map[string]string{
		"GET t":   "#t\r\n",
		"GET f":   "#f\r\n",
		"GET e":   "$0\r\n\r\n",
		"HGET h":  "#t\r\n",
		"MGET a":  "*3\r\n$1\r\nx\r\n#t\r\n_\r\n",
		"MGET ok": "*2\r\n$0\r\n\r\n_\r\n",
	})
	wantReplyType(t, ctx, "GET of #t", eng.Get(ctx, "t"))
	wantReplyType(t, ctx, "GET of #f", eng.Get(ctx, "f"))
	wantReplyType(t, ctx, "HGET of #t", eng.HGet(ctx, "h", "f"))
	wantReplyType(t, ctx, "MGET with a #t element", eng.MGet(ctx, "a", "b", "c"))
	r, err := eng.Do(ctx, "GET", "t").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := r.String(); !errors.Is(err, engine.ErrReplyType) {
		t.Fatalf("Do GET of #t: String = %q, %v; want ErrReplyType", s, err)
	}
	if _, err := eng.Sync().Get(ctx, "t"); !errors.Is(err, engine.ErrReplyType) {
		t.Fatalf("Client.Get of #t: %v; want ErrReplyType", err)
	}
	p := eng.Pipeline()
	pg := p.Get("t")
	if err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	wantReplyType(t, ctx, "Pipeline GET of #t", pg)
	// An empty string stays a value.
	wantValue(t, ctx, "GET of an empty string", eng.Get(ctx, "e"), "")
	if vs, err := eng.MGet(ctx, "ok", "b").Await(ctx); err != nil || len(vs) != 2 || vs[0] == nil || *vs[0] != "" || vs[1] != nil {
		t.Fatalf("MGET of [\"\", nil] = %v, %v", vs, err)
	}
}
