package engine

import (
	"errors"
	"testing"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// failOpen refuses only while the node's breaker is open: once closed
// again (a sentinel switch's Reset between post's look and failOpen's),
// it fails and counts nothing and returns nil, and the caller queues its
// commands behind those the purge spared (review-41 2: they were refused
// with the former server's open error, completing before earlier
// commands that went on to the new primary).
func TestFailOpenOnlyWhileOpen(t *testing.T) {
	node := &actors.Node{Addr: "node:6379", Breaker: policies.NewBreaker(policies.BreakerOptions{})}
	conn := &actors.ConnState{Addr: node.Addr, Node: node, Mailbox: mailbox.New(mailbox.Options{})}
	if err := failOpen(conn, 3); err != nil {
		t.Fatalf("failOpen with the breaker closed: %v, want nil (nothing refused)", err)
	}
	if got := conn.Stats().CircuitOpen; got != 0 {
		t.Fatalf("CircuitOpen %d with the breaker closed, want 0", got)
	}
	node.SetOpen(true) // the breaker's opening, as its listener marks it
	if err := failOpen(conn, 3); !errors.Is(err, policies.ErrCircuitOpen) {
		t.Fatalf("failOpen with the breaker open: %v, want ErrCircuitOpen", err)
	}
	if got := conn.Stats().CircuitOpen; got != 3 {
		t.Fatalf("CircuitOpen %d, want 3", got)
	}
}
