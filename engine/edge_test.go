package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// The edge tests call every exported method of the engine and of its
// handles (found by reflection, so a method added later is covered too)
// with made-up arguments, and check what each reports: a method that
// panics, hangs or leaves a future pending fails the test by name.

// callTimeout bounds one reflective call (and the await of what it
// returned): a call that takes longer hangs.
const callTimeout = 15 * time.Second

var (
	ctxType = reflect.TypeFor[context.Context]()
	errType = reflect.TypeFor[error]()
	durType = reflect.TypeFor[time.Duration]()
	zType   = reflect.TypeFor[engine.Z]()
)

// args are the made-up arguments of a call, by type.
type args struct {
	ctx    context.Context // passed to the method (may be nil)
	str    string
	num    int64
	dur    time.Duration
	float  float64
	elems  int  // elements of a slice argument; -1 for a nil slice
	nils   bool // nil maps and functions, zero option structs
	fields bool // option structs with every field made up as above
}

// usual are the arguments of a call meant to succeed: "k" for a string, 1
// for a number or a duration, two elements for a slice (key/value lists
// stay even), one entry for a map, a function that returns its zero
// values, valid options.
func usual(ctx context.Context) args {
	return args{ctx: ctx, str: "k", num: 1, dur: time.Second, float: 1, elems: 2}
}

// argFor returns the made-up value of type typ.
func argFor(t *testing.T, a args, typ reflect.Type) reflect.Value {
	switch {
	case typ == ctxType:
		return reflect.ValueOf(&a.ctx).Elem()
	case typ == durType:
		return reflect.ValueOf(a.dur)
	case typ == zType:
		return reflect.ValueOf(engine.Z{Member: a.str, Score: a.float})
	case a.nils && (typ.Kind() == reflect.Struct || typ.Kind() == reflect.Map || typ.Kind() == reflect.Func || typ.Kind() == reflect.Pointer):
		return reflect.Zero(typ)
	case a.fields && typ.Kind() == reflect.Struct:
		v := reflect.New(typ).Elem()
		for i := range typ.NumField() {
			if typ.Field(i).IsExported() {
				v.Field(i).Set(argFor(t, a, typ.Field(i).Type))
			}
		}
		return v
	case typ.Kind() == reflect.Pointer:
		v := reflect.New(typ.Elem())
		v.Elem().Set(argFor(t, a, typ.Elem()))
		return v
	case typ == reflect.TypeFor[engine.XPendingOptions]():
		return reflect.ValueOf(engine.XPendingOptions{Count: a.num, Idle: a.dur})
	case typ == reflect.TypeFor[engine.ZRangeArgs]() && !a.fields:
		return reflect.ValueOf(engine.ZRangeArgs{Key: a.str, Start: "0", Stop: "-1"})
	case typ == reflect.TypeFor[engine.SubscribeOptions]():
		return reflect.ValueOf(engine.SubscribeOptions{Channels: []string{a.str}, Buffer: int(a.num)})
	}
	switch typ.Kind() {
	case reflect.String:
		return reflect.ValueOf(a.str).Convert(typ)
	case reflect.Int, reflect.Int64, reflect.Int32:
		return reflect.ValueOf(a.num).Convert(typ)
	case reflect.Uint64, reflect.Uint, reflect.Uint8:
		return reflect.ValueOf(uint64(a.num)).Convert(typ)
	case reflect.Float64:
		return reflect.ValueOf(a.float)
	case reflect.Bool:
		return reflect.ValueOf(false)
	case reflect.Slice:
		if a.elems < 0 {
			return reflect.Zero(typ)
		}
		s := reflect.MakeSlice(typ, 0, a.elems)
		for i := range a.elems {
			switch {
			case typ.Elem().Kind() == reflect.Slice: // DoMulti's ...[]string
				s = reflect.Append(s, reflect.ValueOf([]string{"PING"}))
			case typ.Elem().Kind() == reflect.String && a.str != "" && i > 0:
				// Keys of other slots: cluster mode splits or refuses.
				s = reflect.Append(s, reflect.ValueOf(fmt.Sprint(a.str, i)).Convert(typ.Elem()))
			default:
				s = reflect.Append(s, argFor(t, a, typ.Elem()))
			}
		}
		return s
	case reflect.Map:
		m := reflect.MakeMap(typ)
		m.SetMapIndex(reflect.ValueOf(a.str), reflect.ValueOf("0"))
		return m
	case reflect.Func:
		return reflect.MakeFunc(typ, func([]reflect.Value) []reflect.Value {
			out := make([]reflect.Value, typ.NumOut())
			for i := range out {
				out[i] = reflect.Zero(typ.Out(i))
			}
			return out
		})
	case reflect.Struct:
		return reflect.Zero(typ)
	}
	t.Fatalf("no made-up argument for type %s", typ)
	return reflect.Value{}
}

// outcome is what one call reported: the errors it returned or its
// futures failed with, and the values it returned that are neither.
type outcome struct {
	errs   []error
	others []reflect.Value
}

