package futures

import (
	"context"
	"errors"
	"strconv"
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
