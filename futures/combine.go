package futures

import (
	"context"
	"fmt"
	"sync/atomic"
)

// nilAt reports a nil future at index i of a call's arguments.
func nilAt(i int) error { return fmt.Errorf("%w at index %d", ErrNilFuture, i) }

// All waits for every future and returns their values in the order given.
// It awaits them in that order and returns at the first failed one in that
// order with its error (the values slice is then nil: a later future that
// failed earlier in time is not the one reported), or with ctx.Err() when
// ctx ends first. Futures that are
// still pending when All returns keep running. A nil future fails All
// with an error wrapping ErrNilFuture that gives its index.
func All[T any](ctx context.Context, fs ...*Future[T]) ([]T, error) {
	vals := make([]T, len(fs))
	for i, f := range fs {
		if f == nil {
			return nil, nilAt(i)
		}
		v, err := f.Await(ctx)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	return vals, nil
}

// AllSettled waits for every future and returns each value and each error,
// index by index. It returns ctx.Err() only when ctx ends before all have
// completed. A nil future's error is ErrNilFuture.
func AllSettled[T any](ctx context.Context, fs ...*Future[T]) ([]T, []error, error) {
	vals := make([]T, len(fs))
	errs := make([]error, len(fs))
	for i, f := range fs {
		if _, err := f.Await(ctx); err != nil && !f.IsDone() {
			return nil, nil, err
		}
		vals[i], errs[i], _ = f.Result()
	}
	return vals, errs, nil
}

// Join returns a future that completes when every future in fs has: with
// all values in order, or with the error of the first future (by index) that
// failed. It runs as a callback of each of fs (see Future.OnComplete). A
// nil future in fs fails the joined future at once with an error wrapping
// ErrNilFuture that gives its index.
func Join[T any](fs ...*Future[T]) *Future[[]T] {
	for i, f := range fs {
		if f == nil {
			return Failed[[]T](nilAt(i))
		}
	}
	p := NewPromise[[]T]()
	if len(fs) == 0 {
		p.Resolve([]T{})
		return p.Future()
	}
	var left atomic.Int64
	left.Store(int64(len(fs)))
	for _, f := range fs {
		f.OnComplete(func(T, error) {
			if left.Add(-1) != 0 {
				return
			}
			vals := make([]T, len(fs))
			for i, g := range fs {
				v, err, _ := g.Result()
				if err != nil {
					p.Reject(err)
					return
				}
				vals[i] = v
			}
			p.Resolve(vals)
		})
	}
	return p.Future()
}

// Then returns a future completed with fn applied to f's value, or with f's
// error when f fails (fn is then not called). fn runs as a callback of f
// (see Future.OnComplete): at once when f has already completed, else on the
// package's callback goroutines, never on the goroutine that completes f.
// A nil f gives a future failed with ErrNilFuture, a nil fn one failed with
// ErrNilFunc. A panic in fn fails the future with a *PanicError (the
// program goes on, as after a panic in the engine's other callbacks:
// hooks, handlers); an OnComplete callback's panic is not recovered.
func Then[T, U any](f *Future[T], fn func(T) (U, error)) *Future[U] {
	if fn == nil {
		return Failed[U](ErrNilFunc)
	}
	p := NewPromise[U]()
	f.OnComplete(func(v T, err error) {
		if err != nil {
			p.Reject(err)
			return
		}
		defer func() {
			if r := recover(); r != nil {
				p.Reject(&PanicError{Value: r})
			}
		}()
		p.Complete(fn(v))
	})
	return p.Future()
}

// PanicError fails the future of Then when its function panicked: Value
// is what it panicked with.
type PanicError struct{ Value any }

func (e *PanicError) Error() string {
	return fmt.Sprintf("futures: Then's function panicked: %v", e.Value)
}

// Unwrap returns Value when it is an error (a panic(err)).
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}
