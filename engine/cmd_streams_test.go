package engine_test

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
)

// stIDs returns the IDs of entries.
func stIDs(es []engine.XEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func TestStreamAddRangeLen(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)

	id1 := dsAwait(t, ctx, "XADD", eng.XAdd(ctx, "s", "a", "1", "b", "2"))
	id2 := dsAwait(t, ctx, "XADD", eng.XAdd(ctx, "s", "a", "3"))
	if id1 == "" || id2 == "" || id1 == id2 {
		t.Fatalf("XADD ids %q %q", id1, id2)
	}
	id3 := dsAwait(t, ctx, "XADD explicit", eng.XAddWith(ctx, "s", engine.XAddOptions{ID: "9999999999999-1"}, "x", "y"))
	if id3 != "9999999999999-1" {
		t.Fatalf("XADD explicit id = %q", id3)
	}
	// An ID not above the last one is refused by the server.
	var se *engine.ServerError
	if _, err := eng.XAddWith(ctx, "s", engine.XAddOptions{ID: "1-1"}, "x", "y").Await(ctx); !errors.As(err, &se) {
		t.Fatalf("XADD with a small id err = %v, want *ServerError", err)
	}
	if n := dsAwait(t, ctx, "XLEN", eng.XLen(ctx, "s")); n != 3 {
		t.Fatalf("XLEN = %d, want 3", n)
	}
	if n := dsAwait(t, ctx, "XLEN missing", eng.XLen(ctx, "nostream")); n != 0 {
		t.Fatalf("XLEN missing = %d", n)
	}

	all := dsAwait(t, ctx, "XRANGE", eng.XRange(ctx, "s", "-", "+", 0))
	want := []engine.XEntry{
		{ID: id1, Fields: map[string]string{"a": "1", "b": "2"}},
		{ID: id2, Fields: map[string]string{"a": "3"}},
		{ID: id3, Fields: map[string]string{"x": "y"}},
	}
	if len(all) != 3 {
		t.Fatalf("XRANGE = %v", all)
	}
	for i := range want {
		if all[i].ID != want[i].ID || !maps.Equal(all[i].Fields, want[i].Fields) {
			t.Fatalf("XRANGE[%d] = %+v, want %+v", i, all[i], want[i])
		}
	}
	if got := stIDs(dsAwait(t, ctx, "XRANGE count", eng.XRange(ctx, "s", "-", "+", 2))); !slices.Equal(got, []string{id1, id2}) {
		t.Fatalf("XRANGE COUNT 2 = %v", got)
	}
	if got := stIDs(dsAwait(t, ctx, "XRANGE exclusive", eng.XRange(ctx, "s", "("+id1, "+", 0))); !slices.Equal(got, []string{id2, id3}) {
		t.Fatalf("XRANGE (id1 + = %v", got)
	}
	if got := stIDs(dsAwait(t, ctx, "XREVRANGE", eng.XRevRange(ctx, "s", "+", "-", 0))); !slices.Equal(got, []string{id3, id2, id1}) {
		t.Fatalf("XREVRANGE = %v", got)
	}
	if got := stIDs(dsAwait(t, ctx, "XREVRANGE count", eng.XRevRange(ctx, "s", "+", "-", 1))); !slices.Equal(got, []string{id3}) {
		t.Fatalf("XREVRANGE COUNT 1 = %v", got)
	}
	if got := dsAwait(t, ctx, "XRANGE missing", eng.XRange(ctx, "nostream", "-", "+", 0)); len(got) != 0 {
		t.Fatalf("XRANGE missing = %v", got)
	}

	// NOMKSTREAM on a missing stream adds nothing and fails with ErrNil.
	dsWantNil(t, ctx, "XADD NOMKSTREAM", eng.XAddWith(ctx, "nostream", engine.XAddOptions{NoMkStream: true}, "a", "1"))
	if n := dsAwait(t, ctx, "EXISTS", eng.Exists(ctx, "nostream")); n != 0 {
		t.Fatalf("NOMKSTREAM created the stream")
	}
	if _, err := eng.XAddWith(ctx, "s", engine.XAddOptions{NoMkStream: true}, "a", "1").Await(ctx); err != nil {
		t.Fatalf("XADD NOMKSTREAM on an existing stream: %v", err)
	}

	// Binary fields and values round-trip.
	bid := dsAwait(t, ctx, "XADD binary", eng.XAdd(ctx, "bin", "f\x00", "\xff\x00v", "", ""))
	got := dsAwait(t, ctx, "XRANGE binary", eng.XRange(ctx, "bin", bid, bid, 0))
	if len(got) != 1 || !maps.Equal(got[0].Fields, map[string]string{"f\x00": "\xff\x00v", "": ""}) {
		t.Fatalf("binary entry = %+v", got)
	}
}

