package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/futures"
)

// A burst of big reads fired at once: 1,000 MGETs of 1,000 keys holding 64
// bytes each go out as one or two pipelines whose replies (some 70 MB)
// take far longer to arrive and decode than the read timeout, set short
// here since the read timeout is what the test is about. The read timeout
// bounds silence on the connection, not a whole pipeline: a pipeline
// whose replies keep coming is never failed, and every MGET returns its
// values, in its order.
func TestBigRepliesOutlastReadTimeout(t *testing.T) {
	const (
		readTimeout = 500 * time.Millisecond
		nKeys       = 1000
		nMGets      = 1000
	)
	eng, _ := newEngine(t, func(c config.Config) config.Config {
		return c.WithReadTimeout(readTimeout).WithWriteTimeout(readTimeout)
	})
	// The burst takes 5 s under -race on an idle 2-core machine, 25 s on a
	// busy one: ctxT's 30 s is too close.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	keys := make([]string, nKeys)
	kv := make([]string, 0, 2*nKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("big:%04d", i)
		kv = append(kv, keys[i], bigValue(i))
	}
	if _, err := eng.MSet(ctx, kv...).Await(ctx); err != nil {
		t.Fatalf("MSET: %v", err)
	}

	// MGET i asks for the keys rotated by i, so that each reply is told
	// apart from the others.
	fs := make([]*futures.Future[[]*string], nMGets)
	start := time.Now()
	for i := range fs {
		fs[i] = eng.MGet(ctx, append(keys[i%nKeys:], keys[:i%nKeys]...)...)
	}
	for i, f := range fs {
		vals, err := f.Await(ctx)
		if err != nil {
			t.Fatalf("MGET %d of %d (%s after the burst was fired): %v; stats %+v",
				i, nMGets, time.Since(start), err, eng.Stats())
		}
		if len(vals) != nKeys {
			t.Fatalf("MGET %d: %d values, want %d", i, len(vals), nKeys)
		}
		for j, v := range vals {
			if want := bigValue((i + j) % nKeys); v == nil || *v != want {
				t.Fatalf("MGET %d value %d = %v, want %q", i, j, v, want)
			}
		}
	}
	elapsed := time.Since(start)
	st := eng.Stats()
	t.Logf("%d MGETs of %d keys in %s (read timeout %s): %d pipelines, largest %d", nMGets, nKeys, elapsed, readTimeout, st.Batches, st.MaxBatch)
	if elapsed <= readTimeout {
		t.Fatalf("the burst took %s, within the read timeout %s: the test did not test a pipeline outlasting it", elapsed, readTimeout)
	}
	if st.Reconnects != 0 || st.OutcomeUnknown != 0 {
		t.Fatalf("%d reconnects, %d commands of unknown outcome: a pipeline was failed", st.Reconnects, st.OutcomeUnknown)
	}
}

// bigValue is the 64-byte value of key i.
func bigValue(i int) string {
	s := fmt.Sprintf("value-%04d-", i)
	return s + strings.Repeat("x", 64-len(s))
}
