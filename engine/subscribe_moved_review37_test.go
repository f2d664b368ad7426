package engine_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
)

// r37Events collects the items of ch for d, failing on a closed channel.
func r37Events(t *testing.T, ch <-chan engine.SubEvent, d time.Duration) []engine.SubEvent {
	t.Helper()
	var evs []engine.SubEvent
	end := time.After(d)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("subscription channel closed")
			}
			evs = append(evs, ev)
		case <-end:
			return evs
		}
	}
}

// r37Until reads ch until cond holds for the items read so far (or d).
func r37Until(t *testing.T, ch <-chan engine.SubEvent, d time.Duration, what string, cond func([]engine.SubEvent) bool) []engine.SubEvent {
	t.Helper()
	var evs []engine.SubEvent
	end := time.After(d)
	for !cond(evs) {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("subscription channel closed")
			}
			t.Logf("event %s ch=%q addr=%s gap=%s err=%v", ev.Kind, ev.ShardChannel, ev.Addr, ev.Gap, ev.Err)
			evs = append(evs, ev)
		case <-end:
			t.Fatalf("not within %s: %s (events: %+v)", d, what, evs)
		}
	}
	return evs
}

func r37Count(evs []engine.SubEvent, kind engine.SubEventKind, ch string) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == kind && ev.ShardChannel == ch {
			n++
		}
	}
	return n
}

// A moved channel being retried (its new owner refuses it) whose slot
// moves AGAIN, to a third node that allows it: it is taken there, one
// Resubscribed naming the third node, and its messages arrive.
func TestR37MovedAgainWhileRetried(t *testing.T) {
	cl, eng, pub, _ := movedCluster(t)
	ctx := ctxT(t)

	p0, p1, p2 := cl.Primaries()[0], cl.Primaries()[1], cl.Primaries()[2]
	x, sx := shardChannelOn(t, cl, p0, "r37a")
	staying, _ := shardChannelOn(t, cl, p1, "r37s")
	sub := ssubscribeTwoNodes(t, eng, x, staying)

	restrictChannels(t, p1, staying)
	first := time.Now()
	if err := cl.MigrateSlots(p0, p1, []int{sx}); err != nil {
		t.Fatal(err)
	}
	r37Until(t, sub.Channel(), 10*time.Second, "Disconnected and Refused of x", func(evs []engine.SubEvent) bool {
		return r37Count(evs, engine.Disconnected, x) == 1 && r37Count(evs, engine.Refused, x) == 1
	})
	// Move it again, to a node that allows it.
	if err := cl.MigrateSlots(p1, p2, []int{sx}); err != nil {
		t.Fatal(err)
	}
	evs := r37Until(t, sub.Channel(), 10*time.Second, "Resubscribed of x", func(evs []engine.SubEvent) bool {
		return r37Count(evs, engine.Resubscribed, x) == 1
	})
	for _, ev := range evs {
		if ev.Kind == engine.Resubscribed && (ev.Addr != p2.Addr() || ev.Gap < time.Since(first)-2*time.Second) {
			t.Fatalf("Resubscribed %+v; want on %s with a gap of about %s", ev, p2.Addr(), time.Since(first))
		}
	}
	evs = r37Events(t, sub.Channel(), 3*time.Second)
	if len(evs) != 0 {
		t.Fatalf("more events: %+v", evs)
	}
	if n, err := pub.SPublish(ctx, x, "hi").Await(ctx); err != nil || n != 1 {
		t.Fatalf("SPUBLISH = %d, %v; want 1", n, err)
	}
	if ev := subExpect(t, sub.Channel(), engine.SubMessage); ev.Message.Channel != x {
		t.Fatalf("message %+v", ev)
	}
	if st := eng.Stats(); st.SubMoved != 1 {
		t.Fatalf("SubMoved = %d, want 1", st.SubMoved)
	}
}

