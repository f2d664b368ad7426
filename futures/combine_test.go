package futures

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAll(t *testing.T) {
	ps := []*Promise[int]{NewPromise[int](), NewPromise[int](), NewPromise[int]()}
	fs := []*Future[int]{ps[0].Future(), ps[1].Future(), ps[2].Future()}
	go func() {
		for i := len(ps) - 1; i >= 0; i-- {
			ps[i].Resolve(i * 10)
		}
	}()
	vals, err := All(context.Background(), fs...)
	if err != nil || len(vals) != 3 || vals[0] != 0 || vals[1] != 10 || vals[2] != 20 {
		t.Fatalf("All = %v, %v", vals, err)
	}
	boom := errors.New("boom")
	if _, err := All(context.Background(), Completed(1), Failed[int](boom)); err != boom {
		t.Fatalf("All err = %v, want boom", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := All(ctx, NewPromise[int]().Future()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("All on pending = %v", err)
	}
}

func TestAllSettled(t *testing.T) {
	boom := errors.New("boom")
	vals, errs, err := AllSettled(context.Background(), Completed(1), Failed[int](boom), Completed(3))
	if err != nil {
		t.Fatal(err)
	}
	if vals[0] != 1 || vals[2] != 3 || errs[0] != nil || errs[1] != boom || errs[2] != nil {
		t.Fatalf("AllSettled = %v %v", vals, errs)
	}
}

func TestJoinAndThen(t *testing.T) {
	a, b := NewPromise[int](), NewPromise[int]()
	j := Join(a.Future(), b.Future())
	s := Then(j, func(v []int) (string, error) { return strconv.Itoa(v[0] + v[1]), nil })
	if j.IsDone() || s.IsDone() {
		t.Fatal("joined future done early")
	}
	b.Resolve(2)
	a.Resolve(40)
	if v, err := s.Await(context.Background()); v != "42" || err != nil {
		t.Fatalf("Then = %q, %v", v, err)
	}
	boom := errors.New("boom")
	called := false
	e := Then(Join(Completed(1), Failed[int](boom)), func([]int) (int, error) { called = true; return 0, nil })
	if _, err := e.Await(context.Background()); err != boom || called {
		t.Fatalf("Then on failed join: err %v called %v", err, called)
	}
	if v, err := Join[int]().Await(context.Background()); err != nil || len(v) != 0 {
		t.Fatalf("empty Join = %v %v", v, err)
	}
}

// TestNilArguments: a nil future or function given to the package is an
// error where it is read, not a nil-pointer panic (for OnComplete and
// Then on a pending future, one on a callback goroutine, which would crash
// the program far from the mistake).
func TestNilArguments(t *testing.T) {
	ctx := context.Background()
	var nf *Future[int]
	if v, err := nf.Await(ctx); v != 0 || !errors.Is(err, ErrNilFuture) {
		t.Fatalf("nil Await = %v, %v", v, err)
	}
	if err := nf.Err(ctx); !errors.Is(err, ErrNilFuture) {
		t.Fatalf("nil Err = %v", err)
	}
	if _, err, ok := nf.Result(); !ok || !errors.Is(err, ErrNilFuture) || !nf.IsDone() {
		t.Fatalf("nil Result = %v %v, IsDone %v", err, ok, nf.IsDone())
	}
	select {
	case <-nf.Done():
	default:
		t.Fatal("nil Done not closed")
	}
	var got error
	nf.OnComplete(func(_ int, err error) { got = err })
	if !errors.Is(got, ErrNilFuture) {
		t.Fatalf("nil OnComplete called back with %v", got)
	}
	var np *Promise[int]
	if np.Complete(1, nil) || np.Resolve(1) || np.Reject(errors.New("x")) {
		t.Fatal("nil Promise completed")
	}

	p := NewPromise[int]()
	if _, err := All(ctx, Completed(1), nil, p.Future()); !errors.Is(err, ErrNilFuture) || err.Error() != "futures: nil future at index 1" {
		t.Fatalf("All with nil = %v", err)
	}
	_, errs, err := AllSettled(ctx, Completed(1), nil)
	if err != nil || errs[0] != nil || !errors.Is(errs[1], ErrNilFuture) {
		t.Fatalf("AllSettled with nil = %v, %v", errs, err)
	}
	if _, err := Join(p.Future(), nil).Await(ctx); !errors.Is(err, ErrNilFuture) || err.Error() != "futures: nil future at index 1" {
		t.Fatalf("Join with nil = %v", err)
	}
	if _, err := Then(nf, func(v int) (int, error) { return v, nil }).Await(ctx); !errors.Is(err, ErrNilFuture) {
		t.Fatalf("Then of nil = %v", err)
	}
	if _, err := Then[int, int](p.Future(), nil).Await(ctx); !errors.Is(err, ErrNilFunc) {
		t.Fatalf("Then with nil fn = %v", err)
	}
	p.Future().OnComplete(nil) // ignored, here and at completion
	p.Resolve(7)
	if v, err := p.Future().Await(ctx); v != 7 || err != nil {
		t.Fatalf("Await after OnComplete(nil) = %v, %v", v, err)
	}
}

// A panic in Then's function fails its future with a *PanicError, on an
// already completed future (fn runs at once) and on a pending one (fn runs
// on the callback goroutines): it crashed the program.
func TestThenPanicFailsFuture(t *testing.T) {
	boom := errors.New("boom")
	done := Completed(1)
	p := NewPromise[int]()
	pending := p.Future()
	a := Then(done, func(int) (string, error) { panic("then boom") })
	b := Then(pending, func(int) (string, error) { panic(boom) })
	p.Resolve(2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := a.Await(ctx)
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "then boom" || !strings.Contains(err.Error(), "then boom") {
		t.Fatalf("Then of a completed future, fn panicking: %v", err)
	}
	if _, err := b.Await(ctx); !errors.As(err, &pe) || !errors.Is(err, boom) {
		t.Fatalf("Then of a pending future, fn panicking with an error: %v", err)
	}
}