// call calls m (a bound method value) with made-up arguments, awaits every
// future it returns and drains every iterator; a panic, or a call or an
// await that takes more than callTimeout, fails the test.
func call(t *testing.T, ctx context.Context, name string, m reflect.Value) outcome {
	t.Helper()
	return settleWithin(t, ctx, name, invoke(t, ctx, name, m))
}

// invoke calls m with made-up arguments and returns what it returned; a
// panic, or a call that takes more than callTimeout, fails the test.
func invoke(t *testing.T, ctx context.Context, name string, m reflect.Value) []reflect.Value {
	t.Helper()
	return invokeWith(t, usual(ctx), name, m)
}

// invokeWith is invoke with the arguments a.
func invokeWith(t *testing.T, a args, name string, m reflect.Value) []reflect.Value {
	t.Helper()
	typ := m.Type()
	in := make([]reflect.Value, typ.NumIn())
	for i := range in {
		in[i] = argFor(t, a, typ.In(i))
	}
	return within(t, name, func() []reflect.Value {
		if typ.IsVariadic() {
			return m.CallSlice(in)
		}
		return m.Call(in)
	})
}

// settleWithin is settle bounded by callTimeout.
func settleWithin(t *testing.T, ctx context.Context, name string, out []reflect.Value) outcome {
	t.Helper()
	var o outcome
	within(t, name, func() []reflect.Value { o = settle(ctx, out); return nil })
	return o
}

// within runs fn on a goroutine of its own; fn's panic, or fn taking more
// than callTimeout, fails the test (Errorf: within also runs on the
// workers of TestEdgeCallsDuringClose) and returns nil.
func within(t *testing.T, name string, fn func() []reflect.Value) []reflect.Value {
	t.Helper()
	done := make(chan []reflect.Value, 1)
	panicked := make(chan any, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				panicked <- p
			}
		}()
		done <- fn()
	}()
	select {
	case out := <-done:
		return out
	case p := <-panicked:
		t.Errorf("%s panicked: %v", name, p)
	case <-time.After(callTimeout):
		t.Errorf("%s did not return (or its future did not complete) within %s", name, callTimeout)
	}
	return nil
}

// settle awaits the futures among out (their Await method) and drains the
// iterators (iter.Seq2[_, error]), collecting the errors.
func settle(ctx context.Context, out []reflect.Value) outcome {
	var o outcome
	for _, v := range out {
		switch {
		case v.Type() == errType:
			if !v.IsNil() {
				o.errs = append(o.errs, v.Interface().(error))
			} else {
				o.errs = append(o.errs, nil)
			}
		case v.Kind() == reflect.Pointer && strings.HasPrefix(v.Type().Elem().Name(), "Future["):
			res := v.MethodByName("Await").Call([]reflect.Value{reflect.ValueOf(ctx)})
			err, _ := res[1].Interface().(error)
			o.errs = append(o.errs, err)
		case v.Kind() == reflect.Func && v.Type().NumIn() == 1 && v.Type().In(0).Kind() == reflect.Func:
			// An iter.Seq2[K, error]: record each error it yields.
			yield := v.Type().In(0)
			v.Call([]reflect.Value{reflect.MakeFunc(yield, func(args []reflect.Value) []reflect.Value {
				err, _ := args[1].Interface().(error)
				o.errs = append(o.errs, err)
				return []reflect.Value{reflect.ValueOf(err == nil)}
			})})
		default:
			o.others = append(o.others, v)
		}
	}
	return o
}

// methods returns the exported methods of v by name, without skip.
func methods(v any, skip ...string) map[string]reflect.Value {
	rv := reflect.ValueOf(v)
	ms := make(map[string]reflect.Value)
	for i := range rv.NumMethod() {
		name := rv.Type().Method(i).Name
		// Format is fmt.Formatter's: fmt calls it with its State
		// (TestFmtNeverShowsPassword covers it).
		if name != "Format" && !slices.Contains(skip, name) {
			ms[name] = rv.Method(i)
		}
	}
	return ms
}

// wantErr checks that every error of o is want (errors.Is), and that there
// is at least one.
func wantErr(t *testing.T, name string, o outcome, want error) {
	t.Helper()
	if len(o.errs) == 0 {
		t.Errorf("%s reported no error, want %v (returned %v)", name, want, o.others)
		return
	}
	for _, err := range o.errs {
		if !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", name, err, want)
		}
	}
}

func fmtValues(vs []reflect.Value) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "%v ", v)
	}
	return b.String()
}