// Two channels move together (one move: the old owner's connection
// reconnects, the node refuses both and the set hands both over at once,
// then their slots move); the new owner takes x and refuses y, so that
// move keeps
// retrying y. Then x's slot moves again, to a node that refuses it: a
// second move retries x. x must be reported refused once (one distinct
// error), retried by one loop, and, once allowed, resubscribed once with
// a Gap from its SECOND move (it was subscribed until then), counted once
// more in SubMoved.
func TestR37SecondMoveWhileBatchRetried(t *testing.T) {
	cl, eng, _, _ := movedCluster(t)

	p0, p1, p2 := cl.Primaries()[0], cl.Primaries()[1], cl.Primaries()[2]
	x, sx := shardChannelOn(t, cl, p0, "r37x")
	y, sy := shardChannelOn(t, cl, p0, "r37y", sx)
	w, _ := shardChannelOn(t, cl, p0, "r37w", sx, sy)
	staying, _ := shardChannelOn(t, cl, p1, "r37s")
	sub := ssubscribeTwoNodes(t, eng, x, y, w, staying)

	// p0's connection goes down and cannot resubscribe (p0 allows only w)
	// while x's and y's slots move to p1.
	// The reconnect keeps w (the node's own ACL refuses only x and y:
	// d03d0e3), and x and y, each refused, are tried on their own.
	restrictAndReconnect(t, sub, p0, []string{x, y}, w)
	// p1 takes x, refuses y.
	migrateToRestricted(t, cl, p0, p1, []int{sx, sy}, staying, x)
	// (y's refusal by p1 has p0's text: told once already.)
	r37Until(t, sub.Channel(), 10*time.Second, "x resubscribed", func(evs []engine.SubEvent) bool {
		return r37Count(evs, engine.Resubscribed, x) == 1
	})
	moved0 := eng.Stats().SubMoved

	// x moves again, to p2, which refuses it.
	restrictChannels(t, p2)
	second := time.Now()
	if err := cl.MigrateSlots(p1, p2, []int{sx}); err != nil {
		t.Fatal(err)
	}
	evs := r37Until(t, sub.Channel(), 10*time.Second, "x disconnected and refused", func(evs []engine.SubEvent) bool {
		return r37Count(evs, engine.Disconnected, x) == 1 && r37Count(evs, engine.Refused, x) >= 1
	})
	// Several backoffs: the same refusal adds no event.
	evs = append(evs, r37Events(t, sub.Channel(), 4*time.Second)...)
	for _, ev := range evs {
		t.Logf("event %s ch=%q addr=%s gap=%s err=%v", ev.Kind, ev.ShardChannel, ev.Addr, ev.Gap, ev.Err)
	}
	refusedX := r37Count(evs, engine.Refused, x)

	if _, err := p2.Do("ACL", "SETUSER", "default", "allchannels"); err != nil {
		t.Fatal(err)
	}
	evs = r37Until(t, sub.Channel(), 10*time.Second, "x resubscribed on p2", func(evs []engine.SubEvent) bool {
		return r37Count(evs, engine.Resubscribed, x) >= 1
	})
	evs = append(evs, r37Events(t, sub.Channel(), 3*time.Second)...)
	var bad []string
	if refusedX != 1 {
		bad = append(bad, "x refused "+r37itoa(refusedX)+" times, want 1")
	}
	if n := r37Count(evs, engine.Resubscribed, x); n != 1 {
		bad = append(bad, "x resubscribed "+r37itoa(n)+" times, want 1")
	}
	for _, ev := range evs {
		if ev.Kind == engine.Resubscribed && ev.ShardChannel == x && ev.Gap > time.Since(second)+time.Second {
			bad = append(bad, "x's Resubscribed Gap "+ev.Gap.String()+" > time since its second move "+time.Since(second).String())
		}
	}
	if st := eng.Stats(); st.SubMoved != moved0+1 {
		bad = append(bad, "SubMoved "+r37itoa(int(st.SubMoved-moved0))+" more, want 1")
	}
	if len(bad) > 0 {
		t.Fatal(errors.New(joinLines(bad)))
	}
}

func r37itoa(n int) string { return strconv.Itoa(n) }

func joinLines(s []string) string {
	out := ""
	for _, l := range s {
		out += "\n\t" + l
	}
	return out
}
