package engine

// Routing a subscription's names to its subscriber actors (one per
// connection), resubscribing shard channels on their slot's new owner, and
// starting and stopping the actors.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
)

// change subscribes or unsubscribes names and waits for the answers; see
// apply.
func (s *Subscription) change(ctx context.Context, kind actors.SubKind, unsub bool, names []string) error {
	if len(names) == 0 {
		return nil
	}
	return s.apply(ctx, kind, unsub, names, time.Time{}, false, "", nil)
}

// changeNoWait is change called from the Handler: it sends the operations
// and leaves their answers to a background goroutine, as change does for
// those its ctx stopped waiting for.
func (s *Subscription) changeNoWait(kind actors.SubKind, unsub bool, names []string) error {
	sent, err := s.send(kind, unsub, names, time.Time{}, false, "")
	if err != nil {
		return err
	}
	s.abandon(sent, time.Time{})
	return nil
}

// subSent is an operation sent to an actor, numbered (Subscription.ops).
type subSent struct {
	a   *subActor
	op  actors.SubOp
	seq uint64
	at  time.Time // when it was sent
}

// apply routes names to their actors, sends the operations and waits for
// them. Shard channels the server redirected (MOVED) are routed again
// after a slot-map reload, with the engine's backoff between attempts,
// until they are subscribed, ctx ends (they are then left to a background
// goroutine) or the subscription ends. moved says that names are shard
// channels handed back after their slot moved: they are routed by the
// reloaded slot map, and since is when they stopped being subscribed.
//
// from, with moved, is the node that gave the names up: it no longer owns
// them, so while the slot map still says it does, the map is stale (a
// replica accepts SSUBSCRIBE too: subscribing there would look fine and
// receive nothing) and the names wait for a fresher map.
//
// round, when not nil (a move's), receives each shard channel the server
// refused with its own error reply (see noteRefused) and the number of
// the last operation that sent each name.
func (s *Subscription) apply(ctx context.Context, kind actors.SubKind, unsub bool, names []string, since time.Time, moved bool, from string, round *moveRound) error {
	var errs []error
	for try := 0; len(names) > 0; try++ {
		if try > 0 && !s.pause(ctx, try-1) {
			s.movedFrom(names, since, from) // still wanted: keep trying in the background
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return s.closedErr()
		}
		if moved {
			_, _ = s.e.cl.Refresh(s.e.slotOf(names[0])) // the map is stale: the server said so
		}
		var sent []subSent
		var err error
		if round != nil && moved {
			sent, err = s.sendClaimed(round.id, kind, names, since, from)
		} else {
			sent, err = s.send(kind, unsub, names, since, moved, from)
		}
		if err != nil {
			if moved && !errors.Is(err, ErrClosed) {
				continue // no owner known yet: try again after the backoff
			}
			return errors.Join(append(errs, err)...)
		}
		names, moved = nil, true
		if round != nil {
			for _, o := range sent {
				for _, n := range o.op.Names {
					round.sent[n] = o.seq
				}
			}
		}
		for i, o := range sent {
			var err error
			select {
			case err = <-o.op.Done:
			case <-o.a.st.Stopped():
				err = s.closedErr()
			case <-s.quit:
				return s.closedErr()
			case <-ctx.Done():
				s.abandon(sent[i:], since)
				return ctx.Err()
			}
			names = append(names, s.settle(o, err)...)
			if round != nil {
				noteRefused(round.refused, o, err)
			}
			if err = withoutMarks(err); err != nil {
				errs = append(errs, lostBeforeConfirmed(ctx, o.a, mapError(err)))
			}
		}
		s.reap()
	}
	return errors.Join(errs...)
}

// lostBeforeConfirmed makes the transport error with which a first
// subscribe failed, its connection lost before the server confirmed it
// (a bare EOF or reset: qa-AV AV2) or no confirmation within the read
// bound (a deadline that is not ctx's: review-34b R34b-3), a
// *ConnectError naming the node, as a dial's failure is: nothing is left
// subscribed and the call may be made again. Server errors, ctx's own
// errors, ErrClosed, the engine's typed errors and errors already a
// *ConnectError pass through.
func lostBeforeConfirmed(ctx context.Context, a *subActor, err error) error {
	var se *ServerError
	var ce *ConnectError
	switch {
	case errors.As(err, &se), errors.As(err, &ce), errors.Is(err, ErrClosed), errors.Is(err, errSubscriptionClosed),
		errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrNoSlotOwner), errors.Is(err, ErrCircuitOpen),
		errors.Is(err, ErrNodeRemoved), errors.Is(err, ErrNoPrimary), errors.Is(err, ErrNotPrimary), errors.Is(err, ErrTooManyRedirects):
		return err
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		return err // ctx's end
	}
	addr := a.st.Addr()
	if addr == "" {
		addr = a.addr
	}
	if addr == "" {
		return err // no node to name (it was never dialled)
	}
	reason := "the connection was lost before the server confirmed the subscription"
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		reason = "the server did not confirm the subscription within the read bound (Config.ReadTimeout)"
	}
	return &ConnectError{Addr: addr, Reason: reason, Err: err}
}

