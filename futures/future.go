package futures

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// ErrNilFuture is the error a nil *Future reads as: every method of a nil
// Future behaves as on a future failed with ErrNilFuture (Await and Err
// return it at once, OnComplete calls back with it), and All, AllSettled,
// Join and Then report it for a nil future among their arguments, so that
// a missing future is an error where it is read rather than a nil-pointer
// panic, possibly on a callback goroutine.
var ErrNilFuture = errors.New("futures: nil future")

// ErrNilFunc is the error of the future Then returns when given a nil
// function.
var ErrNilFunc = errors.New("futures: nil function")

const (
	statePending uint32 = iota
	stateDone
)

// Future is the read side of a value of type T that becomes available once.
//
// A Future is safe for concurrent use by any number of goroutines. It must
// not be copied after first use. The zero Future is pending forever; create
// futures with NewPromise, Completed or Failed. A nil *Future reads as a
// future failed with ErrNilFuture.
type Future[T any] struct {
	state atomic.Uint32 // statePending until val/err are set, then stateDone
	mu    sync.Mutex    // guards waiter and more while pending
	val   T
	err   error

	// waiter is the wake-up channel of the first blocked Await. Each such
	// channel is owned by one Await call and buffered (1), so completion
	// never blocks on a send.
	waiter chan struct{}
	// more holds what few futures need: further waiters, the Done channel
	// and callbacks. It is allocated on first use only.
	more *extras
}

type extras struct {
	waiters   []chan struct{}
	done      chan struct{} // created by Done, closed on completion
	callbacks []func()      // queued on the callback executor at completion
}

func (f *Future[T]) extras() *extras {
	if f.more == nil {
		f.more = new(extras)
	}
	return f.more
}

// Promise is the write side of a Future. The goroutine that holds the
// Promise completes it once with Complete, Resolve or Reject; later calls are
// ignored and report false. A Promise is safe for concurrent use: when
// several goroutines race to complete it, exactly one wins.
type Promise[T any] Future[T]

// NewPromise returns a pending Promise. Its Future is p.Future(); both are
// the same single allocation.
func NewPromise[T any]() *Promise[T] { return new(Promise[T]) }

// Future returns the read side of p. It allocates nothing.
func (p *Promise[T]) Future() *Future[T] { return (*Future[T])(p) }

// Complete sets the result of the future to (v, err) and wakes every waiter.
// It reports whether this call completed the future; once completed, later
// calls change nothing and return false.
// A nil Promise completes nothing and reports false.
func (p *Promise[T]) Complete(v T, err error) bool { return (*Future[T])(p).complete(v, err) }

// Resolve completes the future with v and a nil error.
func (p *Promise[T]) Resolve(v T) bool { return (*Future[T])(p).complete(v, nil) }

// Reject completes the future with err and T's zero value. A nil err
// completes it successfully, with the zero value (as Complete(zero, nil)).
func (p *Promise[T]) Reject(err error) bool {
	var zero T
	return (*Future[T])(p).complete(zero, err)
}

// IsDone reports whether the future has been completed.
func (p *Promise[T]) IsDone() bool { return (*Future[T])(p).IsDone() }

// A Watcher hears of the waits on a pending future (see Promise.Watch):
// vactor's commands use it to register on their context only when a
// wait needs it.
//
// It is an error only so that the pending future can hold it in its
// error field, unused until completion, without a field or an
// allocation of its own: the future never returns it as an error.
type Watcher interface {
	error
	// Waiting is called when a wait begins on the pending future: by
	// Await with its ctx (context.Background() for a nil ctx or one that
	// never ends), or by OnComplete or Done with context.Background(). It runs under the future's lock, so it must not
	// complete the future nor wait; it may start a goroutine that does.
	// It returns whether it wants to hear of later waits: once it returns
	// false, the watcher is dropped.
	Waiting(ctx context.Context) (keep bool)
	// WaitEnded is called, without the lock, when an Await whose Waiting
	// kept the watcher returns because its ctx ended first (or had ended
	// when it was called); it may complete the future.
	WaitEnded(ctx context.Context)
}