// Every method of an engine called after Close fails with ErrClosed (the
// futures, the errors, the iterators), at once, without a panic; IsHealthy
// is false; Stats and Config still answer. The same for the synchronous
// Client, and for a Pipeline and a Tx made after Close.
func TestEdgeEngineAfterClose(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	// Handles made before Close and used after it.
	p, tx := eng.Pipeline(), eng.Tx()
	pset, txset := p.Set("k", "v", 0), tx.Set("k", "v", 0)
	sub, err := eng.Subscribe(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	checkAfterClose(t, eng)
	if err := p.Exec(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Pipeline.Exec of a pipeline made before Close = %v, want ErrClosed", err)
	}
	if err := tx.Exec(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Tx.Exec of a transaction made before Close = %v, want ErrClosed", err)
	}
	for name, f := range map[string]*futures.Future[struct{}]{"Pipeline.Set": pset, "Tx.Set": txset} {
		if err := f.Err(ctx); !errors.Is(err, engine.ErrClosed) {
			t.Errorf("%s queued before Close: %v, want ErrClosed", name, err)
		}
	}
	if err := sub.Err(); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Subscription.Err after the engine's Close = %v, want ErrClosed", err)
	}
	for name, m := range methods(sub, "Channel", "Dropped", "Err") {
		wantErr(t, "Subscription."+name+" after the engine's Close", call(t, ctx, "Subscription."+name, m), engine.ErrClosed)
	}
	for name, m := range methods(w, "Stats", "Flush") {
		wantErr(t, "BatchWriter."+name+" after the engine's Close", call(t, ctx, "BatchWriter."+name, m), engine.ErrClosed)
	}
}

// checkAfterClose checks every method of eng, closed, and of its Client,
// Pipeline and Tx (see TestEdgeEngineAfterClose).
func checkAfterClose(t *testing.T, eng *engine.Engine) {
	t.Helper()
	ctx := ctxT(t)
	for name, m := range methods(eng, "Close", "Config", "Stats", "Pipeline", "Tx", "Sync") {
		o := call(t, ctx, "Engine."+name, m)
		if name == "IsHealthy" {
			if len(o.others) != 1 || o.others[0].Bool() {
				t.Errorf("IsHealthy after Close = %s, want false", fmtValues(o.others))
			}
			continue
		}
		wantErr(t, "Engine."+name, o, engine.ErrClosed)
	}
	_ = eng.Stats()
	_ = eng.Config()
	for name, m := range methods(eng.Sync(), "Close", "IsHealthy") {
		wantErr(t, "Client."+name, call(t, ctx, "Client."+name, m), engine.ErrClosed)
	}
	if err := eng.Sync().Close(); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Client.Close after Close = %v, want ErrClosed", err)
	}
	// A Pipeline and a Tx made after Close: every command's future and Exec
	// fail with ErrClosed.
	p := eng.Pipeline()
	tx := eng.Tx()
	checkBatchClosed(t, ctx, "Pipeline", p, p.Exec)
	checkBatchClosed(t, ctx, "Tx", tx, tx.Exec)
}

// checkBatchClosed queues every command of b (a Pipeline or a Tx), runs
// exec, and checks that exec and every queued future fail with ErrClosed.
func checkBatchClosed(t *testing.T, ctx context.Context, kind string, b any, exec func(context.Context) error) {
	t.Helper()
	queued := make(map[string][]reflect.Value)
	for name, m := range methods(b, "Exec", "Discard", "Len", "Read") {
		queued[name] = invoke(t, ctx, kind+"."+name, m)
	}
	if err := exec(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("%s.Exec after Close = %v, want ErrClosed", kind, err)
	}
	for name, out := range queued {
		wantErr(t, kind+"."+name, settleWithin(t, ctx, kind+"."+name, out), engine.ErrClosed)
	}
}

