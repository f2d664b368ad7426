package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/engine"
)

// dsFill creates n keys named prefix0..prefix(n-1) with MSET.
func dsFill(t testing.TB, ctx context.Context, eng *engine.Engine, prefix string, n int) {
	t.Helper()
	kv := make([]string, 0, 200)
	for i := range n {
		kv = append(kv, fmt.Sprintf("%s%d", prefix, i), "v")
		if len(kv) == cap(kv) || i == n-1 {
			dsAwait(t, ctx, "MSET", eng.MSet(ctx, kv...))
			kv = kv[:0]
		}
	}
}

// dsScanAll ranges over it and returns how often each key was yielded.
func dsScanAll(t testing.TB, seq func(func(string, error) bool)) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for k, err := range seq {
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		seen[k]++
	}
	return seen
}

// dsWantEachOnce checks that seen holds exactly prefix0..prefix(n-1), each
// yielded once.
func dsWantEachOnce(t testing.TB, seen map[string]int, prefix string, n int) {
	t.Helper()
	if len(seen) != n {
		t.Fatalf("scan yielded %d distinct keys, want %d", len(seen), n)
	}
	for i := range n {
		k := fmt.Sprintf("%s%d", prefix, i)
		if c := seen[k]; c != 1 {
			t.Fatalf("key %q yielded %d times, want once", k, c)
		}
	}
}

func TestScanMatchYieldsEachKeyOnce(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	dsFill(t, ctx, eng, "scan:", 1000)
	dsFill(t, ctx, eng, "other:", 300)

	for _, count := range []int64{0, 7, 100, 5000} {
		t.Run(fmt.Sprintf("count=%d", count), func(t *testing.T) {
			seen := dsScanAll(t, eng.Scan(ctx, "scan:*", count))
			dsWantEachOnce(t, seen, "scan:", 1000)
		})
	}
	t.Run("no match", func(t *testing.T) {
		seen := dsScanAll(t, eng.Scan(ctx, "", 50))
		if len(seen) != 1300 {
			t.Fatalf("SCAN without MATCH yielded %d keys, want 1300", len(seen))
		}
		for k, c := range seen {
			if c != 1 || !(strings.HasPrefix(k, "scan:") || strings.HasPrefix(k, "other:")) {
				t.Fatalf("key %q yielded %d times", k, c)
			}
		}
	})
	t.Run("no key matches", func(t *testing.T) {
		if seen := dsScanAll(t, eng.Scan(ctx, "nothing:*", 0)); len(seen) != 0 {
			t.Fatalf("SCAN MATCH nothing:* yielded %v", seen)
		}
	})
	t.Run("reusable", func(t *testing.T) {
		seq := eng.Scan(ctx, "other:*", 64)
		dsWantEachOnce(t, dsScanAll(t, seq), "other:", 300)
		dsWantEachOnce(t, dsScanAll(t, seq), "other:", 300)
	})
}

func TestScanEmptyDatabase(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if seen := dsScanAll(t, eng.Scan(ctx, "", 0)); len(seen) != 0 {
		t.Fatalf("SCAN of an empty database yielded %v", seen)
	}
	p := dsAwait(t, ctx, "ScanPage", eng.ScanPage(ctx, 0, "", 0))
	if p.Cursor != 0 || len(p.Keys) != 0 {
		t.Fatalf("ScanPage of an empty database = %+v", p)
	}
}

func TestScanBinaryKeys(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	keys := []string{"b:\x00", "b:\x00\x00", "b:", "b:\r\n", "b:*"}
	for _, k := range keys {
		dsAwait(t, ctx, "SET", eng.Set(ctx, k, "v", 0))
	}
	seen := dsScanAll(t, eng.Scan(ctx, "b:*", 0))
	if len(seen) != len(keys) {
		t.Fatalf("SCAN b:* = %v, want %q", seen, keys)
	}
	for _, k := range keys {
		if seen[k] != 1 {
			t.Fatalf("key %q yielded %d times, want once", k, seen[k])
		}
	}
}