func TestStreamTrim(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	for i := range 10 {
		dsAwait(t, ctx, "XADD", eng.XAddWith(ctx, "s", engine.XAddOptions{ID: fmt.Sprintf("%d-1", i+1)}, "n", fmt.Sprint(i)))
	}
	// XADD with exact MAXLEN keeps the newest entries.
	dsAwait(t, ctx, "XADD MAXLEN", eng.XAddWith(ctx, "s", engine.XAddOptions{ID: "11-1", Trim: &engine.XTrimOptions{MaxLen: 5}}, "n", "10"))
	if got := stIDs(dsAwait(t, ctx, "XRANGE", eng.XRange(ctx, "s", "-", "+", 0))); !slices.Equal(got, []string{"7-1", "8-1", "9-1", "10-1", "11-1"}) {
		t.Fatalf("after XADD MAXLEN 5: %v", got)
	}
	// XADD with MINID evicts lower IDs.
	dsAwait(t, ctx, "XADD MINID", eng.XAddWith(ctx, "s", engine.XAddOptions{ID: "12-1", Trim: &engine.XTrimOptions{MinID: "10-1"}}, "n", "11"))
	if got := stIDs(dsAwait(t, ctx, "XRANGE", eng.XRange(ctx, "s", "-", "+", 0))); !slices.Equal(got, []string{"10-1", "11-1", "12-1"}) {
		t.Fatalf("after XADD MINID 10-1: %v", got)
	}
	// XTRIM MAXLEN exact.
	if n := dsAwait(t, ctx, "XTRIM MAXLEN", eng.XTrim(ctx, "s", engine.XTrimOptions{MaxLen: 1})); n != 2 {
		t.Fatalf("XTRIM MAXLEN 1 evicted %d, want 2", n)
	}
	if n := dsAwait(t, ctx, "XTRIM missing", eng.XTrim(ctx, "nostream", engine.XTrimOptions{MaxLen: 1})); n != 0 {
		t.Fatalf("XTRIM missing = %d", n)
	}
	// Approximate trimming of a small stream (one macro node) evicts
	// nothing; with LIMIT too.
	var big []string
	for i := range 50 {
		big = append(big, dsAwait(t, ctx, "XADD", eng.XAdd(ctx, "big", "n", fmt.Sprint(i))))
	}
	if n := dsAwait(t, ctx, "XTRIM ~", eng.XTrim(ctx, "big", engine.XTrimOptions{MaxLen: 10, Approx: true, Limit: 10})); n != 0 {
		t.Fatalf("XTRIM MAXLEN ~ 10 LIMIT 10 on one node evicted %d, want 0", n)
	}
	if _, err := eng.XAddWith(ctx, "big", engine.XAddOptions{Trim: &engine.XTrimOptions{MaxLen: 3, Approx: true}}, "n", "x").Await(ctx); err != nil {
		t.Fatalf("XADD MAXLEN ~: %v", err)
	}
	if n := dsAwait(t, ctx, "XTRIM MINID", eng.XTrim(ctx, "big", engine.XTrimOptions{MinID: big[40]})); n != 40 {
		t.Fatalf("XTRIM MINID big[40] evicted %d, want 40", n)
	}
	if got := dsAwait(t, ctx, "XRANGE", eng.XRange(ctx, "big", "-", "+", 1)); len(got) != 1 || got[0].ID != big[40] {
		t.Fatalf("first entry after XTRIM MINID = %+v, want %s", got, big[40])
	}
}