// Handles used after their own end: every method of a Pipeline or a Tx
// after Exec or Discard fails with ErrInvalidArgument (their futures
// too), a TxReader or a DedicatedConn kept after its function returned
// fails with ErrInvalidArgument, and a Subscription or a BatchWriter
// after its Close fails with ErrClosed (a second Close returns ErrClosed;
// a Consumer's Close is idempotent).
func TestEdgeHandlesAfterTheirEnd(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)

	for _, end := range []string{"Exec", "Discard"} {
		p, tx := eng.Pipeline(), eng.Tx()
		p.Set("k", "v", 0)
		tx.Set("k", "v", 0)
		if end == "Exec" {
			if err := p.Exec(ctx); err != nil {
				t.Fatal(err)
			}
			if err := tx.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		} else {
			p.Discard()
			tx.Discard()
		}
		for kind, b := range map[string]any{"Pipeline": p, "Tx": tx} {
			for name, m := range methods(b, "Discard", "Len", "Read") {
				wantErr(t, kind+"."+name+" after "+end, call(t, ctx, kind+"."+name, m), engine.ErrInvalidArgument)
			}
			for name, m := range methods(tx.Read()) {
				wantErr(t, "TxReader."+name+" after "+end, call(t, ctx, "TxReader."+name, m), engine.ErrInvalidArgument)
			}
		}
		p.Discard()
		tx.Discard()
		if p.Len() != 0 || tx.Len() != 0 {
			t.Fatalf("after %s: Len = %d, %d", end, p.Len(), tx.Len())
		}
	}

	var keptConn *engine.DedicatedConn
	if err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error { keptConn = c; return nil }); err != nil {
		t.Fatal(err)
	}
	for name, m := range methods(keptConn, "Addr") {
		wantErr(t, "DedicatedConn."+name+" after Dedicated", call(t, ctx, "DedicatedConn."+name, m), engine.ErrInvalidArgument)
	}
	var kept *engine.Tx
	if err := eng.Watch(ctx, func(tx *engine.Tx) error { kept = tx; return nil }, "k"); err != nil {
		t.Fatal(err)
	}
	for name, m := range methods(kept.Read()) {
		wantErr(t, "TxReader."+name+" after Watch", call(t, ctx, "TxReader."+name, m), engine.ErrInvalidArgument)
	}
	for name, m := range methods(kept, "Discard", "Len", "Read") {
		wantErr(t, "Tx."+name+" after Watch", call(t, ctx, "Tx."+name, m), engine.ErrInvalidArgument)
	}

	sub, err := eng.Subscribe(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	for name, m := range methods(sub, "Channel", "Dropped", "Err") {
		wantErr(t, "Subscription."+name+" after Close", call(t, ctx, "Subscription."+name, m), engine.ErrClosed)
	}
	for range sub.Channel() { // the events before Close, then closed
	}

	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for name, m := range methods(w, "Stats", "Flush") {
		wantErr(t, "BatchWriter."+name+" after Close", call(t, ctx, "BatchWriter."+name, m), engine.ErrClosed)
	}
	if err := w.Flush(ctx); err != nil { // nothing is left to wait for
		t.Errorf("BatchWriter.Flush after Close = %v, want nil", err)
	}
	_ = w.Stats()

	if _, err := eng.XGroupCreate(ctx, "s", "g", "0", true).Await(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := eng.Consume(ctx, "s", "g", "c", func(context.Context, engine.XEntry) error { return nil }, engine.ConsumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // documented: idempotent, always nil
		t.Errorf("Consumer.Close again = %v, want nil", err)
	}
	select {
	case <-c.Done():
	default:
		t.Error("Consumer.Done not closed after Close")
	}
	_ = c.Stats()
}

// Every method of the engine, fired from several goroutines while Close
// runs: no panic, no call that hangs, every future complete once Close
// returned (written, or failed with ErrClosed, or the server's reply to
// the made-up arguments), and no goroutine left behind.
func TestEdgeCallsDuringClose(t *testing.T) {
	srv := valkeytest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	callsDuringClose(t, engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr())))
}

