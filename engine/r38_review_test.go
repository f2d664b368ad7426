package engine_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
)

// review-38: a Handler's SSubscribe of two shard channels on one node
// that the node refuses for two different reasons (x: NOPERM, its ACL;
// y: CLUSTERDOWN, its slot not served there) must report each channel
// with its own error reply, as move does since 013aa95 (R37-4).
// refusedUnwaited reports the first reply for both.
func TestR38HandlerRefusalsEachTheirOwn(t *testing.T) {
	cl, eng, pub, _ := movedCluster(t)
	ctx := ctxT(t)
	p0, p1 := cl.Primaries()[0], cl.Primaries()[1]
	x, sx := shardChannelOn(t, cl, p0, "hx")
	y, sy := shardChannelOn(t, cl, p0, "hy", sx)
	ctl, _ := shardChannelOn(t, cl, p1, "hc")

	events := make(chan engine.SubEvent, 64)
	ready := make(chan *engine.Subscription, 1)
	handlerErr := make(chan error, 1)
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{
		ShardChannels: []string{ctl},
		Handler: func(ev engine.SubEvent) {
			if ev.Kind == engine.SubMessage && ev.Message.Payload == "go" {
				s := <-ready
				handlerErr <- s.SSubscribe(ctx, x, y)
			}
			events <- ev
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	ready <- sub

	// p0 allows y only, and no longer serves y's slot.
	restrictChannels(t, p0, y)
	if _, err := p0.Do("CLUSTER", "DELSLOTS", strconv.Itoa(sy)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = p0.Do("CLUSTER", "ADDSLOTS", strconv.Itoa(sy)) })

	if n, err := pub.SPublish(ctx, ctl, "go").Await(ctx); err != nil || n != 1 {
		t.Fatalf("SPUBLISH ctl = %d, %v", n, err)
	}
	if err := <-handlerErr; err != nil {
		t.Fatalf("SSubscribe from the Handler: %v", err)
	}
	got := map[string]error{}
	end := time.After(10 * time.Second)
	for len(got) < 2 {
		select {
		case ev := <-events:
			t.Logf("event %s ch=%q addr=%s err=%v", ev.Kind, ev.ShardChannel, ev.Addr, ev.Err)
			if ev.Kind == engine.Refused {
				got[ev.ShardChannel] = ev.Err
			}
		case <-end:
			t.Fatalf("Refused events within 10 s: %v", got)
		}
	}
	var bad []string
	for ch, want := range map[string]string{x: "NOPERM", y: "CLUSTERDOWN"} {
		var se *engine.ServerError
		if !errors.As(got[ch], &se) || se.Prefix != want {
			bad = append(bad, ch+": Refused with "+errString(got[ch])+", want its own "+want)
		}
	}
	if len(bad) > 0 {
		t.Fatal(joinLines(bad))
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// review-38 R38-2 on real servers: a moved channel whose new owner
// refuses it is retried by a move; meanwhile the user keeps calling
// SSubscribe(x) (each refused: NOPERM). Once the user stops and the new
// owner allows x, the move's retries must subscribe it.
func TestR38MovedChannelSurvivesRefusedUserSSubscribes(t *testing.T) {
	cl, eng, pub, _ := movedCluster(t)
	ctx := ctxT(t)
	p0, p1 := cl.Primaries()[0], cl.Primaries()[1]
	x, sx := shardChannelOn(t, cl, p0, "rx")
	staying, _ := shardChannelOn(t, cl, p1, "rs")
	sub := ssubscribeTwoNodes(t, eng, x, staying)
	migrateToRestricted(t, cl, p0, p1, []int{sx}, staying)
	r37Until(t, sub.Channel(), 10*time.Second, "x refused by p1", func(evs []engine.SubEvent) bool {
		return r37Count(evs, engine.Refused, x) >= 1
	})
	var refusedCalls, okCalls int
	end := time.Now().Add(4 * time.Second)
	for time.Now().Before(end) {
		if err := sub.SSubscribe(ctx, x); err != nil {
			refusedCalls++
		} else {
			okCalls++
		}
		for len(sub.Channel()) > 0 {
			<-sub.Channel()
		}
	}
	t.Logf("user SSubscribe(x): %d refused, %d ok", refusedCalls, okCalls)
	if _, err := p1.Do("ACL", "SETUSER", "default", "allchannels"); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, sub, pub, x)
}