// closedErr is the error of a call the subscription's end cut short:
// "engine closed" after the engine's Close, "subscription closed" after
// the subscription's own (both ErrClosed).
func (s *Subscription) closedErr() error {
	if s.e.closed.Load() {
		return ErrClosed
	}
	return errSubscriptionClosed
}

// pause waits the engine's backoff for attempt n; false if ctx or the
// subscription ended first.
func (s *Subscription) pause(ctx context.Context, n int) bool {
	t := time.NewTimer(s.e.retry.Backoff.Delay(n))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-s.quit:
	}
	return false
}

// send routes names to the actors that serve them, creating actors as
// needed (not for unsubscribing), and posts the operations. In cluster
// mode a shard channel stays with the actor that subscribed it (its home)
// until it moves; moved routes by the slot map instead, skipping names
// unsubscribed meanwhile.
func (s *Subscription) send(kind actors.SubKind, unsub bool, names []string, since time.Time, moved bool, from string) ([]subSent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendLocked(kind, unsub, names, since, moved, from)
}

// sendPending is send for the channels or patterns of names that retry
// id still keeps (see retryOthers): none when all were unsubscribed.
func (s *Subscription) sendPending(id uint64, kind actors.SubKind, names []string) ([]subSent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var left []string
	for _, n := range names {
		if s.pending[subName{kind, n}] == id {
			left = append(left, n)
		}
	}
	if len(left) == 0 {
		return nil, nil
	}
	return s.sendLocked(kind, false, left, time.Time{}, false, "")
}

// sendClaimed is send for a move's round (moved): those of names that
// move id still claims, checked in the same critical section as they
// are sent. A channel unsubscribed and subscribed again, or kept by a
// later move, since the move picked it is not its own: sending it had
// the later call's operation overtaken (its failure then no longer
// unhomed and kept the channel, which was lost) or the actor confirm it
// at once with a Resubscribed after the Unsubscribe (review-43s).
func (s *Subscription) sendClaimed(id uint64, kind actors.SubKind, names []string, since time.Time, from string) ([]subSent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var left []string
	for _, n := range names {
		if s.moving[n].id == id {
			left = append(left, n)
		}
	}
	if len(left) == 0 {
		return nil, nil
	}
	return s.sendLocked(kind, false, left, since, true, from)
}

// sendLocked is send with s.mu held.
func (s *Subscription) sendLocked(kind actors.SubKind, unsub bool, names []string, since time.Time, moved bool, from string) ([]subSent, error) {
	if s.closed {
		return nil, errSubscriptionClosed
	}
	groups := map[*subActor][]string{}
	var order []*subActor
	add := func(a *subActor, ns ...string) {
		if _, ok := groups[a]; !ok {
			order = append(order, a)
		}
		groups[a] = append(groups[a], ns...)
	}
	if s.e.cl == nil || kind != actors.SubShard {
		if unsub {
			for _, n := range names { // no longer wanted (retryOthers)
				delete(s.fresh, subName{kind, n})
				delete(s.pending, subName{kind, n})
			}
		}
		a := s.find(true, "")
		if a == nil {
			if unsub {
				return nil, nil
			}
			a = s.spawn(true, "", "")
		}
		add(a, names...)
	} else {
		// Resolve the owners first: nothing changes when one is unknown.
		owner := map[string]string{}
		for _, n := range names {
			if unsub || (s.shards[n] != nil && !moved) {
				continue
			}
			addr, err := s.e.addrOf(n)
			if err != nil {
				return nil, err
			}
			if moved && addr == from {
				return nil, errStaleSlotMap
			}
			owner[n] = addr
		}
		for _, n := range names {
			home := s.shards[n]
			switch {
			case unsub:
				delete(s.moving, n) // no longer wanted (movedFrom)
				if home != nil {
					s.unhome(n)
					add(home, n)
				}
			case home != nil && !moved:
				add(home, n) // already subscribed (or being subscribed) there
			case home == nil && moved && s.moving[n].id == 0:
				// unsubscribed meanwhile (the channels a move is trying
				// again have no home, and are still wanted)
			default:
				a := s.find(false, owner[n])
				if a == nil {
					a = s.spawn(false, owner[n], n)
				}
				s.rehome(n, a)
				add(a, n)
			}
		}
	}
	sent := make([]subSent, 0, len(order))
	now := time.Now()
	for _, a := range order {
		op := actors.SubOp{Kind: kind, Unsub: unsub, Names: groups[a], Done: make(chan error, 1), Since: since}
		s.ops++
		if kind == actors.SubShard && !unsub && s.e.cl != nil {
			for _, n := range op.Names {
				s.lastOp[n] = s.ops
			}
		}
		if kind != actors.SubShard && !unsub && s.e.cl != nil && !a.st.Subscribed() {
			for _, n := range op.Names {
				s.fresh[subName{kind, n}] = s.ops
			}
		}
		a.pending++
		a.st.Send(op)
		sent = append(sent, subSent{a, op, s.ops, now})
	}
	return sent, nil
}