// Assister is a Watcher that can do, on the goroutine of an Await whose
// ctx never ends (nil, or Done() nil), the work that completes its
// future, instead of that goroutine blocking until another does it.
// Await calls Assist, without the future's lock, before it blocks; the
// future may still be pending afterwards (Await then blocks as usual,
// after calling Waiting). Any other wait only calls Waiting.
type Assister interface {
	Watcher
	Assist() bool
}

// Watch makes w hear of the waits on p's future while it is pending (see
// Watcher). Call it before the future is handed to anyone: it is not
// safe for concurrent use with the future's other methods. Completion
// drops w.
func (p *Promise[T]) Watch(w Watcher) { p.err = w }

// watcher returns the future's Watcher while it is pending; f.mu must be
// held.
func (f *Future[T]) watcher() Watcher {
	if f.err == nil {
		return nil
	}
	w, _ := f.err.(Watcher)
	return w
}

// waiting tells the future's Watcher, if any, that a wait with ctx
// begins, and drops it unless it wants to hear of more; it returns the
// watcher when kept. f.mu must be held, and the future pending.
func (f *Future[T]) waiting(ctx context.Context) Watcher {
	w := f.watcher()
	if w == nil {
		return nil
	}
	if w.Waiting(ctx) {
		return w
	}
	f.err = nil
	return nil
}

// Completed returns a future already completed with v.
func Completed[T any](v T) *Future[T] {
	f := new(Future[T])
	f.val = v
	f.state.Store(stateDone)
	return f
}

// Failed returns a future already completed with err (with a nil err,
// completed successfully with T's zero value).
func Failed[T any](err error) *Future[T] {
	f := new(Future[T])
	f.err = err
	f.state.Store(stateDone)
	return f
}

func (f *Future[T]) complete(v T, err error) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	if f.state.Load() == stateDone {
		f.mu.Unlock()
		return false
	}
	f.val, f.err = v, err
	f.state.Store(stateDone)
	w, more := f.waiter, f.more
	f.waiter = nil
	f.mu.Unlock()
	if w != nil {
		w <- struct{}{}
	}
	if more != nil {
		// more is no longer written: completion is final and every writer
		// checks the state under f.mu first.
		for _, c := range more.waiters {
			c <- struct{}{}
		}
		if more.done != nil {
			close(more.done)
		}
		if len(more.callbacks) > 0 {
			callbacks.push(more.callbacks...) // never run here: see OnComplete
		}
	}
	return true
}