// The same in cluster mode (slot actors, commands split across slots),
// and every method after Close.
func TestEdgeClusterCallsDuringClose(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	cl := valkeytest.StartClusterT(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg, _ := withLogCheck(t, config.DefaultConfig().WithAddrs(cl.Addrs()[0]).WithClusterMode(true))
	eng := engineOn(t, cfg)
	callsDuringClose(t, eng)
	checkAfterClose(t, eng)
}

// callsDuringClose fires every method of eng and of its Client, and a
// Pipeline's and a Tx's Exec, from 4 goroutines, closes eng while they run, and checks the outcome (see
// TestEdgeCallsDuringClose).
func callsDuringClose(t *testing.T, eng *engine.Engine) {
	t.Helper()
	ctx := ctxT(t)
	ms := methods(eng, "Close", "Pipeline", "Tx", "Sync")
	for name, m := range methods(eng.Sync(), "Close") {
		ms["Client."+name] = m
	}
	// A Pipeline and a Tx of a SET and a GET each, executed.
	ms["Pipeline.Exec"] = reflect.ValueOf(func(ctx context.Context) (*futures.Future[struct{}], *futures.Future[string], error) {
		p := eng.Pipeline()
		set, get := p.Set("k", "v", 0), p.Get("k")
		return set, get, p.Exec(ctx)
	})
	ms["Tx.Exec"] = reflect.ValueOf(func(ctx context.Context) (*futures.Future[struct{}], *futures.Future[string], error) {
		tx := eng.Tx()
		set, get := tx.Set("k", "v", 0), tx.Get("k")
		return set, get, tx.Exec(ctx)
	})
	var closed atomic.Bool
	const workers = 4
	var started, wg sync.WaitGroup
	started.Add(workers)
	futs := make([][]reflect.Value, workers)
	errs := make([][]string, workers)
	for i := range workers {
		wg.Go(func() {
			for pass := 0; ; pass++ {
				after := closed.Load()
				for name, m := range ms {
					out := invoke(t, ctx, name, m)
					for _, v := range out {
						if v.Kind() == reflect.Pointer && strings.HasPrefix(v.Type().Elem().Name(), "Future[") {
							futs[i] = append(futs[i], v)
						}
					}
					o := settleWithin(t, ctx, name, out)
					for _, err := range o.errs {
						if !allowedDuringClose(err) {
							errs[i] = append(errs[i], fmt.Sprintf("%s: %v", name, err))
						}
					}
				}
				if pass == 0 {
					started.Done()
				}
				if after {
					return
				}
			}
		})
	}
	started.Wait()
	closeErr := make(chan error, 1)
	go func() { closeErr <- eng.Close() }()
	closed.Store(true)
	if err := <-closeErr; err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	for i := range workers {
		for _, f := range futs[i] {
			if !f.MethodByName("IsDone").Call(nil)[0].Bool() {
				t.Fatalf("a future of %s is still pending after Close", f.Type())
			}
		}
		for _, e := range errs[i] {
			t.Error(e)
		}
	}
}

// allowedDuringClose reports whether err is an outcome of a call made
// while Close ran: success, ErrClosed, the server's (or the engine's)
// answer to made-up arguments (ErrCrossSlot: keys "k" and "k1"), or, for
// a blocking command (BLPop, BLMove, ...) Close cut, ErrOutcomeUnknown
// naming the Close (it may have popped its element: see Do).
func allowedDuringClose(err error) bool {
	var se *engine.ServerError
	return err == nil || errors.Is(err, engine.ErrClosed) || errors.Is(err, engine.ErrNil) ||
		errors.As(err, &se) || errors.Is(err, engine.ErrInvalidArgument) || errors.Is(err, engine.ErrCrossSlot) ||
		errors.Is(err, engine.ErrOutcomeUnknown) && strings.Contains(err.Error(), "engine closed while")
}

// Every method of the engine, the Client, a Pipeline and a Tx with edge
// arguments (a nil or cancelled ctx; empty strings, nil slices and maps,
// nil functions, zero options; negative, huge and not-a-number values):
// no panic, no call that outlives its ctx, and each error typed (see
// typedErr).
func TestEdgeBadArguments(t *testing.T) {
	eng, _ := newEngine(t)
	badArguments(t, eng)
}

// The same in cluster mode (commands split across slots, slot actors).
func TestEdgeClusterBadArguments(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	badArguments(t, clusterEngine(t, valkeytest.StartClusterT(t)))
}

// boundedKey marks the ctx of a profile whose subtest gets a ctx that
// ends within 5 s.
type boundedKey struct{}

// badArguments calls the methods of eng and its handles with each profile
// of edge arguments (see TestEdgeBadArguments).
func badArguments(t *testing.T, eng *engine.Engine) {
	t.Helper()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	// A profile's bounded ctx is made when its subtest starts: made with
	// the map, the ctx of a profile run late had less than its 5 s left
	// (TestEdgeBadArguments/odd failed once with deadline errors on a
	// busy machine after the profiles before it took 5 s).
	boundedCtx := context.WithValue(context.Background(), boundedKey{}, true)
	bounded := func() context.Context { return boundedCtx }
	profiles := map[string]args{
		"nil ctx":   {str: "k", num: 1, dur: time.Second, float: 1, elems: 2, fields: true},
		"cancelled": {ctx: cancelled, str: "k", num: 1, dur: time.Second, float: 1, elems: 2, fields: true},
		"empty":     {ctx: bounded(), elems: -1, nils: true},
		"none":      {ctx: bounded(), str: "k", num: 1, dur: time.Second, float: 1, elems: 0, fields: true},
		"odd":       {ctx: bounded(), str: "k", num: 1, dur: time.Second, float: 1, elems: 3, fields: true},
		"negative":  {ctx: bounded(), str: "k", num: -1, dur: -time.Second, float: -1, elems: 2, fields: true},
		"min":       {ctx: bounded(), str: "k", num: math.MinInt64, dur: math.MinInt64, float: math.Inf(-1), elems: 2, fields: true},
		"max":       {ctx: bounded(), str: "k", num: math.MaxInt64, dur: math.MaxInt64, float: math.Inf(1), elems: 2, fields: true},
		"nan":       {ctx: bounded(), str: "k", num: 1, dur: time.Second, float: math.NaN(), elems: 2, fields: true},
		"zero":      {ctx: bounded(), str: "k", num: 0, dur: 0, float: 0, elems: 1, fields: true},
	}
	for pname, a := range profiles {
		t.Run(pname, func(t *testing.T) {
			// Each profile's own ctx: a profile takes 0.1-5 s (a blocking
			// pop with timeout 0 or the maximum on an empty "k" runs to
			// its 5 s ctx, which the map's order decides), so ten that
			// shared one 30 s ctx overran it (soak-39: TestEdgeBadArguments
			// failed once with deadline errors in its last profile).
			ctx := ctxT(t)
			if a.ctx == boundedCtx {
				c, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				a.ctx = c
			}
			// Long blocking calls (WAIT, ...) end with their ctx, not
			// later: each profile's ctx ends within 5 s.
			ms := methods(eng, "Close", "Config", "Stats", "Pipeline", "Tx", "Sync")
			for name, m := range methods(eng.Sync(), "Close") {
				ms["Client."+name] = m
			}
			checkTyped(t, a, pname, ms)
			if err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
				checkTyped(t, a, pname, prefixed("DedicatedConn.", methods(c, "Addr")))
				return nil
			}); err != nil {
				t.Errorf("Dedicated: %v", err)
			}
			if err := eng.Watch(ctx, func(tx *engine.Tx) error {
				checkTyped(t, a, pname, prefixed("TxReader.", methods(tx.Read())))
				return nil
			}, "k"); err != nil {
				t.Errorf("Watch: %v", err)
			}
			sub, err := eng.Subscribe(ctx, "c")
			if err != nil {
				t.Fatal(err)
			}
			checkTyped(t, a, pname, prefixed("Subscription.", methods(sub, "Channel", "Dropped", "Err", "Close")))
			if err := sub.Close(); err != nil {
				t.Errorf("Subscription.Close: %v", err)
			}
			w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkTyped(t, a, pname, prefixed("BatchWriter.", methods(w, "Stats", "Close", "Flush")))
			if err := w.Close(ctx); err != nil {
				t.Errorf("BatchWriter.Close: %v", err)
			}
			for kind, b := range map[string]batch{"Pipeline": eng.Pipeline(), "Tx": eng.Tx()} {
				queued := make(map[string][]reflect.Value)
				for name, m := range methods(b, "Exec", "Discard", "Len", "Read") {
					queued[name] = invokeWith(t, a, kind+"."+name, m)
				}
				var execErr error
				within(t, kind+".Exec", func() []reflect.Value { execErr = b.Exec(a.ctx); return nil })
				if !typedErr(execErr, a.ctx) {
					t.Errorf("%s.Exec(%s): untyped error %T: %v", kind, pname, execErr, execErr)
				}
				for name, out := range queued {
					for _, err := range settleWithin(t, ctx, kind+"."+name, out).errs {
						if !typedErr(err, a.ctx) && !errors.Is(err, execErr) {
							t.Errorf("%s.%s(%s): untyped error %T: %v", kind, name, pname, err, err)
						}
					}
				}
			}
		})
	}
	if err := eng.Ping(ctxT(t)); err != nil {
		t.Fatalf("the engine does not answer after the bad arguments: %v", err)
	}
}

