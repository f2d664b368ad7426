package futures

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// hang bounds waits that only a deadlock would exhaust.
const hang = 10 * time.Second

// A callback that blocks must not hold up the goroutine that completes its
// future (for command futures, a connection actor), nor the callbacks of
// other futures.
func TestBlockingCallbackDoesNotHoldUpCompleter(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	release := make(chan struct{})
	p := NewPromise[int]()
	p.Future().OnComplete(func(int, error) { <-release })
	completed := make(chan struct{})
	go func() {
		p.Resolve(1)
		close(completed)
	}()
	select {
	case <-completed:
	case <-time.After(hang):
		close(release)
		t.Fatal("Resolve waited for a blocked callback")
	}

	// Completions and Awaits go on while the callback blocks.
	for i := range 100 {
		q := NewPromise[int]()
		go q.Resolve(i)
		if v, err := q.Future().Await(context.Background()); v != i || err != nil {
			t.Fatalf("Await = %d, %v", v, err)
		}
	}
	// A callback queued behind the blocked one still runs.
	q := NewPromise[int]()
	ran := make(chan struct{})
	q.Future().OnComplete(func(int, error) { close(ran) })
	q.Resolve(2)
	select {
	case <-ran:
	case <-time.After(hang):
		t.Fatal("a callback queued behind a blocked one never ran")
	}
	close(release)
}

// A callback may wait for a future that a later callback completes (Then,
// Join): that must not deadlock.
func TestCallbackAwaitingLaterCallback(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	a, b := NewPromise[int](), NewPromise[int]()
	got := make(chan int, 1)
	a.Future().OnComplete(func(int, error) {
		j := Join(b.Future(), Completed(1))
		v, err := Then(j, func(v []int) (int, error) { return v[0] + v[1], nil }).Await(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- v
	})
	a.Resolve(0)
	b.Resolve(41)
	select {
	case v := <-got:
		if v != 42 {
			t.Fatalf("got %d, want 42", v)
		}
	case <-time.After(hang):
		t.Fatal("callback waiting for a later callback never returned")
	}
}

// Many callbacks, each blocking until the next has run, all complete; and
// every worker is gone once the queue is empty.
func TestCallbackChain(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const n = 200
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	ps := make([]*Promise[int], n)
	ran := make([]chan struct{}, n)
	for i := range ps {
		ps[i] = NewPromise[int]()
		ran[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range ps {
		ps[i].Future().OnComplete(func(int, error) {
			close(ran[i])
			if i+1 < n {
				select {
				case <-ran[i+1]:
				case <-ctx.Done():
					t.Errorf("callback %d: the next one never ran", i)
				}
			}
			wg.Done()
		})
	}
	for i := range ps {
		ps[i].Resolve(i)
	}
	all := make(chan struct{})
	go func() {
		wg.Wait()
		close(all)
	}()
	select {
	case <-all:
	case <-ctx.Done():
		t.Fatal("not every callback returned")
	}
}
