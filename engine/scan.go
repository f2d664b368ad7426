package engine

import (
	"context"
	"iter"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/futures"
)

// ScanPage is one page of a SCAN: the keys it returned and the cursor of
// the next page (0 when the iteration is complete).
type ScanPage struct {
	Cursor uint64
	Keys   []string
}

// ScanPage runs one SCAN from cursor (0 starts an iteration) and returns
// the page: its keys, possibly none, and the next cursor, 0 at the end.
// MATCH is sent only when match is not empty and COUNT only when count > 0
// (a hint for the page size; the server's default is 10).
func (e *Engine) ScanPage(ctx context.Context, cursor uint64, match string, count int64) *futures.Future[ScanPage] {
	c := e.b.Scan().Cursor(cursor)
	var cmd valkey.Completed
	switch {
	case match != "" && count > 0:
		cmd = c.Match(match).Count(count).Build()
	case match != "":
		cmd = c.Match(match).Build()
	case count > 0:
		cmd = c.Count(count).Build()
	default:
		cmd = c.Build()
	}
	return submit(e, ctx, "", cmd, decodeScanPage)
}

// Scan iterates over the keys of the database, running SCAN page by page
// (one page in flight at a time) until the server's cursor returns to 0:
//
//	for key, err := range eng.Scan(ctx, "user:*", 100) {
//		if err != nil {
//			return err
//		}
//		...
//	}
//
// match and count are as for ScanPage. Each pair yielded is a key and a nil
// error; when a page fails (ctx ended, server or transport error) the
// iterator yields ("", err) once and stops. Breaking out of the loop stops
// the iteration: no further SCAN is sent. SCAN's guarantees apply: a key
// present for the whole iteration is yielded, a key added or removed
// meanwhile may or may not be, and a key may be yielded twice if the
// keyspace is resized during the iteration.
//
// The returned iterator may be ranged over any number of times, each
// starting a new iteration; ctx bounds every one of them.
func (e *Engine) Scan(ctx context.Context, match string, count int64) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		var cursor uint64
		for {
			page, err := e.ScanPage(ctx, cursor, match, count).Await(ctx)
			if err != nil {
				yield("", err)
				return
			}
			for _, k := range page.Keys {
				if !yield(k, nil) {
					return
				}
			}
			if page.Cursor == 0 {
				return
			}
			cursor = page.Cursor
		}
	}
}
