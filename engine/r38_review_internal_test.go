package engine

import (
	"errors"
	"testing"

	"github.com/vactor-io/vactor/actors"
)

// review-38 R38-2: a move retries n (its new owner refuses it); while the
// move's SSUBSCRIBE (op 1) is in flight, the user's SSubscribe(n) (op 2,
// same actor: n is homed there) is sent too. Both are refused. op 1's
// refusal no longer unhomes n (lastOp is 2), so the move finds n homed
// and ends its claim; op 2's refusal then unhomes n: nobody tries n
// again. Before 5b819c8 op 1's refusal unhomed n and the move kept it.
// (Interleaving of move's goroutine and the user's: settle(op 1),
// unmoved, moved, settle(op 2).)
func TestR38MoveDropsChannelReSubscribedMeanwhile(t *testing.T) {
	a := &subActor{st: &actors.SubscriberState{}}
	s := &Subscription{&subscriptionState{shards: map[string]*subActor{}, moving: map[string]moveClaim{}, lastOp: map[string]uint64{}}}
	s.moving["n"] = moveClaim{id: 1}
	s.rehome("n", a)
	s.lastOp["n"] = 1 // the move's op
	s.lastOp["n"] = 2 // the user's, sent to n's home
	a.pending = 2
	refused := errors.Join(&ServerError{Prefix: "NOPERM", Message: "NOPERM no permissions"},
		&actors.RefusedError{Names: []string{"n"}, Errs: []error{errors.New("NOPERM no permissions")}})
	s.settle(subSent{a: a, op: actors.SubOp{Kind: actors.SubShard, Names: []string{"n"}}, seq: 1}, refused)
	left := s.unmoved(1, []string{"n"}, map[string]uint64{"n": 1})
	if len(left) == 0 {
		s.moved(1, []string{"n"}) // the move returns: its claim ends
	}
	s.settle(subSent{a: a, op: actors.SubOp{Kind: actors.SubShard, Names: []string{"n"}}, seq: 2}, refused)
	if len(left) == 0 && s.shards["n"] == nil && s.moving["n"].id == 0 {
		t.Fatal("n is neither homed nor claimed by a move: the move that retried it stopped, and nothing tries it again")
	}
}