// OnComplete arranges for fn to be called with the future's result once it
// completes: at once on the calling goroutine when it already has, else on
// the package's callback goroutines, never on the goroutine that completes
// the future (for vactor's command futures, a connection actor, which must
// never wait on user code). Completing a future only queues its callbacks.
//
// Callbacks begin in the order their futures completed (a future's own in
// the order registered), on a worker goroutine started when there are
// callbacks to run and gone when there are none. A callback may block:
// fire another command into a full mailbox, await a future, even one whose
// completion needs a later callback (a Then or Join future). When no
// callback has begun for about a millisecond while others wait, another
// worker is started for them: a blocking callback delays those queued
// behind it by about that much and never delays a completion or an Await.
// Callbacks may therefore run concurrently with each other. A callback
// that panics crashes the program, as a panic on any goroutine does.
// A nil fn is ignored.
func (f *Future[T]) OnComplete(fn func(v T, err error)) {
	if fn == nil {
		return
	}
	if f == nil {
		var zero T
		fn(zero, ErrNilFuture)
		return
	}
	f.mu.Lock()
	if f.state.Load() != stateDone {
		f.waiting(context.Background())
		x := f.extras()
		x.callbacks = append(x.callbacks, func() { fn(f.val, f.err) })
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	fn(f.val, f.err)
}

// IsDone reports whether the future has been completed.
func (f *Future[T]) IsDone() bool { return f == nil || f.state.Load() == stateDone }

// Result returns the value and error of a completed future without waiting.
// ok is false, with zero results, while the future is pending.
func (f *Future[T]) Result() (v T, err error, ok bool) {
	if f == nil {
		return v, ErrNilFuture, true
	}
	if f.state.Load() != stateDone {
		return v, nil, false
	}
	return f.val, f.err, true
}

// Await waits until the future completes and returns its value and error,
// or until ctx ends and returns ctx.Err(). Ending the wait does not cancel
// the work behind the future. A nil ctx waits without bound.
func (f *Future[T]) Await(ctx context.Context) (T, error) {
	if f == nil {
		var zero T
		return zero, ErrNilFuture
	}
	if f.state.Load() == stateDone {
		return f.val, f.err
	}
	var stop <-chan struct{}
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			f.waitEnded(ctx)
			var zero T
			return zero, err
		}
		stop = ctx.Done()
	}
	f.mu.Lock()
	if f.state.Load() == stateDone {
		f.mu.Unlock()
		return f.val, f.err
	}
	if stop == nil {
		// A wait that cannot end before completion may do the work that
		// completes the future itself (Assister).
		if a, ok := f.watcher().(Assister); ok {
			f.mu.Unlock()
			a.Assist()
			if f.state.Load() == stateDone {
				return f.val, f.err
			}
			f.mu.Lock()
			if f.state.Load() == stateDone {
				f.mu.Unlock()
				return f.val, f.err
			}
		}
	}
	c := wakeups.Get().(chan struct{})
	var w Watcher
	if stop == nil {
		w = f.waiting(context.Background()) // nil or a ctx that never ends
	} else {
		w = f.waiting(ctx)
	}
	if f.waiter == nil {
		f.waiter = c
	} else {
		x := f.extras()
		x.waiters = append(x.waiters, c)
	}
	f.mu.Unlock()

	if stop == nil { // a context that never ends: a plain receive is cheaper
		<-c
		wakeups.Put(c)
		return f.val, f.err
	}
	select {
	case <-c:
		wakeups.Put(c)
		return f.val, f.err
	case <-stop:
	}
	// The context ended. Unregister c unless completion already took it, in
	// which case its wake-up is on the way and must be drained before c can
	// go back to the pool.
	f.mu.Lock()
	registered := f.unregister(c)
	f.mu.Unlock()
	if !registered {
		<-c
		wakeups.Put(c)
		return f.val, f.err
	}
	wakeups.Put(c)
	if w != nil {
		w.WaitEnded(ctx)
	}
	var zero T
	return zero, ctx.Err()
}

// waitEnded tells the future's Watcher, if it is pending and has one,
// that an Await's ctx had ended when it was called.
func (f *Future[T]) waitEnded(ctx context.Context) {
	if f.state.Load() == stateDone {
		return
	}
	f.mu.Lock()
	var w Watcher
	if f.state.Load() != stateDone {
		w = f.waiting(ctx)
	}
	f.mu.Unlock()
	if w != nil {
		w.WaitEnded(ctx)
	}
}

// unregister removes c from the waiters; f.mu must be held. It reports
// whether c was still registered.
func (f *Future[T]) unregister(c chan struct{}) bool {
	if f.waiter == c {
		f.waiter = nil
		return true
	}
	if f.more == nil {
		return false
	}
	ws := f.more.waiters
	for i, x := range ws {
		if x == c {
			last := len(ws) - 1
			ws[i] = ws[last]
			ws[last] = nil
			f.more.waiters = ws[:last]
			return true
		}
	}
	return false
}

// Done returns a channel that is closed when the future completes. The
// channel is created on the first call; use Await where possible, it
// allocates nothing.
func (f *Future[T]) Done() <-chan struct{} {
	if f == nil {
		return closedChan
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state.Load() == stateDone {
		if f.more != nil && f.more.done != nil {
			return f.more.done
		}
		return closedChan
	}
	f.waiting(context.Background())
	x := f.extras()
	if x.done == nil {
		x.done = make(chan struct{})
	}
	return x.done
}

// Err waits like Await and returns only the error.
func (f *Future[T]) Err(ctx context.Context) error {
	_, err := f.Await(ctx)
	return err
}

// closedChan is returned by Done for futures completed before Done's first call.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// wakeups pools the buffered channels that blocked Await calls park on.
var wakeups = sync.Pool{New: func() any { return make(chan struct{}, 1) }}
