package engine

import (
	"errors"
	"testing"

	"github.com/vactor-io/vactor/actors"
)

// withoutMarks strips the actor's marks and leaves the error reply as it
// was, so that mapError makes a *ServerError of it.
func TestR37WithoutMarks(t *testing.T) {
	bad := errors.New("plain")
	moved := &actors.MovedError{Names: []string{"a"}}
	refused := &actors.RefusedError{Names: []string{"b"}}
	for _, c := range []struct {
		in, want error
	}{
		{nil, nil},
		{bad, bad},
		{errors.Join(nil, moved), nil},
		{errors.Join(bad, moved), bad},
		{errors.Join(bad, refused), bad},
		{errors.Join(bad, moved, refused), bad},
	} {
		if got := withoutMarks(c.in); got != c.want {
			t.Errorf("withoutMarks(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// noteRefused gives each refused shard channel its own error reply:
// a set refused for two reasons reports both, a channel redirected or
// whose connection was lost is not refused (review-37 R37-4: a round's
// first error reply was reported for every channel left in it).
func TestR38NoteRefused(t *testing.T) {
	perm := &ServerError{Prefix: "NOPERM", Message: "NOPERM No permissions to access a channel"}
	down := &ServerError{Prefix: "CLUSTERDOWN", Message: "CLUSTERDOWN The cluster is down"}
	op := func(names ...string) subSent {
		return subSent{op: actors.SubOp{Kind: actors.SubShard, Names: names}}
	}
	for _, c := range []struct {
		name string
		o    subSent
		err  error
		want map[string]*ServerError
	}{
		{"each its own", op("a", "b", "c"), errors.Join(perm, &actors.RefusedError{Names: []string{"a", "c"}, Errs: []error{perm, down}}),
			map[string]*ServerError{"a": perm, "c": down}},
		{"redirected not refused", op("a", "b"), errors.Join(perm, &actors.MovedError{Names: []string{"b"}}),
			map[string]*ServerError{"a": perm}},
		{"lost connection", op("a", "b"), errors.New("EOF"), map[string]*ServerError{}},
		{"moved only", op("a"), errors.Join(nil, &actors.MovedError{Names: []string{"a"}}), map[string]*ServerError{}},
		{"unsubscribe", subSent{op: actors.SubOp{Kind: actors.SubShard, Unsub: true, Names: []string{"a"}}}, perm, map[string]*ServerError{}},
		{"global channels", subSent{op: actors.SubOp{Kind: actors.SubChannel, Names: []string{"a"}}}, perm, map[string]*ServerError{}},
		{"success", op("a"), nil, map[string]*ServerError{}},
	} {
		got := map[string]*ServerError{}
		noteRefused(got, c.o, c.err)
		if len(got) != len(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			continue
		}
		for n, se := range c.want {
			if got[n] != se {
				t.Errorf("%s: %s got %v, want %v", c.name, n, got[n], se)
			}
		}
	}
}

// A refusal of an operation does not unhome a shard channel that a later
// operation subscribed again on the same actor: the actor ran that one
// after, and it may have been taken (an ACL changed between the two);
// the later operation's own refusal unhomes it (review-37 R37-3).
func TestR38SettleKeepsLaterOperationsHome(t *testing.T) {
	a := &subActor{st: &actors.SubscriberState{}}
	s := &Subscription{&subscriptionState{shards: map[string]*subActor{}, moving: map[string]moveClaim{}, lastOp: map[string]uint64{}}}
	s.rehome("n", a)
	s.lastOp["n"] = 2 // op 2 sent after op 1
	a.pending = 2
	refused := errors.Join(&ServerError{Prefix: "NOPERM", Message: "NOPERM No permissions to access a channel"},
		&actors.RefusedError{Names: []string{"n"}})
	first := subSent{a: a, op: actors.SubOp{Kind: actors.SubShard, Names: []string{"n"}}, seq: 1}
	second := subSent{a: a, op: actors.SubOp{Kind: actors.SubShard, Names: []string{"n"}}, seq: 2}
	s.settle(first, refused)
	if s.shards["n"] != a || a.names != 1 {
		t.Fatalf("op 1's refusal unhomed n, which op 2 subscribed again (home %p, names %d)", s.shards["n"], a.names)
	}
	s.settle(second, refused)
	if s.shards["n"] != nil || a.names != 0 || len(s.lastOp) != 0 {
		t.Fatalf("op 2's refusal left n homed (home %p, names %d, lastOp %v)", s.shards["n"], a.names, s.lastOp)
	}
	if a.pending != 0 {
		t.Fatalf("pending = %d, want 0", a.pending)
	}
}