// rehome makes a the home of shard channel n (s.mu held).
func (s *Subscription) rehome(n string, a *subActor) {
	if old := s.shards[n]; old != nil {
		old.names--
	}
	s.shards[n] = a
	a.names++
}

// unhome forgets shard channel n (s.mu held).
func (s *Subscription) unhome(n string) {
	if old := s.shards[n]; old != nil {
		old.names--
		delete(s.shards, n)
	}
	delete(s.lastOp, n)
}

// settle records the answer to an operation and returns the shard
// channels the server redirected (MOVED), which still need a home. An
// actor whose connection never subscribed anything (a failed dial, a
// refusal) keeps none of the names it failed, so that reap stops it; one
// whose connection holds other channels keeps none of those the server
// refused (actors.RefusedError).
func (s *Subscription) settle(o subSent, err error) []string {
	return s.settleKeep(o, err, nil)
}

// kept is what abandon keeps for a retry: the shard channels of
// operations nobody waited for whose new connection could not be made,
// claimed (subscriptionState.moving) by the move numbered id; since is
// when the earliest of them was asked for.
type kept struct {
	id    uint64
	names []string
	since time.Time
	// other: the channels (SubChannel) and patterns (SubPattern) kept
	// likewise, in subscriptionState.pending (see retryOthers).
	other [2][]string
}

// subName is a channel or a pattern.
type subName struct {
	kind actors.SubKind
	name string
}

