package engine_test

// Integration tests of the hook events that the scripted run does not
// reach: subscriber and consumer events, MailboxFull and RetryScheduled.
// Each asserts the events' fields, against a real server.

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/hooks"
)

// subsOf returns the recorded subscriber events of kind k (lock held).
func (h *recHook) subsOf(k hooks.SubscriberKind) []hooks.Subscriber {
	return ofKind(h.subs, func(ev hooks.Subscriber) bool { return ev.Kind == k })
}

// consumersOf returns the recorded consumer events of kind k (lock held).
func (h *recHook) consumersOf(k hooks.ConsumerKind) []hooks.Consumer {
	return ofKind(h.consumers, func(ev hooks.Consumer) bool { return ev.Kind == k })
}

// ofKind returns the events of evs for which is holds, in order.
func ofKind[E any](evs []E, is func(E) bool) []E {
	var out []E
	for _, ev := range evs {
		if is(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// countOf sums the Count of evs.
func countOf(evs []hooks.Consumer) int {
	n := 0
	for _, ev := range evs {
		n += ev.Count
	}
	return n
}

// A subscription whose connection the server drops (CLIENT KILL TYPE
// pubsub) reports Subscribed, Disconnected (with the error) and
// Resubscribed (with the gap) to the SubscriberEvents hooks, for its node,
// in the order its channel hands them out.
func TestHookSubscriberEvents(t *testing.T) {
	rec := &recHook{}
	eng, srv := newEngine(t, func(c config.Config) config.Config { return c.WithHooks(rec) })
	ctx := ctxT(t)
	sub, err := eng.Subscribe(ctx, "hk:sub")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	subExpect(t, sub.Channel(), engine.Subscribed)
	if n, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil || n != int64(1) {
		t.Fatalf("CLIENT KILL TYPE pubsub: %v, %v; want 1 client killed", n, err)
	}
	disc := subExpect(t, sub.Channel(), engine.Disconnected)
	resub := subExpect(t, sub.Channel(), engine.Resubscribed)
	if n := subPublish(t, eng, "hk:sub", "after"); n != 1 {
		t.Fatalf("PUBLISH after the resubscription reached %d subscribers", n)
	}
	if ev := subExpect(t, sub.Channel(), engine.SubMessage); ev.Message.Payload != "after" {
		t.Fatalf("got %+v, want the message published after the resubscription", ev.Message)
	}
	rec.eventually(t, "Resubscribed event", func() bool { return len(rec.subsOf(hooks.Resubscribed)) > 0 })
	rec.with(func() {
		kinds := make([]hooks.SubscriberKind, len(rec.subs))
		for i, ev := range rec.subs {
			kinds[i] = ev.Kind
			if ev.Node != srv.Addr() || ev.ShardChannel != "" || ev.Count != 0 {
				t.Errorf("%s event: %+v, want node %s, no shard channel, no count", ev.Kind, ev, srv.Addr())
			}
		}
		if want := []hooks.SubscriberKind{hooks.Subscribed, hooks.Disconnected, hooks.Resubscribed}; !slices.Equal(kinds, want) {
			t.Fatalf("subscriber events %v, want %v", kinds, want)
		}
		d, r := rec.subs[1], rec.subs[2]
		if d.Err == nil || d.Err.Error() != disc.Err.Error() || d.Gap != 0 {
			t.Errorf("Disconnected: err %v gap %s; want the subscription's error %v, no gap", d.Err, d.Gap, disc.Err)
		}
		if r.Gap <= 0 || r.Gap != resub.Gap || r.Err != nil {
			t.Errorf("Resubscribed: gap %s err %v; want the subscription's gap %s > 0, no error", r.Gap, r.Err, resub.Gap)
		}
		if rec.subs[0].Err != nil || rec.subs[0].Gap != 0 {
			t.Errorf("Subscribed: %+v", rec.subs[0])
		}
	})
}

// An OverflowDrop subscription nobody reads reports its dropped messages
// to the SubscriberEvents hooks: the first drop at once (Count 1), the
// later ones at most once a second, summed. The rate limit is what is
// tested, so the test runs a little over a second.
func TestHookSubscriberMessagesDropped(t *testing.T) {
	rec := &recHook{}
	eng, _ := newEngine(t, func(c config.Config) config.Config { return c.WithHooks(rec) })
	ctx := ctxT(t)
	// A 2-item channel nobody reads: the Subscribed event and 1 message fit.
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"hk:drop"}, Buffer: 2, Overflow: engine.OverflowDrop})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	start := time.Now()
	dropped := func() int { return len(rec.subsOf(hooks.MessagesDropped)) }
	deadline := start.Add(10 * time.Second)
	for i := 0; ; i++ {
		subPublish(t, eng, "hk:drop", strconv.Itoa(i))
		// Each message after the first is dropped: wait for it.
		want := uint64(i)
		csWait(t, 10*time.Second, "the message dropped", func() bool { return sub.Dropped() == want })
		var n int
		rec.with(func() { n = dropped() })
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d MessagesDropped events within 10 s of drops (%d dropped)", n, sub.Dropped())
		}
	}
	elapsed := time.Since(start)
	total := sub.Dropped()
	rec.with(func() {
		evs := rec.subsOf(hooks.MessagesDropped)
		if evs[0].Count != 1 {
			t.Errorf("first MessagesDropped: count %d, want 1 (reported at the first drop)", evs[0].Count)
		}
		var sum uint64
		for _, ev := range evs {
			sum += ev.Count
			if ev.Count == 0 || ev.Node != "" || ev.Err != nil || ev.Gap != 0 {
				t.Errorf("MessagesDropped event: %+v", ev)
			}
		}
		if sum > total {
			t.Errorf("MessagesDropped counts sum to %d, more than the %d dropped", sum, total)
		}
		if limit := 1 + int(elapsed/time.Second); len(evs) > limit {
			t.Errorf("%d MessagesDropped events in %s: more than one a second", len(evs), elapsed)
		}
		if len(evs) == 2 && evs[1].Count < 2 {
			t.Errorf("second MessagesDropped: count %d; the drops of a second are not summed", evs[1].Count)
		}
	})
}

