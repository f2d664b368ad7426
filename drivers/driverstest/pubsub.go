package driverstest

import (
	"fmt"
	"testing"
	"time"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/valkeytest"
)

// pubsub: with the capability, Listen delivers messages in order and the
// (un)subscribe confirmations, and ends with Close; without it, Conns do
// not claim it.
func (s *suite) pubsub(t *testing.T) {
	srv := valkeytest.Start(t)
	c := s.dial(t, s.options(srv))
	ps, ok := c.(drivers.PubSub)
	fast, err := drivers.Fast(c)
	if err != nil {
		t.Fatal(err)
	}
	_, fastOK := fast.(drivers.ValkeyPubSub)
	if !s.caps.PubSub {
		if ok || fastOK {
			t.Fatalf("%s says it does not support pub/sub, but its Conn implements it (PubSub %v, ValkeyPubSub %v)", s.o.Name, ok, fastOK)
		}
		return
	}
	if !ok {
		t.Fatalf("%s says it supports pub/sub, but its Conn %T does not implement drivers.PubSub", s.o.Name, c)
	}
	if !fastOK {
		t.Fatalf("%s says it supports pub/sub, but its fast path %T does not implement drivers.ValkeyPubSub", s.o.Name, fast)
	}
	const n = 200
	msgs := make(chan drivers.Message, n)
	subs := make(chan drivers.Subscription, 8)
	done := ps.Listen(drivers.PubSubHooks{
		OnMessage:      func(m drivers.Message) { msgs <- m },
		OnSubscription: func(sub drivers.Subscription) { subs <- sub },
	})
	x := neutralExec{c}
	rs := do(t, s.ctx(t), x, args("SUBSCRIBE", "ps:a"))
	t.Logf("SUBSCRIBE result: %v", rs[0].Value)
	select {
	case sub := <-subs:
		if sub.Kind != "subscribe" || sub.Channel != "ps:a" || sub.Count != 1 {
			t.Fatalf("confirmation %+v", sub)
		}
	case <-time.After(s.o.Timeout):
		t.Fatal("no subscribe confirmation")
	}
	for i := range n {
		if _, err := srv.Do("PUBLISH", "ps:a", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		select {
		case m := <-msgs:
			if m.Channel != "ps:a" || m.Message != fmt.Sprint(i) {
				t.Fatalf("message %d: %+v (out of order or wrong)", i, m)
			}
		case <-time.After(s.o.Timeout):
			t.Fatalf("message %d did not arrive", i)
		}
	}
	do(t, s.ctx(t), x, args("UNSUBSCRIBE", "ps:a"))
	select {
	case sub := <-subs:
		if sub.Kind != "unsubscribe" || sub.Count != 0 {
			t.Fatalf("confirmation %+v", sub)
		}
	case <-time.After(s.o.Timeout):
		t.Fatal("no unsubscribe confirmation")
	}
	_ = c.Close()
	select {
	case err, open := <-done:
		if open {
			t.Logf("Listen ended with %v", err)
		} else {
			t.Log("Listen's channel closed")
		}
	case <-time.After(s.o.Timeout):
		t.Fatal("Listen's channel got nothing after Close")
	}
}
