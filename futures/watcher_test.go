package futures

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// testWatcher records the calls a future makes to its Watcher; keepFor is
// the ctx whose waits it keeps hearing of.
type testWatcher struct {
	keepFor context.Context
	p       *Promise[int]

	mu      sync.Mutex
	waiting []context.Context
	ended   []context.Context
}

func (w *testWatcher) Error() string { return "testWatcher" }

func (w *testWatcher) Waiting(ctx context.Context) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waiting = append(w.waiting, ctx)
	return ctx == w.keepFor
}

func (w *testWatcher) WaitEnded(ctx context.Context) {
	w.mu.Lock()
	w.ended = append(w.ended, ctx)
	w.mu.Unlock()
	w.p.Reject(ctx.Err())
}

func (w *testWatcher) calls() (waiting, ended int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.waiting), len(w.ended)
}

func watched(keepFor context.Context) (*Promise[int], *testWatcher) {
	p := NewPromise[int]()
	w := &testWatcher{keepFor: keepFor, p: p}
	p.Watch(w)
	return p, w
}

// An Await with the ctx the watcher keeps tells it of the wait and, when
// the ctx ends first, of the end; the watcher completes the future then.
func TestWatcherAwaitOwnCtx(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	p, w := watched(ctx)
	if _, err := p.Future().Await(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Await: %v, want context.DeadlineExceeded", err)
	}
	if n, e := w.calls(); n != 1 || e != 1 {
		t.Fatalf("Waiting called %d times, WaitEnded %d; want 1 and 1", n, e)
	}
	if _, err, ok := p.Future().Result(); !ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Result after Await: %v, %v; want done with context.DeadlineExceeded", err, ok)
	}
	// An Await with a ctx that had ended before it is called tells the
	// watcher too (a second future, same watcher kind).
	p2, w2 := watched(ctx)
	if _, err := p2.Future().Await(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Await with an ended ctx: %v", err)
	}
	if n, e := w2.calls(); n != 1 || e != 1 {
		t.Fatalf("ended ctx: Waiting called %d times, WaitEnded %d; want 1 and 1", n, e)
	}
}

// Another ctx, OnComplete and Done tell the watcher once: it returns
// false and is dropped. The result, not the watcher, is what the future
// returns.
func TestWatcherDroppedAfterOtherWait(t *testing.T) {
	own, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, w := watched(own)
	f := p.Future()
	var got sync.WaitGroup
	got.Add(1)
	f.OnComplete(func(v int, err error) {
		if v != 7 || err != nil {
			t.Errorf("callback: %d, %v; want 7, nil", v, err)
		}
		got.Done()
	})
	_ = f.Done()
	other, cancelOther := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancelOther()
	if _, err := f.Await(other); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Await with another ctx: %v", err)
	}
	if n, e := w.calls(); n != 1 || e != 0 {
		t.Fatalf("Waiting called %d times, WaitEnded %d; want 1 (dropped after it) and 0", n, e)
	}
	if _, err, ok := f.Result(); ok || err != nil {
		t.Fatalf("Result of a pending future: %v, %v; want not done, nil", err, ok)
	}
	p.Resolve(7)
	if v, err := f.Await(context.Background()); v != 7 || err != nil {
		t.Fatalf("Await: %d, %v; want 7, nil", v, err)
	}
	got.Wait()
}

// Completion drops the watcher: later waits do not reach it.
func TestWatcherDroppedAtCompletion(t *testing.T) {
	p, w := watched(context.Background())
	p.Resolve(1)
	f := p.Future()
	f.OnComplete(func(int, error) {})
	_ = f.Done()
	if v, err := f.Await(context.Background()); v != 1 || err != nil {
		t.Fatalf("Await: %d, %v", v, err)
	}
	if n, e := w.calls(); n != 0 || e != 0 {
		t.Fatalf("watcher called (%d, %d) after completion", n, e)
	}
}