// settleKeep is settle; with k, the shard channels it unhomes are
// claimed for k's move in the same critical section (an Unsubscribe in
// between would otherwise find them neither homed nor claimed, and the
// retry would subscribe them again).
func (s *Subscription) settleKeep(o subSent, err error, k *kept) []string {
	var me *actors.MovedError
	var re *actors.RefusedError
	var moved []string
	if errors.As(err, &me) {
		moved = me.Names
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o.a.pending--
	if o.op.Kind != actors.SubShard && !o.op.Unsub {
		for _, n := range o.op.Names {
			key := subName{o.op.Kind, n}
			if s.fresh[key] != o.seq {
				continue // not sent to a new connection, or unsubscribed or sent again since
			}
			delete(s.fresh, key)
			if k != nil {
				s.keepOther(k, key)
			}
		}
	}
	if o.op.Unsub || o.op.Kind != actors.SubShard || withoutMarks(err) == nil {
		return moved
	}
	failed := o.op.Names
	if o.a.st.Subscribed() {
		if !errors.As(err, &re) {
			return moved
		}
		failed = re.Names
	}
	for _, n := range failed {
		// Not when a later operation subscribed n there again: the actor
		// ran it after this one, and it may have succeeded (an ACL
		// changed between the two; review-37 R37-3). Its own answer
		// unhomes n if it failed too.
		if s.shards[n] == o.a && !slices.Contains(moved, n) && s.lastOp[n] == o.seq {
			s.unhome(n)
			if k != nil {
				s.keep(k, n, o.at)
			}
		}
	}
	return moved
}

// keep claims shard channel n, asked for at, for k's move (s.mu held).
// A channel another move was trying keeps that one's since (the start of
// its Resubscribed's Gap); that move leaves it (see move).
func (s *Subscription) keep(k *kept, n string, at time.Time) {
	if k.id == 0 {
		s.moves++
		k.id = s.moves
	}
	if old, ok := s.moving[n]; ok && !old.since.IsZero() && old.since.Before(at) {
		at = old.since
	}
	if k.since.IsZero() || at.Before(k.since) {
		k.since = at
	}
	s.moving[n] = moveClaim{k.id, at}
	if !slices.Contains(k.names, n) {
		k.names = append(k.names, n)
	}
}

// keepOther keeps channel or pattern key for k's retry (s.mu held).
func (s *Subscription) keepOther(k *kept, key subName) {
	if k.id == 0 {
		s.moves++
		k.id = s.moves
	}
	s.pending[key] = k.id
	if !slices.Contains(k.other[key.kind], key.name) {
		k.other[key.kind] = append(k.other[key.kind], key.name)
	}
}

// retryOthers tries again, at the subscription's backoff, the channels or
// patterns (kind) of a subscribe nobody waited for whose connection could
// not be made (see abandon), those of names that retry id keeps, until
// they are subscribed (their connection's Subscribed event says so when
// it is new), unsubscribed (an Unsubscribe removes them from
// subscriptionState.pending), refused by the server (a Refused, and they
// are not tried again, as refusedUnwaited says), or the subscription
// ends. The connection that could not be made was the actor's first, so
// each try is a new actor; failures to connect are silent.
func (s *Subscription) retryOthers(id uint64, kind actors.SubKind, names []string) {
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, n := range names {
			if s.pending[subName{kind, n}] == id {
				delete(s.pending, subName{kind, n})
			}
		}
	}()
	for try := 0; ; try++ {
		if !s.pause(s.life, try) {
			return
		}
		sent, err := s.sendPending(id, kind, names)
		if err != nil || len(sent) == 0 {
			return // the subscription ended, or none is wanted any more
		}
		o := sent[0]
		var res error
		select {
		case res = <-o.op.Done:
		case <-o.a.st.Stopped():
			s.settle(o, ErrClosed)
			return
		case <-s.quit:
			return
		}
		// Not settleKeep: the names stay this retry's while pending says
		// so, also when a later operation sent them to the same
		// connection (fresh is then that one's): a waited Subscribe of
		// them that failed meanwhile dropped them, depending on timing,
		// where a kept shard channel's claim outlives it (review-43s).
		// An unsubscribe removed them from pending: sendPending skips
		// them, and the retry ends when none is left.
		retry := s.retryable(o, res)
		s.settle(o, res)
		if !retry {
			s.refusedUnwaited(o, res) // a refusal by the server (nil: subscribed)
			s.reap()
			return
		}
		s.reap()
	}
}

// retryable says whether the names of o, an operation nobody waited for
// that failed with err, are kept and tried again in the background (see
// abandon): in cluster mode, when its connection could not be made (a
// transport error, which an actor gives only before its first
// confirmation), not after a refusal by the server, an invalid name or
// the subscription's end.
func (s *Subscription) retryable(o subSent, err error) bool {
	if o.op.Unsub || s.e.cl == nil || s.life.Err() != nil {
		return false
	}
	mapped := mapError(withoutMarks(err))
	var se *ServerError
	return mapped != nil && !errors.As(mapped, &se) && !errors.Is(mapped, ErrClosed) &&
		!errors.Is(mapped, errSubscriptionClosed) && !errors.Is(mapped, ErrInvalidArgument)
}

// withoutMarks returns err without its *actors.MovedError and
// *actors.RefusedError (nil if that was all).
func withoutMarks(err error) error {
	var me *actors.MovedError
	var re *actors.RefusedError
	if !errors.As(err, &me) && !errors.As(err, &re) {
		return err
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil
	}
	var rest []error
	for _, e := range j.Unwrap() {
		if !errors.As(e, &me) && !errors.As(e, &re) {
			rest = append(rest, e)
		}
	}
	if len(rest) == 1 {
		return rest[0] // the error reply as the actor gave it, for mapError
	}
	return errors.Join(rest...)
}

