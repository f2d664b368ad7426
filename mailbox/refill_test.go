package mailbox_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/mailbox"
)

// After a batch, the run loop yields before it drains the next one, so
// that the callers the batch woke post first: their commands join the one
// queued while the batch ran instead of going a batch behind it. Eight
// callers each post a command and wait for it, 20 times; every batch of
// theirs makes the actor queue one more command (as arrived during a
// round trip). With the default IdleSpins nearly every later batch holds
// that command and all eight callers' next ones; without spins
// (IdleSpins -1) the queued command goes alone and the callers' commands
// trickle in behind it. One processor makes the callers run only when
// the loop yields (the runtime may still resume the loop early now and
// then: hence "most").
func TestRefillJoinsWokenCallers(t *testing.T) {
	const callers, rounds = 8, 20
	for _, tc := range []struct {
		name  string
		spins int
	}{{"default", 0}, {"none", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			ctx := context.Background()
			mb, inv := newMailbox(mailbox.Options{Capacity: 64, IdleSpins: tc.spins}, actor.NewDefaultDispatcher(300))
			defer mb.Close(mailbox.ErrClosed)
			next := 0 // the actor's own command ids (the hook runs on the actor only)
			inv.hook = func(m any) {
				b, ok := m.(*mailbox.Batch)
				if !ok {
					return
				}
				fromCallers := false
				for _, x := range b.Messages {
					x.(*msg).succeed()
					fromCallers = fromCallers || x.(*msg).poster < callers
				}
				if fromCallers {
					next++
					mb.Post(newMsg(ctx, callers, next))
				}
			}
			mb.Pause() // the first commands go in one batch
			var wg sync.WaitGroup
			for c := range callers {
				wg.Go(func() {
					for r := range rounds {
						m := newMsg(ctx, c, r)
						if !mb.Post(m) {
							t.Errorf("caller %d: Post refused", c)
							return
						}
						select {
						case <-m.finished:
						case <-time.After(waitTimeout):
							t.Errorf("caller %d: command %d not delivered", c, r)
							return
						}
					}
				})
			}
			deadline := time.Now().Add(waitTimeout)
			for mb.Len() < callers && time.Now().Before(deadline) {
				runtime.Gosched()
			}
			mb.Unpause()
			wg.Wait()

			joined := 0 // batches with the actor's command and every caller's
			for _, b := range inv.batches() {
				if len(b) == callers+1 && b[0].poster == callers {
					joined++
				}
			}
			t.Logf("IdleSpins %d: %d of %d batches joined the queued command and all callers'", tc.spins, joined, len(inv.batches()))
			if tc.spins >= 0 && joined < rounds/2 {
				t.Errorf("%d batches joined the woken callers' commands, want at least %d", joined, rounds/2)
			}
			if tc.spins < 0 && joined >= rounds/2 {
				t.Errorf("without spins %d batches joined the woken callers' commands: the test cannot tell", joined)
			}
		})
	}
}