// checkTyped calls each of ms with a and checks that every error it
// reports is typed (typedErr).
func checkTyped(t *testing.T, a args, profile string, ms map[string]reflect.Value) {
	t.Helper()
	for name, m := range ms {
		o := settleWithin(t, context.Background(), name, invokeWith(t, a, name, m))
		for _, err := range o.errs {
			if !typedErr(err, a.ctx) {
				t.Errorf("%s(%s): untyped error %T: %v", name, profile, err, err)
			}
		}
	}
}

// prefixed returns ms with their names prefixed.
func prefixed(prefix string, ms map[string]reflect.Value) map[string]reflect.Value {
	out := make(map[string]reflect.Value, len(ms))
	for name, m := range ms {
		out[prefix+name] = m
	}
	return out
}

// batch is a Pipeline or a Tx.
type batch interface {
	Exec(context.Context) error
}

// typedErr reports whether err is nil or one the engine documents for bad
// arguments: ErrInvalidArgument, ErrNil, a *ServerError, ErrCrossSlot,
// ErrTxAborted, or the error of ctx when ctx has ended.
func typedErr(err error, ctx context.Context) bool {
	var se *engine.ServerError
	switch {
	case err == nil, errors.Is(err, engine.ErrInvalidArgument), errors.Is(err, engine.ErrNil),
		errors.As(err, &se), errors.Is(err, engine.ErrCrossSlot), errors.Is(err, engine.ErrTxAborted):
		return true
	case ctx != nil && ctx.Err() != nil:
		return errors.Is(err, ctx.Err())
	case ctx != nil:
		// Its deadline passed, and ctx's own timer has not fired yet: a
		// command's batch, whose deadline is its commands' latest, can
		// end first (a run under load failed so).
		dl, ok := ctx.Deadline()
		return ok && !time.Now().Before(dl) && errors.Is(err, context.DeadlineExceeded)
	}
	return false
}

// A subscription buffer too large to allocate fails with
// ErrInvalidArgument; it panicked in make (math.MaxInt) or could take all
// memory.
func TestEdgeSubscribeBufferTooLarge(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	for _, n := range []int{math.MaxInt, 1<<20 + 1} {
		var err error
		within(t, "SubscribeWith", func() []reflect.Value {
			_, err = eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"c"}, Buffer: n})
			return nil
		})
		if !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("SubscribeWith Buffer %d: err = %v, want ErrInvalidArgument", n, err)
		}
	}
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"c"}, Buffer: 1 << 20})
	if err != nil {
		t.Fatalf("SubscribeWith Buffer 1<<20: %v", err)
	}
	if cap(sub.Channel()) != 1<<20 {
		t.Fatalf("channel capacity %d, want %d", cap(sub.Channel()), 1<<20)
	}
	_ = sub.Close()
}

// A BatchWriter with more connections per node than it may open fails
// with ErrInvalidArgument at NewBatchWriter: with math.MaxInt its first
// Write started goroutines under the writer's lock until memory ran out.
func TestEdgeBatchWriterTooManyConns(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	for _, n := range []int{math.MaxInt, 257} {
		w, err := eng.NewBatchWriter(engine.BatchWriterOptions{ConnsPerNode: n})
		if !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("NewBatchWriter ConnsPerNode %d: err = %v, want ErrInvalidArgument", n, err)
		}
		if err == nil {
			_ = w.Close(ctx) // nothing was written: no lane started
		}
	}
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{ConnsPerNode: 256})
	if err != nil {
		t.Fatalf("NewBatchWriter ConnsPerNode 256: %v", err)
	}
	if err := w.Set(ctx, "k", "v", 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := eng.Get(ctx, "k").Await(ctx); err != nil || v != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
}