// abandon leaves the answers to sent, which the caller stopped waiting
// for, to a background goroutine: it settles them, routes the shard
// channels the server redirected, and keeps trying (cluster mode) the
// shard channels whose new connection could not be made (a node down at
// that moment): after a Refused with the *ConnectError, they are tried
// as a move tries a channel whose new owner did not take it, at the
// subscription's backoff, until they are subscribed (a Resubscribed with
// their ShardChannel), unsubscribed, or the subscription ends; the
// channels and patterns likewise (retryOthers). Before, they were
// reported and forgotten (qa-BE BE3).
func (s *Subscription) abandon(sent []subSent, since time.Time) {
	s.background(func() {
		var moved []string
		var k kept
		for _, o := range sent {
			select {
			case err := <-o.op.Done:
				var kp *kept
				if s.retryable(o, err) {
					kp = &k
				}
				moved = append(moved, s.settleKeep(o, err, kp)...)
				s.refusedUnwaited(o, err)
			case <-o.a.st.Stopped():
				s.settle(o, ErrClosed)
			case <-s.quit:
				return
			}
		}
		s.reap()
		if len(k.names) > 0 {
			s.background(func() { s.follow(k.id, k.names, k.since, "", true) })
		}
		for kind, names := range k.other {
			if len(names) > 0 {
				s.background(func() { s.retryOthers(k.id, actors.SubKind(kind), names) })
			}
		}
		if len(moved) > 0 {
			s.move(moved, since, "")
		}
	})
}

// movedFrom is an actor's SubscriberState.Moved: the shard channels it
// gave up because their slot moved (from is its node) are routed to their
// new owner in the background.
//
// Those the new owner does not take (it refuses them: NOPERM after an
// ACL that differs between nodes; the connection is lost before it
// confirms them) are tried again after the engine's backoff, growing,
// until it takes them, they are unsubscribed or the subscription ends, as
// a connection's set is after a refused resubscribe; each distinct
// refusal of a channel is reported once as a Refused event naming it
// (review-36 R36-3: the error was dropped, and the channels, after their
// Disconnected, were neither subscribed nor reported again).
func (s *Subscription) movedFrom(names []string, since time.Time, from string) {
	s.background(func() { s.move(names, since, from) })
}

// move is movedFrom's (and abandon's, for the shard channels redirected
// while nobody waited) routing of names to their new owner, on a
// background goroutine.
func (s *Subscription) move(names []string, since time.Time, from string) {
	// Each name is tried again by the latest move that claimed it: a
	// channel taken by an earlier move and moved again since is this
	// one's (its since is this one's, and so its Resubscribed's Gap; its
	// refusals are this one's to tell), and the earlier move leaves it.
	var claimed []string
	var resumed map[time.Time][]string
	s.mu.Lock()
	s.moves++
	id := s.moves
	for _, n := range names {
		if s.shards[n] == nil || slices.Contains(claimed, n) {
			continue // unsubscribed meanwhile
		}
		if old, ok := s.moving[n]; ok && since.IsZero() && !old.since.IsZero() {
			// A user's SSubscribe redirected while nobody waited (see
			// abandon) of a channel another move was trying: a move of
			// its own keeps that one's since (its Resubscribed's Gap).
			if resumed == nil {
				resumed = map[time.Time][]string{}
			}
			resumed[old.since] = append(resumed[old.since], n)
			continue
		}
		s.moving[n] = moveClaim{id, since}
		claimed = append(claimed, n)
	}
	s.mu.Unlock()
	for t, ns := range resumed {
		s.background(func() { s.move(ns, t, "") })
	}
	if len(claimed) == 0 {
		return
	}
	s.follow(id, claimed, since, from, false)
}

// follow routes the shard channels move id claimed to their owner by the
// slot map, and again after the backoff, growing, those the owner did
// not take, until none is left (see move). wait: the first try waits the
// backoff too (the channels' connection has just failed: abandon).
func (s *Subscription) follow(id uint64, claimed []string, since time.Time, from string, wait bool) {
	defer s.moved(id, claimed)
	round := &moveRound{id: id, refused: map[string]*ServerError{}, sent: map[string]uint64{}}
	if !wait {
		s.apply(s.life, actors.SubShard, false, claimed, since, true, from, round)
		s.reap()
	}
	told := map[string]map[string]bool{} // channel -> refusals reported
	for try := 0; ; try++ {
		left := s.unmoved(id, claimed, round.sent)
		if len(left) == 0 {
			return
		}
		s.tellRefused(left, round.refused, told)
		if !s.pause(s.life, try) {
			return
		}
		// Those still its own after the backoff: one unsubscribed (and
		// maybe subscribed again by a call of its own) or taken over by
		// a later move meanwhile is not, and sending it again had the
		// actor confirm it at once with a Resubscribed, Gap from this
		// move's since, after the Unsubscribe (review-43s).
		if left = s.unmoved(id, left, round.sent); len(left) == 0 {
			return
		}
		// Routed by the slot map again (reloaded: they may have moved
		// on), unless unsubscribed meanwhile; Since keeps their
		// Resubscribed's Gap.
		clear(round.refused)
		clear(round.sent)
		s.apply(s.life, actors.SubShard, false, left, since, true, "", round)
		s.reap()
	}
}

