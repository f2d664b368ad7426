package futures

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestCompleteOnce(t *testing.T) {
	p := NewPromise[int]()
	f := p.Future()
	if f.IsDone() {
		t.Fatal("new future is done")
	}
	if _, _, ok := f.Result(); ok {
		t.Fatal("Result ok on pending future")
	}
	if !p.Resolve(1) {
		t.Fatal("first Resolve returned false")
	}
	if p.Resolve(2) || p.Reject(errors.New("x")) || p.Complete(3, nil) {
		t.Fatal("second completion returned true")
	}
	v, err := f.Await(context.Background())
	if v != 1 || err != nil {
		t.Fatalf("Await = %d, %v; want 1, nil", v, err)
	}
}

func TestRacingCompletersExactlyOneWins(t *testing.T) {
	for range 200 {
		p := NewPromise[int]()
		var wg sync.WaitGroup
		wins := make(chan int, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if p.Resolve(i) {
					wins <- i
				}
			}()
		}
		wg.Wait()
		close(wins)
		n, winner := 0, -1
		for w := range wins {
			n++
			winner = w
		}
		if n != 1 {
			t.Fatalf("%d completers won, want 1", n)
		}
		if v, _ := p.Future().Await(context.Background()); v != winner {
			t.Fatalf("value %d, winner %d", v, winner)
		}
	}
}

func TestManyWaiters(t *testing.T) {
	p := NewPromise[string]()
	f := p.Future()
	const n = 100
	var wg sync.WaitGroup
	got := make([]string, n)
	started := make(chan struct{}, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started <- struct{}{}
			v, err := f.Await(context.Background())
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		}()
	}
	for range n {
		<-started
	}
	done := f.Done()
	p.Resolve("ok")
	wg.Wait()
	<-done
	for i, v := range got {
		if v != "ok" {
			t.Fatalf("waiter %d got %q", i, v)
		}
	}
}

func TestAwaitContextEndsFirst(t *testing.T) {
	p := NewPromise[int]()
	f := p.Future()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	other := make(chan error, 1)
	go func() { _, err := f.Await(context.Background()); other <- err }()
	if _, err := f.Await(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Await err = %v, want deadline exceeded", err)
	}
	if f.IsDone() {
		t.Fatal("ending a wait completed the future")
	}
	p.Reject(errors.New("late"))
	if err := <-other; err == nil || err.Error() != "late" {
		t.Fatalf("other waiter got %v, want late", err)
	}
	// An already-cancelled context still reports a completed result.
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := f.Await(cctx); err == nil || err.Error() != "late" {
		t.Fatalf("Await on done future with cancelled ctx = %v", err)
	}
}

func TestCancelRacingCompletion(t *testing.T) {
	// Waiters whose context ends at the same moment as completion must
	// return either the result or the context error, never hang, and must
	// leave the pooled channels clean for the next waiter.
	for i := range 2000 {
		p := NewPromise[int]()
		f := p.Future()
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan error, 1)
		go func() { _, err := f.Await(ctx); res <- err }()
		go cancel()
		p.Resolve(i)
		if err := <-res; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("unexpected err %v", err)
		}
		if v, _ := f.Await(context.Background()); v != i {
			t.Fatalf("value %d want %d", v, i)
		}
	}
}

func TestDoneAfterCompletion(t *testing.T) {
	f := Completed(7)
	select {
	case <-f.Done():
	default:
		t.Fatal("Done of a completed future is not closed")
	}
	if v, err := f.Await(context.Background()); v != 7 || err != nil {
		t.Fatalf("got %v %v", v, err)
	}
	e := errors.New("boom")
	if _, err := Failed[int](e).Await(context.Background()); err != e {
		t.Fatalf("Failed err = %v", err)
	}
}

func TestAllocations(t *testing.T) {
	ctx := context.Background()
	// Create, complete, await: one allocation (the promise/future itself).
	n := testing.AllocsPerRun(1000, func() {
		p := NewPromise[int]()
		p.Resolve(1)
		if _, err := p.Future().Await(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if n > 1 {
		t.Fatalf("%.1f allocs per completed future, want <= 1", n)
	}
	// A blocked Await borrows a pooled channel: still one allocation in
	// steady state (the completer runs on another goroutine).
	ps := make(chan *Promise[int])
	go func() {
		for p := range ps {
			p.Resolve(1)
		}
	}()
	defer close(ps)
	n = testing.AllocsPerRun(1000, func() {
		p := NewPromise[int]()
		ps <- p
		if _, err := p.Future().Await(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if n > 1.1 {
		t.Fatalf("%.2f allocs per awaited future, want <= 1", n)
	}
}

func BenchmarkCompleteAwait(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := NewPromise[int]()
			go p.Resolve(1)
			_, _ = p.Future().Await(ctx)
		}
	})
}