func TestStreamRead(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	a1 := dsAwait(t, ctx, "XADD", eng.XAdd(ctx, "{r}a", "k", "1"))
	a2 := dsAwait(t, ctx, "XADD", eng.XAdd(ctx, "{r}a", "k", "2"))
	b1 := dsAwait(t, ctx, "XADD", eng.XAdd(ctx, "{r}b", "k", "3"))

	got := dsAwait(t, ctx, "XREAD", eng.XRead(ctx, 0, map[string]string{"{r}a": "0", "{r}b": "0", "{r}none": "0"}))
	if len(got) != 2 || !slices.Equal(stIDs(got["{r}a"]), []string{a1, a2}) || !slices.Equal(stIDs(got["{r}b"]), []string{b1}) {
		t.Fatalf("XREAD = %+v", got)
	}
	if got["{r}a"][1].Fields["k"] != "2" {
		t.Fatalf("XREAD fields = %+v", got["{r}a"][1])
	}
	got = dsAwait(t, ctx, "XREAD count", eng.XRead(ctx, 1, map[string]string{"{r}a": "0"}))
	if !slices.Equal(stIDs(got["{r}a"]), []string{a1}) {
		t.Fatalf("XREAD COUNT 1 = %+v", got)
	}
	got = dsAwait(t, ctx, "XREAD after", eng.XRead(ctx, 0, map[string]string{"{r}a": a1}))
	if !slices.Equal(stIDs(got["{r}a"]), []string{a2}) {
		t.Fatalf("XREAD after a1 = %+v", got)
	}
	// Nothing new: an empty map, not an error, and no blocking.
	start := time.Now()
	got = dsAwait(t, ctx, "XREAD nothing", eng.XRead(ctx, 0, map[string]string{"{r}a": "$", "{r}none": "0"}))
	if len(got) != 0 {
		t.Fatalf("XREAD nothing = %+v", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("XREAD without entries took %s", d)
	}
}

func TestStreamGroups(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	var se *engine.ServerError
	// Without MKSTREAM a missing stream is an error.
	if _, err := eng.XGroupCreate(ctx, "s", "g", "0", false).Await(ctx); !errors.As(err, &se) {
		t.Fatalf("XGROUP CREATE without MKSTREAM on a missing stream: %v", err)
	}
	dsAwait(t, ctx, "XGROUP CREATE", eng.XGroupCreate(ctx, "s", "g", "0", true))
	if _, err := eng.XGroupCreate(ctx, "s", "g", "0", true).Await(ctx); !errors.Is(err, &engine.ServerError{Prefix: "BUSYGROUP"}) {
		t.Fatalf("second XGROUP CREATE err = %v, want BUSYGROUP", err)
	}
	sum := dsAwait(t, ctx, "XPENDING empty", eng.XPending(ctx, "s", "g"))
	if sum.Count != 0 || sum.Lower != "" || sum.Upper != "" || len(sum.Consumers) != 0 {
		t.Fatalf("XPENDING empty = %+v", sum)
	}
	var ids []string
	for i := range 5 {
		ids = append(ids, dsAwait(t, ctx, "XADD", eng.XAdd(ctx, "s", "n", fmt.Sprint(i))))
	}
	// c1 reads 3, c2 reads 2.
	r1 := dsAwait(t, ctx, "XREADGROUP c1", eng.XReadGroup(ctx, "g", "c1", 3, map[string]string{"s": ">"}))
	r2 := dsAwait(t, ctx, "XREADGROUP c2", eng.XReadGroup(ctx, "g", "c2", 0, map[string]string{"s": ">"}))
	if !slices.Equal(stIDs(r1["s"]), ids[:3]) || !slices.Equal(stIDs(r2["s"]), ids[3:]) {
		t.Fatalf("XREADGROUP c1 %v c2 %v, ids %v", stIDs(r1["s"]), stIDs(r2["s"]), ids)
	}
	if r := dsAwait(t, ctx, "XREADGROUP none", eng.XReadGroup(ctx, "g", "c1", 0, map[string]string{"s": ">"})); len(r) != 0 {
		t.Fatalf("XREADGROUP with nothing new = %+v", r)
	}
	// c1's own pending entries, from ID 0.
	if r := dsAwait(t, ctx, "XREADGROUP 0", eng.XReadGroup(ctx, "g", "c1", 0, map[string]string{"s": "0"})); !slices.Equal(stIDs(r["s"]), ids[:3]) {
		t.Fatalf("XREADGROUP 0 = %v", stIDs(r["s"]))
	}
	sum = dsAwait(t, ctx, "XPENDING", eng.XPending(ctx, "s", "g"))
	if sum.Count != 5 || sum.Lower != ids[0] || sum.Upper != ids[4] || !maps.Equal(sum.Consumers, map[string]int64{"c1": 3, "c2": 2}) {
		t.Fatalf("XPENDING = %+v", sum)
	}
	ext := dsAwait(t, ctx, "XPENDING ext", eng.XPendingExt(ctx, "s", "g", engine.XPendingOptions{Count: 10}))
	if len(ext) != 5 || ext[0].ID != ids[0] || ext[0].Consumer != "c1" || ext[0].Deliveries != 2 || ext[4].Consumer != "c2" || ext[4].Deliveries != 1 {
		t.Fatalf("XPENDING ext = %+v", ext)
	}
	ext = dsAwait(t, ctx, "XPENDING ext consumer", eng.XPendingExt(ctx, "s", "g", engine.XPendingOptions{Start: ids[1], End: "+", Count: 10, Consumer: "c1"}))
	if len(ext) != 2 || ext[0].ID != ids[1] || ext[1].ID != ids[2] {
		t.Fatalf("XPENDING ext c1 from ids[1] = %+v", ext)
	}
	// Nothing has been idle for an hour.
	if ext := dsAwait(t, ctx, "XPENDING idle", eng.XPendingExt(ctx, "s", "g", engine.XPendingOptions{Count: 10, Idle: time.Hour})); len(ext) != 0 {
		t.Fatalf("XPENDING IDLE 1h = %+v", ext)
	}

	if n := dsAwait(t, ctx, "XACK", eng.XAck(ctx, "s", "g", ids[0], ids[0], "1-1")); n != 1 {
		t.Fatalf("XACK = %d, want 1", n)
	}
	// XCLAIM: ids[1] to c2 (min idle 0); an acked ID is skipped.
	cl := dsAwait(t, ctx, "XCLAIM", eng.XClaim(ctx, "s", "g", "c2", 0, ids[1], ids[0]))
	if !slices.Equal(stIDs(cl), []string{ids[1]}) || cl[0].Fields["n"] != "1" {
		t.Fatalf("XCLAIM = %+v", cl)
	}
	if cl := dsAwait(t, ctx, "XCLAIM idle", eng.XClaim(ctx, "s", "g", "c1", time.Hour, ids[1])); len(cl) != 0 {
		t.Fatalf("XCLAIM with 1h min idle = %+v", cl)
	}
	// XAUTOCLAIM everything to c3, two at a time.
	ac := dsAwait(t, ctx, "XAUTOCLAIM", eng.XAutoClaim(ctx, "s", "g", "c3", 0, "0-0", 2))
	if !slices.Equal(stIDs(ac.Entries), ids[1:3]) || ac.Next == "0-0" {
		t.Fatalf("XAUTOCLAIM page 1 = %+v", ac)
	}
	ac = dsAwait(t, ctx, "XAUTOCLAIM", eng.XAutoClaim(ctx, "s", "g", "c3", 0, ac.Next, 0))
	if !slices.Equal(stIDs(ac.Entries), ids[3:]) || ac.Next != "0-0" || len(ac.Deleted) != 0 {
		t.Fatalf("XAUTOCLAIM page 2 = %+v", ac)
	}
	// A pending entry deleted from the stream: reported as deleted.
	if n := dsAwait(t, ctx, "XDEL", eng.XDel(ctx, "s", ids[4], "1-1")); n != 1 {
		t.Fatalf("XDEL = %d, want 1", n)
	}
	ac = dsAwait(t, ctx, "XAUTOCLAIM", eng.XAutoClaim(ctx, "s", "g", "c1", 0, "0-0", 0))
	if !slices.Equal(stIDs(ac.Entries), ids[1:4]) || !slices.Equal(ac.Deleted, []string{ids[4]}) {
		t.Fatalf("XAUTOCLAIM after XDEL = %+v", ac)
	}

	infos := dsAwait(t, ctx, "XINFO GROUPS", eng.XInfoGroups(ctx, "s"))
	if len(infos) != 1 || infos[0].Name != "g" || infos[0].Pending != 3 || infos[0].Consumers != 3 || infos[0].LastDeliveredID != ids[4] {
		t.Fatalf("XINFO GROUPS = %+v", infos)
	}
	if ok := dsAwait(t, ctx, "XGROUP DESTROY", eng.XGroupDestroy(ctx, "s", "g")); !ok {
		t.Fatal("XGROUP DESTROY = false")
	}
	if ok := dsAwait(t, ctx, "XGROUP DESTROY again", eng.XGroupDestroy(ctx, "s", "g")); ok {
		t.Fatal("second XGROUP DESTROY = true")
	}
	if _, err := eng.XPending(ctx, "s", "g").Await(ctx); !errors.Is(err, &engine.ServerError{Prefix: "NOGROUP"}) {
		t.Fatalf("XPENDING of a destroyed group err = %v, want NOGROUP", err)
	}
}

func TestStreamWrongType(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	dsAwait(t, ctx, "SADD", eng.SAdd(ctx, "set", "x"))
	dsWantWrongType(t, ctx, "XADD", eng.XAdd(ctx, "set", "a", "1"))
	dsWantWrongType(t, ctx, "XLEN", eng.XLen(ctx, "set"))
	dsWantWrongType(t, ctx, "XRANGE", eng.XRange(ctx, "set", "-", "+", 0))
	dsWantWrongType(t, ctx, "XREVRANGE", eng.XRevRange(ctx, "set", "+", "-", 0))
	dsWantWrongType(t, ctx, "XREAD", eng.XRead(ctx, 0, map[string]string{"set": "0"}))
	dsWantWrongType(t, ctx, "XTRIM", eng.XTrim(ctx, "set", engine.XTrimOptions{MaxLen: 1}))
	dsWantWrongType(t, ctx, "XDEL", eng.XDel(ctx, "set", "1-1"))
}

func TestStreamInvalidArguments(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	dsWantNotSent(t, ctx, eng, "xadd", func() {
		dsWantInvalid(t, "XADD empty key", eng.XAdd(ctx, "", "a", "1"))
		dsWantInvalid(t, "XADD no fields", eng.XAdd(ctx, "s"))
		dsWantInvalid(t, "XADD odd fields", eng.XAdd(ctx, "s", "a", "1", "b"))
		dsWantInvalid(t, "XADD negative MAXLEN", eng.XAddWith(ctx, "s", engine.XAddOptions{Trim: &engine.XTrimOptions{MaxLen: -1}}, "a", "1"))
		dsWantInvalid(t, "XADD MAXLEN and MINID", eng.XAddWith(ctx, "s", engine.XAddOptions{Trim: &engine.XTrimOptions{MaxLen: 1, MinID: "1-1"}}, "a", "1"))
		dsWantInvalid(t, "XADD LIMIT exact", eng.XAddWith(ctx, "s", engine.XAddOptions{Trim: &engine.XTrimOptions{MaxLen: 1, Limit: 5}}, "a", "1"))
		dsWantInvalid(t, "XADD negative LIMIT", eng.XAddWith(ctx, "s", engine.XAddOptions{Trim: &engine.XTrimOptions{MaxLen: 1, Approx: true, Limit: -5}}, "a", "1"))
	}, func() {
		dsAwait(t, ctx, "XADD", eng.XAdd(ctx, "s", "a", "1"))
	})
	dsWantNotSent(t, ctx, eng, "xrange", func() {
		dsWantInvalid(t, "XRANGE empty key", eng.XRange(ctx, "", "-", "+", 0))
		dsWantInvalid(t, "XRANGE negative count", eng.XRange(ctx, "s", "-", "+", -1))
		dsWantInvalid(t, "XRANGE empty start", eng.XRange(ctx, "s", "", "+", 0))
	}, func() {
		dsAwait(t, ctx, "XRANGE", eng.XRange(ctx, "s", "-", "+", 0))
	})
	dsWantNotSent(t, ctx, eng, "xread", func() {
		dsWantInvalid(t, "XREAD no streams", eng.XRead(ctx, 0, nil))
		dsWantInvalid(t, "XREAD empty key", eng.XRead(ctx, 0, map[string]string{"": "0"}))
		dsWantInvalid(t, "XREAD empty id", eng.XRead(ctx, 0, map[string]string{"s": ""}))
		dsWantInvalid(t, "XREAD negative count", eng.XRead(ctx, -1, map[string]string{"s": "0"}))
	}, func() {
		dsAwait(t, ctx, "XREAD", eng.XRead(ctx, 0, map[string]string{"s": "0"}))
	})
	dsWantInvalid(t, "XREVRANGE empty key", eng.XRevRange(ctx, "", "+", "-", 0))
	dsWantInvalid(t, "XREVRANGE negative count", eng.XRevRange(ctx, "s", "+", "-", -3))
	dsWantInvalid(t, "XLEN empty key", eng.XLen(ctx, ""))
	dsWantInvalid(t, "XTRIM empty key", eng.XTrim(ctx, "", engine.XTrimOptions{}))
	dsWantInvalid(t, "XTRIM negative", eng.XTrim(ctx, "s", engine.XTrimOptions{MaxLen: -1}))
	dsWantInvalid(t, "XDEL empty key", eng.XDel(ctx, "", "1-1"))
	dsWantInvalid(t, "XDEL no ids", eng.XDel(ctx, "s"))
	dsWantInvalid(t, "XACK empty key", eng.XAck(ctx, "", "g", "1-1"))
	dsWantInvalid(t, "XACK empty group", eng.XAck(ctx, "s", "", "1-1"))
	dsWantInvalid(t, "XACK no ids", eng.XAck(ctx, "s", "g"))
	dsWantInvalid(t, "XPENDING empty key", eng.XPending(ctx, "", "g"))
	dsWantInvalid(t, "XPENDING empty group", eng.XPending(ctx, "s", ""))
	dsWantInvalid(t, "XPENDING ext no count", eng.XPendingExt(ctx, "s", "g", engine.XPendingOptions{}))
	dsWantInvalid(t, "XPENDING ext negative count", eng.XPendingExt(ctx, "s", "g", engine.XPendingOptions{Count: -1}))
	dsWantInvalid(t, "XPENDING ext negative idle", eng.XPendingExt(ctx, "s", "g", engine.XPendingOptions{Count: 1, Idle: -time.Second}))
	dsWantInvalid(t, "XCLAIM no ids", eng.XClaim(ctx, "s", "g", "c", 0))
	dsWantInvalid(t, "XCLAIM empty consumer", eng.XClaim(ctx, "s", "g", "", 0, "1-1"))
	dsWantInvalid(t, "XCLAIM negative idle", eng.XClaim(ctx, "s", "g", "c", -1, "1-1"))
	dsWantInvalid(t, "XAUTOCLAIM empty start", eng.XAutoClaim(ctx, "s", "g", "c", 0, "", 0))
	dsWantInvalid(t, "XAUTOCLAIM negative count", eng.XAutoClaim(ctx, "s", "g", "c", 0, "0-0", -1))
	dsWantInvalid(t, "XAUTOCLAIM empty group", eng.XAutoClaim(ctx, "s", "", "c", 0, "0-0", 1))
	dsWantInvalid(t, "XGROUP CREATE empty key", eng.XGroupCreate(ctx, "", "g", "0", true))
	dsWantInvalid(t, "XGROUP CREATE empty group", eng.XGroupCreate(ctx, "s", "", "0", true))
	dsWantInvalid(t, "XGROUP CREATE empty start", eng.XGroupCreate(ctx, "s", "g", "", true))
	dsWantInvalid(t, "XGROUP DESTROY empty group", eng.XGroupDestroy(ctx, "s", ""))
	dsWantInvalid(t, "XREADGROUP empty group", eng.XReadGroup(ctx, "", "c", 0, map[string]string{"s": ">"}))
	dsWantInvalid(t, "XREADGROUP empty consumer", eng.XReadGroup(ctx, "g", "", 0, map[string]string{"s": ">"}))
	dsWantInvalid(t, "XREADGROUP negative count", eng.XReadGroup(ctx, "g", "c", -1, map[string]string{"s": ">"}))
	dsWantInvalid(t, "XINFO GROUPS empty key", eng.XInfoGroups(ctx, ""))
	// Still exactly one entry: none of the invalid calls wrote anything.
	if n := dsAwait(t, ctx, "XLEN", eng.XLen(ctx, "s")); n != 1 {
		t.Fatalf("XLEN after invalid calls = %d, want 1", n)
	}
}

// The longest minimum idle time (time.Duration's maximum, a Go idiom for
// "never") filters every pending entry out, as an hour does: rounding it
// up to whole milliseconds must not overflow into a negative
// min-idle-time, which the server takes as 0 (every entry, however
// recently delivered: XCLAIM and XAUTOCLAIM took an entry consumer a had
// just been given, and XPENDING IDLE listed every entry).
func TestStreamMinIdleLongest(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	never := time.Duration(math.MaxInt64)
	if err := eng.XGroupCreate(ctx, "s", "g", "0", true).Err(ctx); err != nil {
		t.Fatal(err)
	}
	id := dsAwait(t, ctx, "XADD", eng.XAdd(ctx, "s", "f", "v"))
	if got := dsAwait(t, ctx, "XREADGROUP", eng.XReadGroup(ctx, "g", "a", 0, map[string]string{"s": ">"})); len(got["s"]) != 1 {
		t.Fatalf("XREADGROUP = %v; want the entry delivered to a", got)
	}
	if got := dsAwait(t, ctx, "XPENDING IDLE", eng.XPendingExt(ctx, "s", "g", engine.XPendingOptions{Count: 10, Idle: never})); len(got) != 0 {
		t.Errorf("XPendingExt Idle %v = %+v; want nothing idle so long", never, got)
	}
	if got := dsAwait(t, ctx, "XCLAIM", eng.XClaim(ctx, "s", "g", "b", never, id)); len(got) != 0 {
		t.Errorf("XClaim minIdle %v = %+v; want nothing claimed", never, got)
	}
	p := eng.Pipeline()
	auto := p.XAutoClaim("s", "g", "c", never, "0-0", 0)
	if err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if got := dsAwait(t, ctx, "XAUTOCLAIM", auto); len(got.Entries) != 0 {
		t.Errorf("Pipeline XAutoClaim minIdle %v = %+v; want nothing claimed", never, got)
	}
	if sum := dsAwait(t, ctx, "XPENDING", eng.XPending(ctx, "s", "g")); sum.Consumers["a"] != 1 {
		t.Errorf("pending after the claims = %+v; want the entry still a's", sum)
	}
}

// XInfoGroups reports a group's EntriesRead and Lag (Valkey and Redis
// 7.0 on), -1 where the server reports them as unknown (nil): a group's
// lag follows what it was delivered, a group created at an arbitrary ID
// knows neither, and an entry deleted ahead of a group's position makes
// its lag unknowable.
func TestStreamGroupLag(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	group := func(name string) engine.XGroupInfo {
		t.Helper()
		for _, g := range dsAwait(t, ctx, "XINFO GROUPS", eng.XInfoGroups(ctx, "s")) {
			if g.Name == name {
				return g
			}
		}
		t.Fatalf("no group %s", name)
		return engine.XGroupInfo{}
	}
	want := func(when string, g engine.XGroupInfo, read, lag int64) {
		t.Helper()
		if g.EntriesRead != read || g.Lag != lag {
			t.Errorf("%s: group %s EntriesRead %d, Lag %d; want %d, %d", when, g.Name, g.EntriesRead, g.Lag, read, lag)
		}
	}
	if err := eng.XGroupCreate(ctx, "s", "g", "$", true).Err(ctx); err != nil {
		t.Fatal(err)
	}
	want("created", group("g"), -1, 0)
	var ids []string
	for i := range 3 {
		ids = append(ids, dsAwait(t, ctx, "XADD", eng.XAdd(ctx, "s", "n", fmt.Sprint(i))))
	}
	want("3 added", group("g"), -1, 3)
	if got := dsAwait(t, ctx, "XREADGROUP", eng.XReadGroup(ctx, "g", "c", 1, map[string]string{"s": ">"})); len(got["s"]) != 1 {
		t.Fatalf("XREADGROUP COUNT 1 = %v", got)
	}
	want("1 delivered", group("g"), 1, 2)
	if err := eng.XGroupCreate(ctx, "s", "g2", ids[1], false).Err(ctx); err != nil {
		t.Fatal(err)
	}
	want("created at an arbitrary ID", group("g2"), -1, -1)
	if n := dsAwait(t, ctx, "XDEL", eng.XDel(ctx, "s", ids[1])); n != 1 {
		t.Fatalf("XDEL = %d", n)
	}
	want("an entry ahead deleted", group("g"), 1, -1)
}