// moveRound is what a move's round (one apply) recorded: each channel's
// refusal, and the last operation that sent it.
type moveRound struct {
	id      uint64 // the move's
	refused map[string]*ServerError
	sent    map[string]uint64
}

// unmoved returns those of names that move id still claims and that
// still have no home: their new owner did not take them, they were not
// unsubscribed and no later move took them over. A name homed by an
// operation other than the move's last (sent: a user's SSubscribe sent to
// its home meanwhile) is left too: that operation's refusal unhomes it
// after the move looked (review-38 R38-2); the next round sends it again
// (the actor confirms at once a channel it holds).
func (s *Subscription) unmoved(id uint64, names []string, sent map[string]uint64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	var left []string
	for _, n := range names {
		if s.moving[n].id == id && (s.shards[n] == nil || s.lastOp[n] != sent[n]) && !slices.Contains(left, n) {
			left = append(left, n)
		}
	}
	return left
}

// moved ends move id's claim on names (those a later move or an
// unsubscribe took are not its any more).
func (s *Subscription) moved(id uint64, names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		if s.moving[n].id == id {
			delete(s.moving, n)
		}
	}
}

// noteRefused records in into the shard channels of o that the server
// refused, each with its own error reply (a set can be refused for
// different reasons; a channel whose connection was lost, or that was
// redirected, is not refused: review-37 R37-4 reported a round's first
// error reply for every channel left in it).
func noteRefused(into map[string]*ServerError, o subSent, err error) {
	if err == nil || o.op.Unsub || o.op.Kind != actors.SubShard {
		return
	}
	var re *actors.RefusedError
	if errors.As(err, &re) {
		for i, n := range re.Names {
			var se *ServerError
			if i < len(re.Errs) && errors.As(mapError(re.Errs[i]), &se) {
				into[n] = se
			}
		}
		return
	}
	var se *ServerError
	if !errors.As(mapError(withoutMarks(err)), &se) {
		return // a lost connection, a dial's failure: retried in silence
	}
	var me *actors.MovedError
	errors.As(err, &me)
	for _, n := range o.op.Names {
		if me == nil || !slices.Contains(me.Names, n) {
			into[n] = se
		}
	}
}

// tellRefused reports the refusals of names that refused holds, each
// channel's own error reply, as a Refused event, once per distinct text
// and channel (at most maxRefusedTexts each), naming the node the slot
// map gives. A channel with no refusal (its connection was lost, a dial
// failed) is retried in silence, as a connection's set is.
func (s *Subscription) tellRefused(names []string, refused map[string]*ServerError, told map[string]map[string]bool) {
	for _, n := range names {
		se := refused[n]
		s.mu.Lock()
		homed := s.shards[n] != nil // another operation holds it: its answer is pending
		s.mu.Unlock()
		if se == nil || homed {
			continue
		}
		text := se.Error()
		seen := told[n]
		if seen[text] || len(seen) >= maxRefusedTexts {
			continue
		}
		if seen == nil {
			seen = map[string]bool{}
			told[n] = seen
		}
		seen[text] = true
		addr, _ := s.e.addrOf(n)
		s.emit(actors.SubEvent{Kind: actors.SubRefused, Err: se, Addr: addr, ShardChannel: n}, true, nil)
	}
}

// moveClaim is a shard channel's entry in subscriptionState.moving: the
// move trying it (see move) and since when it is not subscribed.
type moveClaim struct {
	id    uint64
	since time.Time
}

// maxRefusedTexts bounds the Refused events of one moved channel.
const maxRefusedTexts = 16

