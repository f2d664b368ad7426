package engine_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// The stream commands a Pipeline and a Tx took from the Engine (XRead,
// XReadGroup, XPending, XPendingExt, XClaim, XAutoClaim, XGroupCreate,
// XGroupDestroy, XInfoGroups) refuse bad arguments with the Engine's very
// errors (their checks are shared: xreadCmd, ...): the future fails with
// it, and a Pipeline's Exec, or a Tx's, which sends nothing, returns an
// error wrapping it. Their results on real data are engine/enginetest's twins.
func TestPipelineStreamCommandsRefuseAsEngine(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	s := map[string]string{"s": ">"}
	cases := []struct {
		name string
		args []any
	}{
		{"XRead", []any{int64(0), map[string]string{}}},
		{"XRead", []any{int64(-1), map[string]string{"s": "0"}}},
		{"XRead", []any{int64(0), map[string]string{"s": ""}}},
		{"XRead", []any{int64(0), map[string]string{"": "0"}}},
		{"XReadGroup", []any{"", "c", int64(0), s}},
		{"XReadGroup", []any{"g", "", int64(0), s}},
		{"XReadGroup", []any{"g", "c", int64(-1), s}},
		{"XReadGroup", []any{"g", "c", int64(0), map[string]string(nil)}},
		{"XPending", []any{"", "g"}},
		{"XPending", []any{"s", ""}},
		{"XPendingExt", []any{"s", "g", engine.XPendingOptions{}}},
		{"XPendingExt", []any{"", "g", engine.XPendingOptions{Count: 1}}},
		{"XPendingExt", []any{"s", "g", engine.XPendingOptions{Count: 1, Idle: -time.Second}}},
		{"XClaim", []any{"s", "g", "c", time.Duration(0)}},
		{"XClaim", []any{"s", "g", "", time.Duration(0), "1-1"}},
		{"XClaim", []any{"s", "g", "c", -time.Second, "1-1"}},
		{"XAutoClaim", []any{"s", "", "c", time.Duration(0), "0-0", int64(0)}},
		{"XAutoClaim", []any{"s", "g", "c", time.Duration(0), "", int64(0)}},
		{"XAutoClaim", []any{"s", "g", "c", time.Duration(0), "0-0", int64(-1)}},
		{"XGroupCreate", []any{"", "g", "0", true}},
		{"XGroupCreate", []any{"s", "g", "", false}},
		{"XGroupDestroy", []any{"s", ""}},
		{"XInfoGroups", []any{""}},
	}
	for _, tc := range cases {
		want := awaitErr(ctx, reflect.ValueOf(eng).MethodByName(tc.name), append([]any{ctx}, tc.args...))
		if !errors.Is(want, engine.ErrInvalidArgument) {
			t.Errorf("Engine.%s%v = %v; want ErrInvalidArgument", tc.name, tc.args, want)
			continue
		}
		p, tx := eng.Pipeline(), eng.Tx()
		for _, via := range []struct {
			name string
			recv any
			exec func(context.Context) error
		}{{"Pipeline", p, p.Exec}, {"Tx", tx, tx.Exec}} {
			fut := reflect.ValueOf(via.recv).MethodByName(tc.name).Call(values(tc.args))[0]
			err := via.exec(ctx)
			got := awaitFuture(ctx, fut)
			if got == nil || got.Error() != want.Error() || !errors.Is(err, got) {
				t.Errorf("%s.%s%v: future %v, Exec %v; want the Engine's %v", via.name, tc.name, tc.args, got, err, want)
			}
		}
	}
}

// awaitErr calls m with args and returns its future's error.
func awaitErr(ctx context.Context, m reflect.Value, args []any) error {
	return awaitFuture(ctx, m.Call(values(args))[0])
}

func awaitFuture(ctx context.Context, fut reflect.Value) error {
	out := fut.MethodByName("Await").Call([]reflect.Value{reflect.ValueOf(ctx)})
	err, _ := out[1].Interface().(error)
	return err
}