// A Consume whose Count the server would refuse in every reclaim round
// (math.MaxInt64, a natural "no limit") fails with ErrInvalidArgument; it
// started a consumer that reconnected ~90 times a second, each session
// failing with "ERR COUNT must be > 0". The largest Count allowed works.
func TestEdgeConsumeCountTooLarge(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	h := func(context.Context, engine.XEntry) error { return nil }
	for _, n := range []int64{math.MaxInt64, 1_000_001} {
		c, err := eng.Consume(ctx, "s", "g", "c", h, engine.ConsumeOptions{Count: n})
		if !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("Consume Count %d: err = %v, want ErrInvalidArgument", n, err)
		}
		if c != nil {
			_ = c.Close()
		}
	}
	handled := make(chan string, 1)
	c, err := eng.Consume(ctx, "s", "g", "c", func(_ context.Context, x engine.XEntry) error {
		handled <- x.ID
		return nil
	}, engine.ConsumeOptions{Count: 1_000_000, StartID: "0"})
	if err != nil {
		t.Fatalf("Consume Count 1,000,000: %v", err)
	}
	defer c.Close()
	id, err := eng.XAdd(ctx, "s", "f", "v").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-handled:
		if got != id {
			t.Fatalf("handled %s, want %s", got, id)
		}
	case <-ctx.Done():
		t.Fatalf("entry not handled; consumer stats %+v", c.Stats())
	}
	if st := c.Stats(); st.Reconnects != 0 {
		t.Fatalf("consumer reconnected %d times: %v", st.Reconnects, st.LastError)
	}
}

// A consumer whose every session fails at its first read (here NOPERM:
// the ACL user may not XREADGROUP) backs off exponentially between
// sessions; it re-dialled at the shortest backoff (8 ms, ~100 dials a
// second) forever, since a session that got past XGROUP CREATE counted
// as connected.
func TestEdgeConsumeBacksOffOnFailingReads(t *testing.T) {
	srv := valkeytest.Start(t)
	if err := srv.AddUser("app", "app-pass", "~*", "&*", "+@all", "-xreadgroup"); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithUsername("app").WithPassword("app-pass"))
	defer eng.Close()
	start := time.Now()
	c, err := eng.Consume(ctx, "s", "g", "c", func(context.Context, engine.XEntry) error { return nil }, engine.ConsumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 8 sessions after the first: with the default backoff (8 ms doubling
	// to 512 ms, each delay at least half of that) they cannot all start
	// within 4+8+16+32+64+128+256+256 = 764 ms.
	const sessions = 8
	for c.Stats().Reconnects < sessions {
		select {
		case <-ctx.Done():
			t.Fatalf("consumer reconnected only %d times", c.Stats().Reconnects)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Fatalf("%d reconnects within %s: no exponential backoff", sessions, d)
	}
	if err := c.Stats().LastError; !errors.Is(err, &engine.ServerError{Prefix: "NOPERM"}) {
		t.Fatalf("consumer's last error = %v, want NOPERM", err)
	}
}

// Close called again while the first Close still runs waits for it: when
// it returns (ErrClosed), every future is complete, as Close promises. It
// returned at once, with a written command still pending.
func TestEdgeConcurrentClose(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--enable-debug-command", "yes"}})
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	// A pipeline in flight for a second: the first Close drains it.
	slow := eng.Do(ctx, "DEBUG", "SLEEP", "1")
	for eng.Stats().InFlight == 0 && !slow.IsDone() {
		select {
		case <-ctx.Done():
			t.Fatal("DEBUG SLEEP never written")
		case <-time.After(time.Millisecond):
		}
	}
	first := make(chan error, 1)
	go func() { first <- eng.Close() }()
	// The first Close has started once new commands fail with ErrClosed.
	for !errors.Is(eng.Get(ctx, "k").Err(ctx), engine.ErrClosed) {
		select {
		case <-ctx.Done():
			t.Fatal("Close never started")
		case <-time.After(time.Millisecond):
		}
	}
	if err := eng.Close(); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if !slow.IsDone() {
		t.Error("the second Close returned with a written command still pending")
	}
	if err := <-first; err != nil {
		t.Errorf("first Close: %v", err)
	}
	if _, err := slow.Await(ctx); err != nil {
		t.Errorf("DEBUG SLEEP: %v", err)
	}
}

// BatchWriter.Close called again while the first Close still flushes
// waits for it: when it returns (ErrClosed), every command written is
// acknowledged or reported failed, as Close promises. It returned at
// once, with a written command still pending.
func TestEdgeBatchWriterConcurrentClose(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--enable-debug-command", "yes"}})
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	defer eng.Close()
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, "DEBUG", "SLEEP", "1"); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- w.Close(ctx) }()
	// The first Close has started once writes fail with ErrClosed.
	for !errors.Is(w.Set(ctx, "k", "v", 0), engine.ErrClosed) {
		select {
		case <-ctx.Done():
			t.Fatal("Close never started")
		case <-time.After(time.Millisecond):
		}
	}
	if err := w.Close(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if st := w.Stats(); st.Pending != 0 {
		t.Errorf("the second Close returned with %d commands pending (%+v)", st.Pending, st)
	}
	if err := <-first; err != nil {
		t.Errorf("first Close: %v", err)
	}
	if st := w.Stats(); st.Acknowledged != st.Written {
		t.Errorf("stats after Close %+v: not every command acknowledged", st)
	}
}

// WaitReplicas with a timeout below one millisecond waits about a
// millisecond, not forever: it sent WAIT n 0 (0 means no timeout), which
// held up the connection's pipeline until the command's ctx ended.
func TestEdgeWaitReplicasSubMillisecond(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := eng.WaitReplicas(wctx, "k", 1, 500*time.Microsecond).Await(ctx)
	if err != nil || n != 0 {
		t.Fatalf("WaitReplicas(1 replica, 500µs) without replicas = %d, %v; want 0, nil", n, err)
	}
}

// WaitReplicas refuses a timeout of 0 (forever) or not below ReadTimeout
// with ErrInvalidArgument, sending nothing: without replicas such a WAIT
// held up the shared connection until its read timed out, which closed it
// under every command in flight. WAIT for 0 replicas, which the server
// answers at once, runs with any timeout.
func TestEdgeWaitReplicasBoundedByReadTimeout(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	for _, timeout := range []time.Duration{0, config.DefaultConfig().ReadTimeout, time.Hour} {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := eng.WaitReplicas(wctx, "k", 1, timeout).Await(wctx)
		cancel()
		if !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("WaitReplicas(1 replica, %s) = %v; want ErrInvalidArgument", timeout, err)
		}
	}
	if n, err := eng.WaitReplicas(ctx, "k", 0, 0).Await(ctx); err != nil || n != 0 {
		t.Errorf("WaitReplicas(0 replicas, 0) = %d, %v; want 0, nil", n, err)
	}
	if err := eng.Set(ctx, "k", "v", 0).Err(ctx); err != nil {
		t.Errorf("SET after the refused WAITs: %v", err)
	}
}

