package engine

import (
	"context"
	"testing"
)

// Every request a slot may route in cluster mode (a short command, a long
// pinned one, a pipeline's) keeps its place in the slot's order (Seq) in
// a resendable of its own, never in the shared pinnedCmd (review-35
// R35-2: the slot resends what it keeps in that order); a long one is
// still pinned and Renew leaves it be.
func TestClusterRequestsKeepSeq(t *testing.T) {
	ctx := context.Background()
	e := &Engine{&engineState{cl: &cluster{}}}
	short := newSlotRequest(e, ctx, e.b.Arbitrary("SET", "k", "v").Build(), decodeReply)
	long := newSlotRequest(e, ctx, e.b.Arbitrary("SET", "k", "v", "EX", "10", "NX").Build(), decodeReply)
	piped := newOrderedRequest(e, ctx, e.b.Arbitrary("SET", "k", "v").Build(), decodeReply)
	piped.prepare(e, ctx, true, false)
	for i, r := range []*request[Reply]{short, long, piped} {
		if r.x == nil || r.x.ext == nil || r.x.ext == pinnedCmd {
			t.Fatalf("request %d: no resendable of its own: %+v", i, r.x)
		}
		r.SetHook(nil, uint32(100+i))
		if got := r.Seq(); got != uint32(100+i) {
			t.Errorf("request %d: Seq() = %d, want %d", i, got, 100+i)
		}
		if !r.Resendable() {
			t.Errorf("request %d: not resendable", i)
		}
	}
	if pinnedCmd.seq != 0 {
		t.Errorf("pinnedCmd.seq = %d: written through a request", pinnedCmd.seq)
	}
	before := long.Cmd()
	long.Renew() // pinned: kept as is
	if after := long.Cmd(); after != before {
		t.Errorf("Renew rebuilt a pinned request")
	}
	short.Renew()
	c := short.Cmd()
	if got := c.Commands(); len(got) != 3 || got[2] != "v" {
		t.Errorf("short request after Renew: %q", got)
	}
}