// Breaking out of the loop stops the iteration: no SCAN after the page
// that held the key the consumer stopped at.
func TestScanEarlyBreakStops(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	dsFill(t, ctx, eng, "scan:", 1000)

	before := dsCalls(t, ctx, eng, "scan")
	n := 0
	for k, err := range eng.Scan(ctx, "scan:*", 10) {
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(k, "scan:") {
			t.Fatalf("unexpected key %q", k)
		}
		n++
		break
	}
	if n != 1 {
		t.Fatalf("loop body ran %d times, want 1", n)
	}
	if got := dsCalls(t, ctx, eng, "scan"); got != before+1 {
		t.Fatalf("SCAN ran %d times for a loop that broke at the first key, want 1", got-before)
	}

	// Breaking later: exactly the pages up to the break are requested.
	// Replay the pages with ScanPage to know how many that is. A rehash of
	// the keyspace finishing between the replay and the iteration changes
	// the pages, so retry a few times; an iterator that sends one SCAN too
	// many fails every time.
	var calls, pages int64
	for range 5 {
		pages = dsPagesFor(t, ctx, eng, "scan:*", 10, 25)
		before = dsCalls(t, ctx, eng, "scan")
		got := 0
		for _, err := range eng.Scan(ctx, "scan:*", 10) {
			if err != nil {
				t.Fatal(err)
			}
			if got++; got == 25 {
				break
			}
		}
		if calls = dsCalls(t, ctx, eng, "scan") - before; calls == pages {
			return
		}
	}
	t.Fatalf("breaking at key 25 ran SCAN %d times, want %d", calls, pages)
}

// dsPagesFor returns how many SCAN pages it takes to see n keys.
func dsPagesFor(t testing.TB, ctx context.Context, eng *engine.Engine, match string, count int64, n int) int64 {
	t.Helper()
	var cursor uint64
	var pages int64
	seen := 0
	for {
		p := dsAwait(t, ctx, "ScanPage", eng.ScanPage(ctx, cursor, match, count))
		pages++
		if seen += len(p.Keys); seen >= n {
			return pages
		}
		if p.Cursor == 0 {
			t.Fatalf("SCAN %s saw only %d keys, want at least %d", match, seen, n)
		}
		cursor = p.Cursor
	}
}

func TestScanErrorYieldsOnceAndStops(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	dsFill(t, ctx, eng, "scan:", 100)

	// A context already cancelled: one ("", context.Canceled), then stop.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	var errs []error
	for k, err := range eng.Scan(cctx, "", 0) {
		if k != "" {
			t.Fatalf("key %q yielded with a cancelled context", k)
		}
		errs = append(errs, err)
	}
	if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("cancelled scan yielded %v, want one context.Canceled", errs)
	}

	// Cancelled midway: keys, then one error, then nothing.
	mctx, mcancel := context.WithCancel(ctx)
	defer mcancel()
	keys, errs := 0, errs[:0]
	for k, err := range eng.Scan(mctx, "scan:*", 5) {
		if err != nil {
			if k != "" {
				t.Fatalf("error pair carries key %q", k)
			}
			errs = append(errs, err)
			continue // the iterator, not the consumer, must stop
		}
		keys++
		mcancel()
	}
	if keys == 0 || keys >= 100 {
		t.Fatalf("cancelled midway after %d keys; want some but not all", keys)
	}
	if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("midway cancel yielded errors %v, want one context.Canceled", errs)
	}

	// A closed engine: one ErrClosed.
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	errs = errs[:0]
	for _, err := range eng.Scan(ctx, "", 0) {
		errs = append(errs, err)
	}
	if len(errs) != 1 || !errors.Is(errs[0], engine.ErrClosed) {
		t.Fatalf("scan of a closed engine yielded %v, want one ErrClosed", errs)
	}
}

func TestScanPageCursor(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	dsFill(t, ctx, eng, "p:", 200)
	dsFill(t, ctx, eng, "q:", 50)
	seen := map[string]int{}
	var cursor uint64
	pages := 0
	for {
		p := dsAwait(t, ctx, "ScanPage", eng.ScanPage(ctx, cursor, "p:*", 20))
		pages++
		for _, k := range p.Keys {
			seen[k]++
		}
		if p.Cursor == 0 {
			break
		}
		cursor = p.Cursor
		if pages > 10000 {
			t.Fatal("SCAN cursor never returned to 0")
		}
	}
	if pages < 2 {
		t.Fatalf("200 keys in %d page(s) with COUNT 20; want several", pages)
	}
	dsWantEachOnce(t, seen, "p:", 200)
}