// ScriptLoad in standalone mode loads the script and returns its SHA1,
// which EVALSHA then runs; a script that does not compile fails with the
// server's error.
func TestScriptLoadStandalone(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	sha, err := eng.ScriptLoad(ctx, "return KEYS[1] .. ARGV[1]").Await(ctx)
	if err != nil || len(sha) != 40 {
		t.Fatalf("ScriptLoad = %q, %v", sha, err)
	}
	r, err := eng.Do(ctx, "EVALSHA", sha, "1", "k", "v").Await(ctx)
	if s, _ := r.String(); err != nil || s != "kv" {
		t.Fatalf("EVALSHA = %q, %v; want kv", s, err)
	}
	var se *engine.ServerError
	if _, err := eng.ScriptLoad(ctx, "this is not lua").Await(ctx); !errors.As(err, &se) {
		t.Fatalf("ScriptLoad of a broken script = %v; want a *ServerError", err)
	}
}

// Every method of a Subscription and of a BatchWriter, fired from 4
// goroutines while the handle's Close runs: no panic, no call that hangs,
// each error ErrClosed (or the server's answer to made-up arguments), no
// write left pending once Close returned, and no goroutine left behind.
func TestEdgeHandleCallsDuringTheirClose(t *testing.T) {
	srv := valkeytest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	defer eng.Close()
	sub, err := eng.Subscribe(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range sub.Channel() { // keep the channel drained
		}
	}()
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct {
		kind  string
		ms    map[string]reflect.Value
		close func() error
	}{
		{"Subscription", methods(sub, "Close", "Channel"), sub.Close},
		{"BatchWriter", methods(w, "Close"), func() error { return w.Close(ctx) }},
	} {
		var closed atomic.Bool
		var started, wg sync.WaitGroup
		const workers = 4
		started.Add(workers)
		errs := make([][]string, workers)
		for i := range workers {
			wg.Go(func() {
				for pass := 0; ; pass++ {
					after := closed.Load()
					for name, m := range h.ms {
						for _, err := range call(t, ctx, h.kind+"."+name, m).errs {
							if !allowedDuringClose(err) {
								errs[i] = append(errs[i], fmt.Sprintf("%s.%s: %v", h.kind, name, err))
							}
						}
					}
					if pass == 0 {
						started.Done()
					}
					if after {
						return
					}
				}
			})
		}
		started.Wait()
		if err := h.close(); err != nil {
			t.Errorf("%s.Close: %v", h.kind, err)
		}
		closed.Store(true)
		wg.Wait()
		for i := range workers {
			for _, e := range errs[i] {
				t.Error(e)
			}
		}
	}
	if st := w.Stats(); st.Pending != 0 {
		t.Errorf("BatchWriter stats after Close %+v: writes pending", st)
	}
}
