package actors

// The subscriber actor's operations: subscribe and unsubscribe, run on the
// connection or parked until it is up.

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"
)

// size returns the number of names in the set.
func (s *SubscriberState) size() int {
	n := 0
	for k := range s.want {
		n += len(s.want[k])
	}
	return n
}

// op runs an operation now when subscribed, or parks it.
func (s *SubscriberState) op(op SubOp) {
	if op.Kind >= subKinds {
		op.Done <- errors.New("actors: unknown subscription kind")
		return
	}
	set := s.want[op.Kind]
	if op.Unsub {
		s.unsub(op, set)
		return
	}
	var names []string
	seen := map[string]bool{}
	for _, n := range op.Names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if _, ok := set[n]; !ok {
			names = append(names, n)
		} else if !op.Since.IsZero() && s.up {
			// Already subscribed here: nothing to confirm.
			s.Emit(SubEvent{Kind: SubResubscribed, Gap: time.Since(op.Since), Addr: s.sess.addr, ShardChannel: n})
		}
	}
	if len(names) == 0 {
		op.Done <- nil
		return
	}
	if !s.up {
		s.parked = append(s.parked, op)
		return
	}
	if !op.Since.IsZero() {
		s.sess.expect(names, op.Since)
	}
	errs := s.exec(subCmds(s.conn.B(), op.Kind, false, names))
	var moved, refused []string
	var refusedErrs []error
	var bad, broken error
	for i, err := range errs {
		// One command per shard channel, one for all the others.
		these := names
		if op.Kind == SubShard {
			these = names[i : i+1]
		}
		switch {
		case err == nil:
			for _, n := range these {
				set[n] = struct{}{}
			}
			continue
		case !isServerErr(err):
			broken = err
		case op.Kind == SubShard && s.Moved != nil && isMovedErr(err):
			moved = append(moved, these...)
		default:
			if bad == nil {
				bad = err
			}
			refused = append(refused, these...)
			for range these {
				refusedErrs = append(refusedErrs, err)
			}
		}
		s.sess.unexpect(these)
	}
	if broken != nil {
		s.parked = append(s.parked, op) // what is in the set now is skipped next time
		s.fail(broken)
		return
	}
	var marks []error
	if len(moved) > 0 {
		marks = append(marks, &MovedError{Names: moved})
	}
	if op.Kind == SubShard && s.Moved != nil && len(refused) > 0 {
		marks = append(marks, &RefusedError{Names: refused, Errs: refusedErrs})
	}
	if len(marks) > 0 {
		op.Done <- errors.Join(append([]error{bad}, marks...)...)
		return
	}
	op.Done <- bad
}

// unsub runs an unsubscribe operation.
func (s *SubscriberState) unsub(op SubOp, set map[string]struct{}) {
	for _, n := range op.Names {
		delete(set, n)
	}
	if !s.up {
		s.unpark(op.Kind, op.Names)
		op.Done <- nil
		return
	}
	if op.Kind == SubShard {
		for _, n := range op.Names {
			s.unsubbed[n]++
		}
	}
	var res error
	for i, err := range s.exec(subCmds(s.conn.B(), op.Kind, true, op.Names)) {
		if err == nil {
			continue
		}
		if op.Kind == SubShard {
			s.unkick(op.Names[i]) // no sunsubscribe comes for it
		}
		switch {
		case !isServerErr(err):
			s.fail(err)
			op.Done <- nil // not subscribed again on the next connection
			return
		case op.Kind == SubShard && isMovedErr(err):
			// Served elsewhere: not subscribed here.
		case res == nil:
			res = err
		}
	}
	op.Done <- res
}

// unpark removes names from the parked subscribe operations of kind.
func (s *SubscriberState) unpark(kind SubKind, names []string) {
	for i, op := range s.parked {
		if op.Kind != kind || op.Unsub {
			continue
		}
		kept := op.Names[:0:0]
		for _, n := range op.Names {
			if !slices.Contains(names, n) {
				kept = append(kept, n)
			}
		}
		s.parked[i].Names = kept
	}
}

// exec sends cmds on the connection and returns each one's error. The
// round trip is bounded by Timeout of silence: the time the connection's
// reader spends handing items over (held up by a full channel nobody
// reads, or by a slow Handler) does not count, since the confirmations
// are read by that reader, behind those items. A reader held up that way
// is backpressure the server buffers, not a dead connection: bounded by
// Timeout alone, a reader stopped for longer than Timeout while the
// connection was made again had the new, healthy, connection closed
// ("context deadline exceeded"), a second Disconnected and Resubscribed,
// and the messages published meanwhile lost (qa-BE BE1). A timeout fails
// the commands with context.DeadlineExceeded, as before.
func (s *SubscriberState) exec(cmds []valkey.Completed) []error {
	ctx, cancel := context.WithCancel(s.life)
	defer cancel()
	var expired atomic.Bool
	stop := s.sess.watch(s.Timeout, func() { expired.Store(true); cancel() })
	defer stop()
	errs := make([]error, len(cmds))
	for i, r := range s.conn.DoMulti(ctx, cmds...) {
		errs[i] = r.Error()
		if expired.Load() && s.life.Err() == nil && errors.Is(errs[i], context.Canceled) {
			errs[i] = context.DeadlineExceeded
		}
	}
	return errs
}

// subCmds builds the commands for names: one per name for shard channels
// (SSUBSCRIBE takes one slot per command in cluster mode), one for the
// rest.
func subCmds(b valkey.Builder, kind SubKind, unsub bool, names []string) []valkey.Completed {
	if len(names) == 0 {
		return nil
	}
	switch kind {
	case SubChannel:
		if unsub {
			return []valkey.Completed{b.Unsubscribe().Channel(names...).Build()}
		}
		return []valkey.Completed{b.Subscribe().Channel(names...).Build()}
	case SubPattern:
		if unsub {
			return []valkey.Completed{b.Punsubscribe().Pattern(names...).Build()}
		}
		return []valkey.Completed{b.Psubscribe().Pattern(names...).Build()}
	}
	cmds := make([]valkey.Completed, len(names))
	for i, n := range names {
		if unsub {
			cmds[i] = b.Sunsubscribe().Channel(n).Build()
		} else {
			cmds[i] = b.Ssubscribe().Channel(n).Build()
		}
	}
	return cmds
}

func keys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func isServerErr(err error) bool {
	_, ok := valkey.IsValkeyErr(err)
	return ok
}

func isMovedErr(err error) bool {
	ve, ok := valkey.IsValkeyErr(err)
	if !ok {
		return false
	}
	_, moved := MovedAddr(ve)
	return moved
}