// refusedUnwaited reports, as a Refused event, the server's refusal of
// a subscribe nobody waited for: one a Handler made (its call returns
// before the answer) or one whose ctx ended first. Without it the refusal
// went nowhere: the Handler's call had returned nil and the names were
// simply not subscribed (review-37 R37-2). A shard channel's refusal
// names the channel (one event each); the others' names the node only.
// The names are not tried again, as after a refusal the caller saw.
//
// The same for one whose connection could not be made: an actor fails
// its operations with a transport error only before its connection's
// first confirmation (a new one: in cluster mode, a shard channel's node
// or the channels' and patterns' connection opened after SubscribeWith),
// and those names are not subscribed either. The Refused's Err is then a
// *ConnectError naming the node. Without it a Handler's SSubscribe to a
// node down at that moment returned nil and the channel was never
// subscribed nor reported (qa-BE BE3). Such names are then tried again
// in the background (see abandon): the Refused is their first failure's,
// the later ones are silent, as a move's.
func (s *Subscription) refusedUnwaited(o subSent, err error) {
	if o.op.Unsub {
		return
	}
	var se *ServerError
	if mapped := mapError(withoutMarks(err)); !errors.As(mapped, &se) {
		if mapped == nil || errors.Is(mapped, ErrClosed) || errors.Is(mapped, errSubscriptionClosed) || s.life.Err() != nil {
			return
		}
		ce := lostBeforeConfirmed(s.life, o.a, mapped)
		s.emitRefused(o, ce, func(string) error { return ce })
		return
	}
	if o.op.Kind != actors.SubShard || s.e.cl == nil {
		s.emitRefused(o, se, nil)
		return
	}
	// Each channel with its own error reply (noteRefused's, review-38).
	each := map[string]*ServerError{}
	noteRefused(each, o, err)
	s.emitRefused(o, nil, func(n string) error {
		if e := each[n]; e != nil {
			return e
		}
		return nil
	})
}

// emitRefused reports o's names as refused: one event with err for
// channels and patterns (and in standalone mode), one per shard channel
// with of(name) in cluster mode (none when it is nil).
func (s *Subscription) emitRefused(o subSent, err error, of func(string) error) {
	addr := o.a.st.Addr()
	if addr == "" {
		addr = o.a.addr
	}
	if o.op.Kind != actors.SubShard || s.e.cl == nil {
		s.emit(actors.SubEvent{Kind: actors.SubRefused, Err: err, Addr: addr}, false, nil)
		return
	}
	for _, n := range o.op.Names {
		if e := of(n); e != nil {
			s.emit(actors.SubEvent{Kind: actors.SubRefused, Err: e, Addr: addr, ShardChannel: n}, true, nil)
		}
	}
}

// errStaleSlotMap: the slot map still names the node that gave a shard
// channel up as its owner.
var errStaleSlotMap = errors.New("vactor: the slot map still shows the old owner")

// background runs f on a goroutine that end waits for, unless the
// subscription is ending.
func (s *Subscription) background(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f()
	}()
}

// reap stops the actors left without work: a shard-channel actor with no
// channel and no operation in flight (its connection is closed), and an
// actor whose connection never subscribed anything (its first operations
// failed: the next Subscribe starts afresh).
func (s *Subscription) reap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	var gone []*subActor
	s.actors = slices.DeleteFunc(s.actors, func(a *subActor) bool {
		idle := a.pending == 0 && ((!a.global && a.names == 0) || !a.st.Subscribed())
		if idle {
			gone = append(gone, a)
		}
		return idle
	})
	if len(gone) == 0 {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		for _, a := range gone {
			a.st.Stop()
		}
	}()
}

func (s *Subscription) find(global bool, addr string) *subActor {
	for _, a := range s.actors {
		if a.global != global {
			continue
		}
		if global {
			return a
		}
		if cur := a.st.Addr(); cur == addr || (cur == "" && a.addr == addr) {
			return a
		}
	}
	return nil
}

// spawn starts a subscriber actor (s.mu held).
func (s *Subscription) spawn(global bool, addr, hint string) *subActor {
	e := s.e
	shards := e.cl != nil && !global
	down := new(atomic.Int64) // this actor's connection's (see emit)
	st := &actors.SubscriberState{
		Dial:     s.dial,
		Hint:     hint,
		Backoff:  e.retry.Backoff,
		Timeout:  e.retry.ReadTimeout,
		Emit:     func(ev actors.SubEvent) { s.emit(ev, shards, down) },
		CloseErr: ErrClosed,
		Conns:    &e.subs.conns,
	}
	if s.handler != nil {
		st.Goid = goid // see Subscription.deliver
	}
	if e.cl != nil && !global {
		st.Moved = func(names []string, since time.Time) { s.movedFrom(names, since, st.Addr()) }
		// Refused at a reconnect: routed by the slot map and tried as a
		// moved channel its new owner refused (see move); no from: the
		// node that refused them may well be their owner.
		st.Refused = func(names []string, since time.Time) { s.background(func() { s.move(names, since, "") }) }
	}
	st.Spawn(e.system)
	a := &subActor{st: st, global: global, addr: addr}
	s.actors = append(s.actors, a)
	return a
}