var errHookHandler = errors.New("hook test: handler fails")

// A consumer whose handler fails once for one entry reports the failure
// (the entry's ID and the error), the reclaim round that claims the entry
// back (Claimed and Redelivered, one entry each), every acknowledgement,
// and the group's lag, with the stream, group and consumer names. The
// claim idle time and interval are short: the claim is what is tested.
func TestHookConsumerClaimEvents(t *testing.T) {
	rec := &recHook{}
	eng, _ := newEngine(t, func(c config.Config) config.Config { return c.WithHooks(rec) })
	ctx := ctxT(t)
	const n = 10
	ids := csProduce(t, ctx, eng, "hk:s", 0, n)
	failed := false
	c, err := eng.Consume(ctx, "hk:s", "hk:g", "hk:c", func(_ context.Context, x engine.XEntry) error {
		if x.ID == ids[3] && !failed { // handler calls are sequential
			failed = true
			return errHookHandler
		}
		return nil
	}, engine.ConsumeOptions{StartID: "0", Block: 50 * time.Millisecond, ClaimIdle: 100 * time.Millisecond, ClaimInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	csWait(t, 10*time.Second, "every entry acknowledged", func() bool { return c.Stats().Acked == n })
	rec.eventually(t, "report of every ack and a lag of 0", func() bool {
		return countOf(rec.consumersOf(hooks.Acked)) == n && slices.ContainsFunc(rec.consumersOf(hooks.Lag), caughtUp)
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Claimed != 1 || st.Failed != 1 || st.Reconnects != 0 {
		t.Fatalf("consumer stats %+v: want 1 claimed, 1 failed, no reconnect", st)
	}
	rec.with(func() {
		for _, ev := range rec.consumers {
			if ev.Stream != "hk:s" || ev.Group != "hk:g" || ev.Consumer != "hk:c" {
				t.Errorf("%s event names %q %q %q", ev.Kind, ev.Stream, ev.Group, ev.Consumer)
			}
		}
		hf := rec.consumersOf(hooks.HandlerFailed)
		if len(hf) != 1 || hf[0].ID != ids[3] || !errors.Is(hf[0].Err, errHookHandler) {
			t.Errorf("HandlerFailed events %+v, want one for %s with the handler's error", hf, ids[3])
		}
		if cl := rec.consumersOf(hooks.Claimed); len(cl) != 1 || cl[0].Count != 1 {
			t.Errorf("Claimed events %+v, want one of 1 entry", cl)
		}
		if rd := rec.consumersOf(hooks.Redelivered); len(rd) != 1 || rd[0].Count != 1 {
			t.Errorf("Redelivered events %+v, want one of 1 entry", rd)
		}
		for _, ev := range rec.consumersOf(hooks.Acked) {
			if ev.Count < 1 {
				t.Errorf("Acked event of %d entries", ev.Count)
			}
		}
	})
}

// caughtUp reports whether a Lag event says the group is caught up.
func caughtUp(ev hooks.Consumer) bool { return ev.Lag == 0 && ev.Pending == 0 }

// A consumer whose connection is killed re-reads its own pending entry
// after the reconnect: a Redelivered event of 1 entry, no claim (the
// default ClaimIdle of 30 s has not passed).
func TestHookConsumerRedeliveredAfterReconnect(t *testing.T) {
	rec := &recHook{}
	eng, srv := newEngine(t, func(c config.Config) config.Config { return c.WithHooks(rec) })
	ctx := ctxT(t)
	const n = 10
	ids := csProduce(t, ctx, eng, "hk:r", 0, n)
	failed := false
	c, err := eng.Consume(ctx, "hk:r", "hk:g", "hk:c", func(_ context.Context, x engine.XEntry) error {
		if x.ID == ids[3] && !failed {
			failed = true
			return errHookHandler
		}
		return nil
	}, engine.ConsumeOptions{StartID: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	csWait(t, 10*time.Second, "all but the failed entry acknowledged", func() bool {
		st := c.Stats()
		return st.Acked == n-1 && st.Failed == 1
	})
	// Kill the consumer's connection: the one blocked in XREADGROUP.
	var id string
	csWait(t, 10*time.Second, "the consumer's connection in CLIENT LIST", func() bool {
		id = blockedReader(t, srv.Do)
		return id != ""
	})
	if _, err := srv.Do("CLIENT", "KILL", "ID", id); err != nil {
		t.Fatal(err)
	}
	csWait(t, 10*time.Second, "the failed entry acknowledged after the reconnect", func() bool { return c.Stats().Acked == n })
	rec.eventually(t, "report of every ack", func() bool { return countOf(rec.consumersOf(hooks.Acked)) == n })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Reconnects < 1 || st.Claimed != 0 {
		t.Fatalf("consumer stats %+v: want a reconnect, no claim", st)
	}
	rec.with(func() {
		rd := rec.consumersOf(hooks.Redelivered)
		if len(rd) != 1 || rd[0].Count != 1 || rd[0].Stream != "hk:r" || rd[0].Group != "hk:g" || rd[0].Consumer != "hk:c" {
			t.Errorf("Redelivered events %+v, want one of 1 entry of hk:r/hk:g/hk:c", rd)
		}
		if cl := rec.consumersOf(hooks.Claimed); len(cl) != 0 {
			t.Errorf("Claimed events %+v without a claim", cl)
		}
		if hf := rec.consumersOf(hooks.HandlerFailed); len(hf) != 1 || hf[0].ID != ids[3] {
			t.Errorf("HandlerFailed events %+v, want one for %s", hf, ids[3])
		}
	})
}

// blockedReader returns the ID of the client blocked in XREADGROUP, ""
// when there is none.
func blockedReader(t *testing.T, do func(...string) (any, error)) string {
	t.Helper()
	r, err := do("CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.(string)
	for _, line := range strings.Split(s, "\n") {
		if !strings.Contains(line, " cmd=xreadgroup ") || !strings.Contains(line, " flags=b ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				return v
			}
		}
	}
	return ""
}

// A full connection actor mailbox reports the commands concerned to the
// MailboxFull hooks: rejected with BackpressureReject, made to wait with
// BackpressureBlock. The small capacity is what is tested.
func TestHookMailboxFull(t *testing.T) {
	for _, policy := range []config.BackpressurePolicy{config.BackpressureReject, config.BackpressureBlock} {
		t.Run(policy.String(), func(t *testing.T) {
			rec := &recHook{}
			eng, srv := newEngine(t, func(c config.Config) config.Config {
				return c.WithMailboxCapacity(bpCapacity).WithBackpressure(policy).WithHooks(rec)
			})
			ctx := ctxT(t)
			resume := paused(t, srv)
			held := startHeld(t, ctx, eng, "hk:bp")
			p1, _ := incrPipeline(eng, "hk:bp", 6)
			res1 := make(chan error, 1)
			go func() { res1 <- p1.Exec(ctx) }()
			csWait(t, bpLimit, "first pipeline queued", func() bool { return eng.Stats().Queued == 6 })
			rec.with(func() {
				if len(rec.full) != 0 {
					t.Fatalf("MailboxFull before the mailbox was full: %+v", rec.full)
				}
			})
			p2, fs2 := incrPipeline(eng, "hk:bp", 6)
			res2 := make(chan error, 1)
			go func() { res2 <- p2.Exec(ctx) }()
			rec.eventually(t, "MailboxFull event", func() bool { return len(rec.full) > 0 })
			rejected := policy == config.BackpressureReject
			rec.with(func() {
				want := hooks.Backpressure{Node: srv.Addr(), Rejected: rejected, Commands: 6}
				if len(rec.full) != 1 || rec.full[0] != want {
					t.Errorf("MailboxFull events %+v, want [%+v]", rec.full, want)
				}
			})
			resume()
			if err := <-res1; err != nil {
				t.Fatal(err)
			}
			err := <-res2
			if rejected != errors.Is(err, engine.ErrBackpressure) {
				t.Fatalf("second Exec with %s: %v", policy, err)
			}
			if _, err := held.Await(ctx); err != nil {
				t.Fatal(err)
			}
			if !rejected {
				if v, err := fs2[5].Await(ctx); err != nil || v != 13 {
					t.Fatalf("last INCR = %d, %v; want 13", v, err)
				}
			}
		})
	}
}

// In cluster mode a full slot actor mailbox reports to the MailboxFull
// hooks too, without a node: GETs fired at a paused replica with
// BackpressureReject fill the replica's connection actor and the key's
// slot actor. The slot actor's forwards may wait for room in the
// connection actor (reported with the replica's node, not rejected); the
// GETs the slot actor rejects are reported without a node, each by exactly
// one event.
func TestHookMailboxFullSlotActor(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	const key = "hk:bp:slot"
	rec := &recHook{}
	c, eng := replicaReadCluster(t, key, config.BackpressureReject, func(c config.Config) config.Config { return c.WithHooks(rec) })
	ctx := ctxT(t)
	resume := paused(t, replicaServers(c)...)
	const n = 200
	fs := make([]*futures.Future[string], n)
	for i := range fs {
		fs[i] = eng.Get(ctx, key)
	}
	resume()
	rejected := awaitRejected(t, ctx, fs, "v")
	if rejected == 0 {
		t.Fatalf("no GET rejected with %d fired at a paused replica", n)
	}
	sum := func() int {
		s := 0
		for _, ev := range rec.full {
			if ev.Rejected {
				s += ev.Commands
			}
		}
		return s
	}
	rec.eventually(t, "MailboxFull events for every rejected GET", func() bool { return sum() >= rejected })
	replicas := map[string]bool{}
	for _, r := range c.Replicas() {
		replicas[r.Addr()] = true
	}
	rec.with(func() {
		slotActor, forwardWaited := false, false
		for _, ev := range rec.full {
			switch {
			case ev.Commands < 1:
				t.Errorf("MailboxFull event of no command: %+v", ev)
			case ev.Node == "" && ev.Rejected:
				slotActor = true
			case replicas[ev.Node] && !ev.Rejected:
				forwardWaited = true
			default:
				t.Errorf("MailboxFull event %+v, want a slot actor's rejection or a forward waiting on a replica", ev)
			}
		}
		// Only the slot actor rejects (a forward is never rejected); a
		// forward need not have waited: the caller may fill the slot
		// actor's mailbox before it forwards anything.
		if !slotActor {
			t.Errorf("MailboxFull events %+v: none of the slot actor's rejections", rec.full)
		}
		t.Logf("%d of %d GETs rejected; MailboxFull events: %d, a forward waited: %t", rejected, n, len(rec.full), forwardWaited)
		if s := sum(); s != rejected {
			t.Errorf("MailboxFull events count %d commands, %d GETs were rejected", s, rejected)
		}
	})
}

// A connection lost with an idempotent GET in flight keeps it to send
// again, and reports the retry: the node, the one command, the first
// attempt, the backoff before the reconnect and the transport error. The
// server is paused (the GET stays in flight) and then killed.
func TestHookRetryScheduled(t *testing.T) {
	rec := &recHook{}
	eng, srv := newEngine(t, func(c config.Config) config.Config { return c.WithHooks(rec) })
	ctx := ctxT(t)
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	f := eng.Get(engine.WithIdempotent(ctx), "hk:retry")
	csWait(t, bpLimit, "the GET in flight", func() bool {
		s := eng.Stats()
		return s.InFlight == 1 && s.Queued == 0
	})
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	rec.eventually(t, "RetryScheduled event", func() bool { return len(rec.retries) > 0 })
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The GET is sent again after the reconnect, unless the reconnects
	// failed long enough to open the breaker or use up MaxRetries.
	_, getErr := f.Await(ctx)
	cfg := config.DefaultConfig()
	rec.with(func() {
		r := rec.retries[0]
		if r.Node != srv.Addr() || r.Commands != 1 || r.Attempt != 1 || r.Reason == nil {
			t.Errorf("RetryScheduled: %+v, want node %s, 1 command, attempt 1, a reason", r, srv.Addr())
		}
		if r.Backoff <= 0 || r.Backoff > cfg.MaxRetryBackoff {
			t.Errorf("RetryScheduled backoff %s, want within (0, %s]", r.Backoff, cfg.MaxRetryBackoff)
		}
		for i, r := range rec.retries[1:] {
			if r.Attempt <= rec.retries[i].Attempt || r.Commands != 1 {
				t.Errorf("RetryScheduled %d: %+v after %+v", i+1, r, rec.retries[i])
			}
		}
	})
	if errors.Is(getErr, engine.ErrNil) {
		rec.eventually(t, "the GET's PostExecution", func() bool { return len(rec.executed) >= 2 })
		rec.with(func() {
			ev := rec.executed[len(rec.executed)-1]
			if ev.Name != "GET" || ev.Retries < 1 || ev.Node != srv.Addr() {
				t.Errorf("the retried GET completed as %+v, want Retries >= 1", ev)
			}
		})
		if st := eng.Stats(); st.Retries < 1 {
			t.Errorf("Stats.Retries %d after a retry", st.Retries)
		}
	} else {
		t.Logf("the GET was not resent: %v", getErr)
	}
}

// A stream consumer's last event is Stopped, once, whether its Close or
// the engine's stopped it: hooks that keep a consumer's lag (otelvactor's
// gauge) drop it then. Before, nothing told them the consumer was gone.
func TestHookConsumerStopped(t *testing.T) {
	rec := &recHook{}
	eng, _ := newEngine(t, func(c config.Config) config.Config { return c.WithHooks(rec) })
	ctx := ctxT(t)
	handler := func(context.Context, engine.XEntry) error { return nil }
	opts := engine.ConsumeOptions{Block: 20 * time.Millisecond}
	c1, err := eng.Consume(ctx, "stop:s", "g", "c1", handler, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Consume(ctx, "stop:s", "g", "c2", handler, opts); err != nil {
		t.Fatal(err)
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil { // stops c2, delivers every event
		t.Fatal(err)
	}
	rec.with(func() {
		for _, name := range []string{"c1", "c2"} {
			stopped, last := 0, hooks.ConsumerKind(255)
			for _, ev := range rec.consumers {
				if ev.Consumer != name {
					continue
				}
				last = ev.Kind
				if ev.Kind == hooks.Stopped {
					stopped++
					if ev.Stream != "stop:s" || ev.Group != "g" {
						t.Errorf("%s: Stopped event %+v, want stream stop:s, group g", name, ev)
					}
				}
			}
			if stopped != 1 || last != hooks.Stopped {
				t.Errorf("%s: %d Stopped events, last event %v; want one, last", name, stopped, last)
			}
		}
	})
	if got := hooks.Stopped.String(); got != "stopped" {
		t.Errorf("Stopped.String() = %q", got)
	}
}
