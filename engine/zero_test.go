package engine_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
)

// The objects the engine makes, used without it (a zero value, or a nil
// pointer where a method can tell): every exported method returns at once
// with an error that matches ErrNotCreated (a TxReader's reads:
// ErrInvalidArgument, "outside Watch"), an empty result, or a closed
// channel; none panics or hangs. A zero BatchWriter's Flush hung forever,
// whatever its ctx; the others panicked (QA: zero values).
func TestZeroValuesFailCleanly(t *testing.T) {
	ctxType := reflect.TypeFor[context.Context]()
	errType := reflect.TypeFor[error]()
	for _, v := range []any{
		new(engine.Pipeline), new(engine.Tx), engine.TxReader{}, new(engine.Tx).Read(),
		new(engine.Subscription), (*engine.Subscription)(nil),
		new(engine.BatchWriter), (*engine.BatchWriter)(nil),
		new(engine.Consumer), (*engine.Consumer)(nil),
	} {
		rv := reflect.ValueOf(v)
		typ := fmt.Sprintf("%T", v)
		if rv.Kind() == reflect.Pointer && rv.IsNil() {
			typ = "nil " + typ
		}
		want := engine.ErrNotCreated
		if _, ok := v.(engine.TxReader); ok {
			want = engine.ErrInvalidArgument
		}
		for i := range rv.NumMethod() {
			name := typ + "." + rv.Type().Method(i).Name
			if rv.Type().Method(i).Name == "Format" {
				// fmt.Formatter: fmt calls it with its State, never nil.
				if s := fmt.Sprint(v); !strings.HasPrefix(s, "vactor.") || !strings.Contains(s, "engine") {
					t.Errorf("fmt.Sprint of a %s = %q, want vactor.<type>(... engine ...)", typ, s)
				}
				continue
			}
			m := rv.Method(i)
			mt := m.Type()
			var args []reflect.Value
			for j := range mt.NumIn() - btoi(mt.IsVariadic()) {
				switch at := mt.In(j); {
				case at == ctxType:
					args = append(args, reflect.ValueOf(context.Background()))
				case at.Kind() == reflect.String:
					args = append(args, reflect.ValueOf("k").Convert(at))
				default:
					args = append(args, reflect.Zero(at))
				}
			}
			done := make(chan error, 1)
			go func() {
				defer func() {
					if r := recover(); r != nil {
						done <- fmt.Errorf("panic: %v", r)
					}
				}()
				var err error
				for _, o := range m.Call(args) {
					switch {
					case o.Type() == errType:
						if !o.IsNil() {
							err = o.Interface().(error)
						} else if !returnsOnlyError(mt) {
							continue
						} else {
							err = errors.New("nil error")
						}
					case o.MethodByName("Await").IsValid():
						ctx, cancel := context.WithTimeout(context.Background(), time.Second)
						r := o.MethodByName("Await").Call([]reflect.Value{reflect.ValueOf(ctx)})
						cancel()
						if e := r[len(r)-1]; !e.IsNil() {
							err = e.Interface().(error)
						}
					case o.Kind() == reflect.Chan:
						if _, ok := o.Recv(); ok {
							err = errors.New("channel not closed")
						}
					}
				}
				if err != nil && !errors.Is(err, want) {
					err = fmt.Errorf("error %w, want one matching %v", err, want)
				} else {
					err = nil
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
			case <-time.After(3 * time.Second):
				t.Errorf("%s: no return within 3 s", name)
			}
		}
	}
}

// returnsOnlyError reports whether a method returns nothing but an error
// (which must then be one).
func returnsOnlyError(mt reflect.Type) bool {
	return mt.NumOut() == 1 && mt.Out(0) == reflect.TypeFor[error]()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