func values(args []any) []reflect.Value {
	in := make([]reflect.Value, len(args))
	for i, a := range args {
		in[i] = reflect.ValueOf(a)
	}
	return in
}

// Cluster mode: a Pipeline's or a Tx's XRead and XReadGroup of several
// streams go to the node of their first stream (sorted), as the Engine's;
// streams of two slots fail a Pipeline's future with the server's
// CROSSSLOT, as the Engine's, and a Tx whole with ErrCrossSlot, unsent.
func TestPipelineStreamReadsCluster(t *testing.T) {
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	a, b := "{pxr}a", "{pxr}b" // one slot
	for _, k := range []string{a, b} {
		if _, err := eng.XAddWith(ctx, k, engine.XAddOptions{ID: "1-1"}, "f", k).Await(ctx); err != nil {
			t.Fatal(err)
		}
		if err := eng.XGroupCreate(ctx, k, "g", "0", false).Err(ctx); err != nil {
			t.Fatal(err)
		}
	}
	both := map[string]string{a: "0", b: "0"}
	newer := map[string]string{a: ">", b: ">"}

	p := eng.Pipeline()
	read := p.XRead(0, both)
	group := p.XReadGroup("g", "c", 0, newer)
	pending := p.XPending(b, "g")
	cross := p.XRead(0, map[string]string{a: "0", "pxr-other": "0"})
	if err := p.Exec(ctx); err != nil {
		t.Fatalf("Pipeline.Exec: %v", err)
	}
	for name, f := range map[string]interface {
		Await(context.Context) (map[string][]engine.XEntry, error)
	}{"XRead": read, "XReadGroup": group} {
		m, err := f.Await(ctx)
		if err != nil || len(m[a]) != 1 || len(m[b]) != 1 || m[b][0].Fields["f"] != b {
			t.Errorf("pipeline %s of two streams of one slot = %v, %v", name, m, err)
		}
	}
	if sum, err := pending.Await(ctx); err != nil || sum.Count != 1 || sum.Consumers["c"] != 1 {
		t.Errorf("pipeline XPending after its XReadGroup = %+v, %v; want 1 entry held by c", sum, err)
	}
	_, want := eng.XRead(ctx, 0, map[string]string{a: "0", "pxr-other": "0"}).Await(ctx)
	if _, err := cross.Await(ctx); !errors.Is(err, engine.ErrCrossSlot) || !errors.Is(want, engine.ErrCrossSlot) {
		t.Errorf("XRead of two slots: pipeline %v, Engine %v; want CROSSSLOT both", err, want)
	}

	tx := eng.Tx()
	tread := tx.XRead(0, both)
	tinfo := tx.XInfoGroups(a)
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("Tx.Exec: %v", err)
	}
	if m, err := tread.Await(ctx); err != nil || len(m) != 2 {
		t.Errorf("tx XRead of two streams of one slot = %v, %v", m, err)
	}
	if gs, err := tinfo.Await(ctx); err != nil || len(gs) != 1 || gs[0].Name != "g" || gs[0].Pending != 1 {
		t.Errorf("tx XInfoGroups = %+v, %v; want g with 1 pending", gs, err)
	}

	tx = eng.Tx()
	tx.XGroupCreate(a, "g2", "0", false)
	tcross := tx.XReadGroup("g", "c", 0, map[string]string{a: ">", "pxr-other": ">"})
	if err := tx.Exec(ctx); !errors.Is(err, engine.ErrCrossSlot) {
		t.Fatalf("Tx.Exec with an XReadGroup of two slots = %v; want ErrCrossSlot", err)
	}
	if err := tcross.Err(ctx); err == nil {
		t.Errorf("the cross-slot XReadGroup's future succeeded")
	}
	if gs, err := eng.XInfoGroups(ctx, a).Await(ctx); err != nil || len(gs) != 1 {
		t.Errorf("groups after the refused Tx = %+v, %v; want only g (nothing sent)", gs, err)
	}
}
