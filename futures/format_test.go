package futures

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

type secretWatcher struct{ arg string }

func (w secretWatcher) Error() string              { return w.arg }
func (secretWatcher) Waiting(context.Context) bool { return true }
func (secretWatcher) WaitEnded(context.Context)    {}

func TestFormatStates(t *testing.T) {
	p := NewPromise[string]()
	p.Watch(secretWatcher{arg: "hunter2-argument"})
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		if got := fmt.Sprintf(verb, p.Future()); got != "Future(pending)" {
			t.Errorf("pending %s = %q", verb, got)
		}
		if got := fmt.Sprintf(verb, p); strings.Contains(got, "hunter2") {
			t.Errorf("promise %s shows its watcher: %q", verb, got)
		}
	}
	p.Resolve("v")
	if got := fmt.Sprintf("%q", p.Future()); got != `Future("v")` {
		t.Errorf("done %%q = %s", got)
	}
	if got := fmt.Sprint(Failed[int](errors.New("boom"))); got != "Future(error: boom)" {
		t.Errorf("failed = %s", got)
	}
	var nilF *Future[int]
	if got := fmt.Sprint(nilF); got != "Future(nil)" {
		t.Errorf("nil = %s", got)
	}
}

// TestFormatWhileCompleting fails under -race if printing reads the fields a
// completion writes.
func TestFormatWhileCompleting(t *testing.T) {
	for range 200 {
		p := NewPromise[[]byte]()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); p.Resolve([]byte("x")) }()
		s := fmt.Sprint(p.Future())
		if s != "Future(pending)" && s != "Future([120])" {
			t.Fatalf("got %q", s)
		}
		wg.Wait()
	}
}
