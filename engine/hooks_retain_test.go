package engine_test

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/hooks"
)

// blockingPost is a PostExecution hook that blocks on its first event
// until release is closed (a slow exporter).
type blockingPost struct {
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (h *blockingPost) PostExecution(_ context.Context, _ hooks.Executed) {
	h.once.Do(func() { close(h.entered) })
	<-h.release
}

func heapAlloc() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// While a PostExecution hook is slow, the events queued behind it must
// not keep the commands' replies alive: the callers have dropped them.
// 64 GETs of a 1 MiB value, awaited and dropped, retain (nearly) nothing.
func TestHooksQueuedEventsDoNotRetainReplies(t *testing.T) {
	h := &blockingPost{entered: make(chan struct{}), release: make(chan struct{})}
	eng, _ := newEngine(t, func(c config.Config) config.Config { return c.WithHooks(h) })
	ctx := ctxT(t)
	const size, n = 1 << 20, 64
	if err := eng.Set(ctx, "rv44:big", strings.Repeat("x", size), 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	<-h.entered // the hook goroutine is stuck in the SET's event
	defer close(h.release)
	before := heapAlloc()
	for range n {
		v, err := eng.Get(ctx, "rv44:big").Await(ctx)
		if err != nil || len(v) != size {
			t.Fatalf("GET: %d bytes, %v", len(v), err)
		}
	}
	after := heapAlloc()
	grown := int64(after) - int64(before)
	t.Logf("heap %d MiB -> %d MiB (%+d KiB) with %d events queued", before>>20, after>>20, grown>>10, n)
	if grown > n*size/4 {
		t.Errorf("the queued events keep %d MiB of replies alive (%d GETs of %d KiB, dropped by their callers)", grown>>20, n, size>>10)
	}
}