// dial opens a pub/sub connection: to the configured node in standalone
// mode; in cluster mode to the primary owning hint's slot, reloading the
// slot map after a failure, or, for channels and patterns (hint ""), to
// any primary (dialAny).
func (s *Subscription) dial(ctx context.Context, hint string, failures int) (drivers.ValkeyConn, string, error) {
	e := s.e
	if e.cl != nil && hint == "" {
		return s.dialAny(ctx, failures)
	}
	addr, err := e.addrOf(hint)
	if e.cl != nil && failures > 0 {
		addr, err = e.cl.Refresh(e.slotOf(hint))
	}
	if err != nil {
		return nil, "", err
	}
	dctx, cancel := context.WithTimeout(ctx, e.cfg.DialTimeout)
	defer cancel()
	conn, err := e.dial(dctx, addr)
	if err != nil {
		return nil, addr, err
	}
	return conn, addr, nil
}

// dialAny opens the connection for channels and patterns in cluster mode.
// Every node delivers every PUBLISH of the cluster, so it need not be any
// particular one: the primaries of the slot map are tried in turn, slot
// 0's owner first and, after failures, the next ones first (so that a
// node that died is not waited for until its failover: the subscription
// lost every message for the 2.5-3 s of it, and a new Subscribe failed
// while the other nodes answered), those whose breaker is open last; the
// next is dialled too when one has not answered within dialStagger (a
// frozen node).
func (s *Subscription) dialAny(ctx context.Context, failures int) (drivers.ValkeyConn, string, error) {
	e := s.e
	if failures > 0 {
		e.cl.refresh()
	}
	var cands []string
	if owner, err := e.cl.Owner(0); err == nil {
		cands = append(cands, owner)
	}
	for _, sh := range e.cl.topo.Load().Shards {
		if len(sh.Ranges) > 0 && !slices.Contains(cands, sh.Primary) {
			cands = append(cands, sh.Primary)
		}
	}
	if len(cands) == 0 {
		return nil, "", fmt.Errorf("%w: no primary in the slot map for the channels and patterns", ErrNoSlotOwner)
	}
	k := failures % len(cands)
	cands = slices.Concat(cands[k:], cands[:k])
	slices.SortStableFunc(cands, func(a, b string) int { // open breakers last
		return cmp.Compare(b2i(e.nodeOpen(a)), b2i(e.nodeOpen(b)))
	})
	return s.e.dialFirst(ctx, cands, dialStagger)
}

// dialStagger is how long dialFirst waits for one node to answer before
// it dials the next as well: a frozen node (SIGSTOP, a hung host) accepts
// the TCP connection and never answers the handshake, so waiting for it
// cost a new Subscribe the whole read timeout (3 s by default). RFC 8305's
// connection attempt delay.
const dialStagger = 250 * time.Millisecond

// dialFirst dials cands in turn, the next at once when one fails and after
// stagger when one has not answered yet, and returns the first connection
// made (the others are closed as they come); the last error when none.
func (e *Engine) dialFirst(ctx context.Context, cands []string, stagger time.Duration) (drivers.ValkeyConn, string, error) {
	type result struct {
		conn drivers.ValkeyConn
		addr string
		err  error
	}
	dctx, cancel := context.WithCancel(ctx)
	results := make(chan result, len(cands))
	next, pending := 0, 0
	start := func() {
		addr := cands[next]
		next++
		pending++
		go func() {
			tctx, tcancel := context.WithTimeout(dctx, e.cfg.DialTimeout)
			conn, err := e.dial(tctx, addr)
			tcancel()
			results <- result{conn, addr, err}
		}()
	}
	start()
	timer := time.NewTimer(stagger)
	defer timer.Stop()
	var last result
	for pending > 0 {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				cancel()
				if pending > 0 { // close the connections the others make
					go func(n int) {
						for ; n > 0; n-- {
							if l := <-results; l.conn != nil {
								l.conn.Close()
							}
						}
					}(pending)
				}
				return r.conn, r.addr, nil
			}
			last = r
			if next < len(cands) && ctx.Err() == nil {
				start()
				timer.Reset(stagger)
			}
		case <-timer.C:
			if next < len(cands) && ctx.Err() == nil {
				start()
				timer.Reset(stagger)
			}
		}
	}
	cancel()
	return nil, last.addr, last.err
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
