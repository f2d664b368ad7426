package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// bpCapacity is the MailboxCapacity of the backpressure tests.
const bpCapacity = 8

// bpLimit bounds the waits of these tests for a condition that holds
// within milliseconds unless the code under test is wrong.
const bpLimit = 10 * time.Second

// paused stops srv (SIGSTOP) until the returned func resumes it, which is
// also done at cleanup.
func paused(t *testing.T, srvs ...*valkeytest.Server) (resume func()) {
	t.Helper()
	for _, s := range srvs {
		if err := s.Pause(); err != nil {
			t.Fatal(err)
		}
	}
	var once atomic.Bool
	resume = func() {
		if once.Swap(true) {
			return
		}
		for _, s := range srvs {
			if err := s.Resume(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(resume)
	return resume
}

// maxConnQueued returns the longest connection actor queue.
func maxConnQueued(eng *engine.Engine) int {
	n := 0
	for _, c := range eng.Stats().Conns {
		n = max(n, c.Mailbox.Queued)
	}
	return n
}

// incrPipeline returns a pipeline of n INCR key and its futures.
func incrPipeline(eng *engine.Engine, key string, n int) (*engine.Pipeline, []*futures.Future[int64]) {
	p := eng.Pipeline()
	fs := make([]*futures.Future[int64], n)
	for i := range fs {
		fs[i] = p.Incr(key)
	}
	return p, fs
}

// startHeld sends one command to the (paused) server and waits until it
// is written: the connection actor is then busy with it and everything
// posted next stays queued.
func startHeld(t *testing.T, ctx context.Context, eng *engine.Engine, key string) *futures.Future[int64] {
	t.Helper()
	f := eng.Incr(ctx, key)
	csWait(t, bpLimit, "the first command in flight", func() bool {
		s := eng.Stats()
		return s.InFlight == 1 && s.Queued == 0
	})
	return f
}

// Pipeline.Exec honours BackpressureReject: a pipeline that does not fit in
// the connection actor's mailbox fails whole with ErrBackpressure, and the
// queue never holds more than MailboxCapacity commands.
func TestPipelineExecBackpressureReject(t *testing.T) {
	eng, srv := newEngine(t, func(c config.Config) config.Config {
		return c.WithMailboxCapacity(bpCapacity).WithBackpressure(config.BackpressureReject)
	})
	ctx := ctxT(t)
	resume := paused(t, srv)
	held := startHeld(t, ctx, eng, "bp:p")

	p1, fs1 := incrPipeline(eng, "bp:p", 6)
	res1 := make(chan error, 1)
	go func() { res1 <- p1.Exec(ctx) }()
	csWait(t, bpLimit, "first pipeline queued", func() bool { return eng.Stats().Queued == 6 })

	p2, fs2 := incrPipeline(eng, "bp:p", 6)
	res2 := make(chan error, 1)
	go func() { res2 <- p2.Exec(ctx) }()
	var err2 error
	csWait(t, bpLimit, "second pipeline rejected (or queued past capacity)", func() bool {
		select {
		case err2 = <-res2:
			return true
		default:
			return maxConnQueued(eng) > bpCapacity
		}
	})
	if q := maxConnQueued(eng); q > bpCapacity {
		t.Fatalf("%d commands queued with MailboxCapacity %d: Pipeline.Exec bypassed backpressure", q, bpCapacity)
	}
	if !errors.Is(err2, engine.ErrBackpressure) {
		t.Fatalf("second Exec = %v, want ErrBackpressure", err2)
	}
	for i, f := range fs2 {
		if _, err := f.Await(ctx); !errors.Is(err, engine.ErrBackpressure) {
			t.Fatalf("rejected pipeline's command %d: %v, want ErrBackpressure", i, err)
		}
	}

	resume()
	if err := <-res1; err != nil {
		t.Fatalf("first Exec: %v", err)
	}
	if _, err := held.Await(ctx); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs1 {
		if v, err := f.Await(ctx); err != nil || v != int64(i+2) {
			t.Fatalf("first pipeline's command %d = %d, %v", i, v, err)
		}
	}
	// A pipeline larger than the capacity goes in alone, into an empty
	// mailbox (documented); it is not rejected for its size.
	p3, fs3 := incrPipeline(eng, "bp:p", 3*bpCapacity)
	if err := p3.Exec(ctx); err != nil {
		t.Fatalf("pipeline of %d into an empty mailbox: %v", 3*bpCapacity, err)
	}
	if v, _ := fs3[len(fs3)-1].Await(ctx); v != int64(7+3*bpCapacity) {
		t.Fatalf("counter = %d, want %d", v, 7+3*bpCapacity)
	}
}

// Pipeline.Exec honours BackpressureBlock: a pipeline that does not fit
// waits (whole) for room, the queue stays within MailboxCapacity, and
// every command completes once the server answers.
func TestPipelineExecBackpressureBlock(t *testing.T) {
	eng, srv := newEngine(t, func(c config.Config) config.Config {
		return c.WithMailboxCapacity(bpCapacity).WithBackpressure(config.BackpressureBlock)
	})
	ctx := ctxT(t)
	resume := paused(t, srv)
	held := startHeld(t, ctx, eng, "bp:b")

	p1, _ := incrPipeline(eng, "bp:b", 6)
	res1 := make(chan error, 1)
	go func() { res1 <- p1.Exec(ctx) }()
	csWait(t, bpLimit, "first pipeline queued", func() bool { return eng.Stats().Queued == 6 })

	p2, fs2 := incrPipeline(eng, "bp:b", 6)
	res2 := make(chan error, 1)
	go func() { res2 <- p2.Exec(ctx) }()
	csWait(t, bpLimit, "second pipeline blocked (or queued past capacity)", func() bool {
		s := eng.Stats()
		return s.Conns[0].Mailbox.Blocked > 0 || s.Queued > bpCapacity
	})
	if q := eng.Stats().Queued; q != 6 {
		t.Fatalf("%d commands queued with MailboxCapacity %d, want 6: the second pipeline must wait whole", q, bpCapacity)
	}
	select {
	case err := <-res2:
		t.Fatalf("second Exec returned %v while the mailbox had no room for it", err)
	default:
	}

	resume()
	for _, r := range []chan error{res1, res2} {
		if err := <-r; err != nil {
			t.Fatalf("Exec: %v", err)
		}
	}
	if _, err := held.Await(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := fs2[5].Await(ctx); err != nil || v != 13 {
		t.Fatalf("last INCR = %d, %v; want 13", v, err)
	}
}

// replicaReadCluster starts a 3+3 cluster whose replicas serve reads,
// writes key on it, and returns an engine reading from the replicas
// with the given backpressure policy and a capacity of bpCapacity (and
// mod applied to its config).
func replicaReadCluster(t *testing.T, key string, policy config.BackpressurePolicy, mod ...func(config.Config) config.Config) (*valkeytest.Cluster, *engine.Engine) {
	t.Helper()
	// A long node timeout: the replicas are paused for a moment and must
	// not be flagged as failed meanwhile.
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{NodeTimeout: 10 * time.Second})
	ctx := ctxT(t)
	w := clusterEngine(t, c)
	// Writes to every shard (60 keys spread over the slots), so that each
	// replica's offset moves and it reports itself online.
	for i := range 60 {
		k := key
		if i > 0 {
			k = fmt.Sprintf("%s:%d", key, i)
		}
		if err := w.Set(ctx, k, "v", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := w.WaitReplicas(ctx, k, 1, time.Second).Await(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The engine reads from replicas that CLUSTER SHARDS shows online. A
	// setup condition, not what is tested: under -race on a busy machine
	// the gossip took more than 10 s once, so the bound only guards a hang.
	start := time.Now()
	defer func() { t.Logf("replicas online after %v", time.Since(start).Round(time.Millisecond)) }()
	csWait(t, 60*time.Second, "replicas online", func() bool {
		v, err := c.Nodes()[0].Do("CLUSTER", "SHARDS")
		return err == nil && strings.Count(fmt.Sprint(v), "health online") == 6
	})
	cfg := config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true).
		WithReadFrom(config.ReadFromReplica).WithMailboxCapacity(bpCapacity).WithBackpressure(policy)
	for _, m := range mod {
		cfg = m(cfg)
	}
	eng := engineOn(t, cfg)
	t.Cleanup(func() { _ = eng.Close() })
	// The replica is dialled and serves the key.
	if v, err := eng.Get(ctx, key).Await(ctx); err != nil || v != "v" {
		t.Fatalf("GET from a replica = %q, %v", v, err)
	}
	return c, eng
}

func replicaServers(c *valkeytest.Cluster) []*valkeytest.Server {
	var out []*valkeytest.Server
	for _, r := range c.Replicas() {
		out = append(out, r.Server)
	}
	return out
}

// bound records the largest queues seen.
type bound struct{ conn, total atomic.Int64 }

func (b *bound) sample(eng *engine.Engine) {
	s := eng.Stats()
	for _, c := range s.Conns {
		if q := int64(c.Mailbox.Queued); q > b.conn.Load() {
			b.conn.Store(q)
		}
	}
	if q := int64(s.Queued); q > b.total.Load() {
		b.total.Store(q)
	}
}

// check fails the test unless every connection queue stayed within the
// capacity and the slot actor's within one more capacity.
func (b *bound) check(t *testing.T) {
	t.Helper()
	if c, tot := b.conn.Load(), b.total.Load(); c > bpCapacity || tot > 2*bpCapacity {
		t.Fatalf("queued up to %d on a connection and %d in all, MailboxCapacity %d: backpressure bypassed", c, tot, bpCapacity)
	}
}

// In cluster mode commands that go through slot actors (here: reads from
// replicas) honour BackpressureReject: they fail with ErrBackpressure once
// the slot actor and the connection actor hold a capacity each.
func TestClusterSlotActorBackpressureReject(t *testing.T) {
	const key = "bp:slot"
	c, eng := replicaReadCluster(t, key, config.BackpressureReject)
	ctx := ctxT(t)
	resume := paused(t, replicaServers(c)...)
	var b bound
	const n = 200
	fs := make([]*futures.Future[string], n)
	for i := range fs {
		fs[i] = eng.Get(ctx, key)
		b.sample(eng)
	}
	b.check(t)
	resume()
	rejected := awaitRejected(t, ctx, fs, "v")
	t.Logf("%d of %d GETs rejected", rejected, n)
	if rejected == 0 {
		t.Fatalf("no GET rejected with %d fired at a paused replica, MailboxCapacity %d, BackpressureReject", n, bpCapacity)
	}
	if rejected > n-bpCapacity {
		t.Fatalf("%d of %d rejected: the mailboxes should have taken at least %d", rejected, n, bpCapacity)
	}
}

// The same under BackpressureBlock: callers wait, the queues stay bounded,
// and every command completes once the replica answers.
func TestClusterSlotActorBackpressureBlock(t *testing.T) {
	const key = "bp:slotb"
	c, eng := replicaReadCluster(t, key, config.BackpressureBlock)
	ctx := ctxT(t)
	resume := paused(t, replicaServers(c)...)
	var b bound
	const n = 200
	fs := make([]*futures.Future[string], n)
	var fired atomic.Int64
	firing := make(chan struct{})
	go func() {
		defer close(firing)
		for i := range fs {
			fs[i] = eng.Get(ctx, key)
			fired.Add(1)
			b.sample(eng)
		}
	}()
	// Wait until a forwarded group waits for room in the replica's
	// connection actor and more than a capacity was fired, or until
	// everything was fired (no backpressure at all).
	csWait(t, bpLimit, "callers held back", func() bool {
		if fired.Load() == n {
			return true
		}
		blocked := uint64(0)
		for _, c := range eng.Stats().Conns {
			blocked += c.Mailbox.Blocked
		}
		return blocked > 0 && fired.Load() > bpCapacity
	})
	b.sample(eng)
	b.check(t)
	// The replica answers nothing: the caller must be held back long
	// before all were fired (two capacities and a batch in flight).
	if f := fired.Load(); f == n {
		t.Fatalf("all %d GETs fired at a paused replica with MailboxCapacity %d: the caller was never held back", n, bpCapacity)
	}
	resume()
	<-firing
	for i, f := range fs {
		if v, err := f.Await(ctx); err != nil || v != "v" {
			t.Fatalf("GET %d = %q, %v", i, v, err)
		}
	}
	b.check(t)
}

// awaitRejected awaits fs and returns how many failed with
// ErrBackpressure; any other error, or a value other than want, fails t.
func awaitRejected(t *testing.T, ctx context.Context, fs []*futures.Future[string], want string) int {
	t.Helper()
	rejected := 0
	for i, f := range fs {
		v, err := f.Await(ctx)
		switch {
		case errors.Is(err, engine.ErrBackpressure):
			rejected++
		case err != nil || v != want:
			t.Fatalf("GET %d = %q, %v", i, v, err)
		}
	}
	return rejected
}
