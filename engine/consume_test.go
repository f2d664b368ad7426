package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// csLog records what a handler saw: how many times each entry ID and each
// seq field value was handled.
type csLog struct {
	mu    sync.Mutex
	ids   map[string]int
	seqs  map[int]int
	calls int
}

func newCSLog() *csLog { return &csLog{ids: map[string]int{}, seqs: map[int]int{}} }

func (l *csLog) add(x engine.XEntry) int {
	n, _ := strconv.Atoi(x.Fields["seq"])
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	l.ids[x.ID]++
	l.seqs[n]++
	return l.seqs[n]
}

func (l *csLog) id(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ids[id]
}

func (l *csLog) seq(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seqs[n]
}

func (l *csLog) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ids)
}

// csProduce XADDs seqs [from, to) to stream in batches of futures and
// returns their IDs; any failure fails the test (no faults here).
func csProduce(t testing.TB, ctx context.Context, eng *engine.Engine, stream string, from, to int) []string {
	t.Helper()
	var ids []string
	for lo := from; lo < to; lo += 500 {
		hi := min(lo+500, to)
		fs := make([]*futures.Future[string], 0, hi-lo)
		for n := lo; n < hi; n++ {
			fs = append(fs, eng.XAdd(ctx, stream, "seq", strconv.Itoa(n)))
		}
		for _, f := range fs {
			ids = append(ids, dsAwait(t, ctx, "XADD", f))
		}
	}
	return ids
}

// csWait polls cond every 5ms until it holds or limit passes.
func csWait(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s", what, limit)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not synchronisation
	}
}

// csPending returns the group's pending count.
func csPending(t testing.TB, ctx context.Context, eng *engine.Engine, stream, group string) int64 {
	t.Helper()
	return dsAwait(t, ctx, "XPENDING", eng.XPending(ctx, stream, group)).Count
}

// Every entry is handled; the handler's failures and panics leave entries
// pending and reclaim rounds hand them over again until they succeed.
func TestConsumeHandlesFailsAndReclaims(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	ids := csProduce(t, ctx, eng, "s", 0, 1000) // before the group: StartID 0 reads them
	log := newCSLog()
	c, err := eng.Consume(ctx, "s", "g", "c1", func(hctx context.Context, x engine.XEntry) error {
		if hctx.Err() != nil {
			t.Errorf("handler context already done")
		}
		attempt := log.add(x)
		switch x.Fields["seq"] {
		case "10":
			if attempt == 1 {
				return errors.New("first attempt fails")
			}
		case "20":
			if attempt <= 2 {
				panic("handler panics twice")
			}
		}
		return nil
	}, engine.ConsumeOptions{StartID: "0", Count: 64, Block: 50 * time.Millisecond, ClaimIdle: 100 * time.Millisecond, ClaimInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	more := csProduce(t, ctx, eng, "s", 1000, 1500) // while it runs
	ids = append(ids, more...)
	csWait(t, 10*time.Second, "all handled and acknowledged", func() bool {
		st := c.Stats()
		return st.Acked == uint64(len(ids))
	})
	for _, id := range ids {
		if log.id(id) == 0 {
			t.Fatalf("entry %s never handled", id)
		}
	}
	st := c.Stats()
	if st.Failed != 3 || st.Handled != uint64(len(ids)) || st.Claimed < 2 {
		t.Fatalf("stats %+v: want 3 failed, %d handled, >= 2 claimed", st, len(ids))
	}
	if log.seq(10) != 2 || log.seq(20) != 3 {
		t.Fatalf("seq 10 handled %d times (want 2), seq 20 %d times (want 3)", log.seq(10), log.seq(20))
	}
	if n := csPending(t, ctx, eng, "s", "g"); n != 0 {
		t.Fatalf("XPENDING count %d after all acknowledged", n)
	}
	if st.Reconnects != 0 {
		t.Fatalf("reconnects %d without faults (last error %v)", st.Reconnects, st.LastError)
	}
}

// A consumer that starts at "$" sees only entries added later; a second
// Consume with the same group keeps the group's position.
func TestConsumeStartIDAndExistingGroup(t *testing.T) {
	eng, srv := newEngine(t)
	ctx := ctxT(t)
	csProduce(t, ctx, eng, "s", 0, 10)
	log := newCSLog()
	h := func(_ context.Context, x engine.XEntry) error { log.add(x); return nil }
	c, err := eng.Consume(ctx, "s", "g", "c1", h, engine.ConsumeOptions{Block: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	later := csProduce(t, ctx, eng, "s", 10, 20)
	csWait(t, 5*time.Second, "10 later entries", func() bool { return c.Stats().Acked == 10 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, id := range later {
		if log.id(id) != 1 {
			t.Fatalf("later entry %s handled %d times", id, log.id(id))
		}
	}
	if log.distinct() != 10 {
		t.Fatalf("handled %d entries, want only the 10 added after the group", log.distinct())
	}
	// c1's last XREADGROUP BLOCK may still wait on the server until it
	// reads the closed connection's end: an entry added meanwhile would
	// go to c1's dead read (pending for c1, not c2's to read: 1 failure in
	// a fresh clone's make test). The server has no blocked client first.
	waitCond(t, 5*time.Second, "c1's blocked read ended on the server", func() bool {
		info, err := srv.Do("INFO", "clients")
		s, _ := info.(string)
		return err == nil && strings.Contains(s, "blocked_clients:0")
	})
	// Same group, StartID 0: the group exists, its position is kept.
	csProduce(t, ctx, eng, "s", 20, 25)
	c2, err := eng.Consume(ctx, "s", "g", "c2", h, engine.ConsumeOptions{StartID: "0", Block: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	csWait(t, 5*time.Second, "5 new entries", func() bool { return c2.Stats().Acked == 5 })
	if log.distinct() != 15 {
		t.Fatalf("handled %d distinct entries, want 15", log.distinct())
	}
}

// Close while the handler runs cancels its context, waits for it, and
// leaves its entry pending when it failed; a handler that finishes its
// work despite the cancellation gets its entry acknowledged.
func TestConsumeCloseWhileHandlerRuns(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	in := make(chan struct{}, 1)
	returned := make(chan struct{})
	// The three entries exist before the first read (the group starts at
	// 0), so that one read takes all three: produced after, a read could
	// come back with the first XADD's entry alone.
	csProduce(t, ctx, eng, "s", 0, 3)
	c, err := eng.Consume(ctx, "s", "g", "c1", func(hctx context.Context, x engine.XEntry) error {
		in <- struct{}{}
		<-hctx.Done()
		close(returned)
		return hctx.Err()
	}, engine.ConsumeOptions{Block: 20 * time.Millisecond, StartID: "0"})
	if err != nil {
		t.Fatal(err)
	}
	<-in
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-returned:
	default:
		t.Fatal("Close returned before the handler did")
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	st := c.Stats()
	if st.Failed != 1 || st.Handled != 0 || st.Acked != 0 {
		t.Fatalf("stats after Close = %+v, want 1 failed", st)
	}
	if n := csPending(t, ctx, eng, "s", "g"); n != 3 {
		t.Fatalf("pending after Close = %d, want 3 (read, not acknowledged)", n)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// A handler that completes its work although Close cancelled it: its
	// entry is acknowledged before Close returns.
	finished := make(chan struct{})
	in2 := make(chan struct{}, 1)
	c2, err := eng.Consume(ctx, "s", "g", "c2", func(hctx context.Context, x engine.XEntry) error {
		in2 <- struct{}{}
		<-hctx.Done()
		time.Sleep(100 * time.Millisecond) // work that ignores the cancellation
		close(finished)
		return nil
	}, engine.ConsumeOptions{Block: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	csProduce(t, ctx, eng, "s", 3, 4)
	<-in2
	start := time.Now()
	c2.Close()
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("Close took %s: it did not wait for the handler", d)
	}
	if st := c2.Stats(); st.Handled != 1 || st.Acked != 1 {
		t.Fatalf("stats = %+v, want 1 handled and acknowledged", st)
	}
	if n := csPending(t, ctx, eng, "s", "g"); n != 3 {
		t.Fatalf("pending = %d, want the 3 of the first consumer", n)
	}
}

// engine.Close stops live consumers (their handler contexts are
// cancelled) and leaves no goroutine behind.
func TestConsumeEngineCloseNoLeak(t *testing.T) {
	srv := valkeytest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	var cs []*engine.Consumer
	cancelled := make(chan struct{}, 3)
	blocking := make(chan struct{}, 1)
	for i := range 3 {
		c, err := eng.Consume(ctx, fmt.Sprintf("s%d", i), "g", "c", func(hctx context.Context, x engine.XEntry) error {
			if i == 0 {
				blocking <- struct{}{}
				<-hctx.Done()
				cancelled <- struct{}{}
				return hctx.Err()
			}
			return nil
		}, engine.ConsumeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	csProduce(t, ctx, eng, "s0", 0, 1)
	csProduce(t, ctx, eng, "s1", 0, 100)
	<-blocking // s0's handler is running; s2's consumer is blocked in XREADGROUP
	csWait(t, 5*time.Second, "s1 handled", func() bool { return cs[1].Stats().Acked == 100 })
	start := time.Now()
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("engine Close took %s with 3 consumers", d)
	}
	<-cancelled
	for i, c := range cs {
		select {
		case <-c.Done():
		default:
			t.Fatalf("consumer %d still running after engine Close", i)
		}
		c.Close() // harmless after the engine closed it
	}
	if _, err := eng.Consume(ctx, "s9", "g", "c", func(context.Context, engine.XEntry) error { return nil }, engine.ConsumeOptions{}); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Consume after Close err = %v, want ErrClosed", err)
	}
}

func TestConsumeInvalidArguments(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	h := func(context.Context, engine.XEntry) error { return nil }
	for name, call := range map[string]func() (*engine.Consumer, error){
		"empty stream":   func() (*engine.Consumer, error) { return eng.Consume(ctx, "", "g", "c", h, engine.ConsumeOptions{}) },
		"empty group":    func() (*engine.Consumer, error) { return eng.Consume(ctx, "s", "", "c", h, engine.ConsumeOptions{}) },
		"empty consumer": func() (*engine.Consumer, error) { return eng.Consume(ctx, "s", "g", "", h, engine.ConsumeOptions{}) },
		"nil handler":    func() (*engine.Consumer, error) { return eng.Consume(ctx, "s", "g", "c", nil, engine.ConsumeOptions{}) },
		"negative count": func() (*engine.Consumer, error) {
			return eng.Consume(ctx, "s", "g", "c", h, engine.ConsumeOptions{Count: -1})
		},
		"negative block": func() (*engine.Consumer, error) {
			return eng.Consume(ctx, "s", "g", "c", h, engine.ConsumeOptions{Block: -time.Second})
		},
		// A negative ClaimIdle or ClaimInterval is ConsumeZero (consume_zero_test.go).
	} {
		if c, err := call(); !errors.Is(err, engine.ErrInvalidArgument) || c != nil {
			t.Fatalf("%s: %v, %v; want ErrInvalidArgument", name, c, err)
		}
	}
	if n := dsAwait(t, ctx, "EXISTS", eng.Exists(ctx, "s")); n != 0 {
		t.Fatal("an invalid Consume created the stream")
	}
	// A key of another type: the group cannot be created.
	dsAwait(t, ctx, "SADD", eng.SAdd(ctx, "set", "x"))
	if _, err := eng.Consume(ctx, "set", "g", "c", h, engine.ConsumeOptions{}); !errors.Is(err, &engine.ServerError{Prefix: "WRONGTYPE"}) {
		t.Fatalf("Consume on a set err = %v, want WRONGTYPE", err)
	}
}

// One stream consumed through a cluster: the consumer reads from the
// primary serving the stream's slot.
func TestConsumeCluster(t *testing.T) {
	cl := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, cl)
	ctx := ctxT(t)
	const stream = "orders:{eu}"
	log := newCSLog()
	c, err := eng.Consume(ctx, stream, "g", "c1", func(_ context.Context, x engine.XEntry) error {
		log.add(x)
		return nil
	}, engine.ConsumeOptions{StartID: "0", Block: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ids := csProduce(t, ctx, eng, stream, 0, 2000)
	csWait(t, 10*time.Second, "2000 entries acknowledged", func() bool { return c.Stats().Acked == 2000 })
	for _, id := range ids {
		if log.id(id) != 1 {
			t.Fatalf("entry %s handled %d times", id, log.id(id))
		}
	}
	// The stream lives on the slot's primary.
	slot, err := cl.KeySlot(stream)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := cl.NodeForSlot(slot)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := owner.Do("XLEN", stream); err != nil || n != int64(2000) {
		t.Fatalf("XLEN on the slot owner = %v, %v; want 2000", n, err)
	}
	if n := csPending(t, ctx, eng, stream, "g"); n != 0 {
		t.Fatalf("pending %d", n)
	}
}

// csProducer XADDs seqs [0, n) to a stream through eng, in batches of
// futures, while the server restarts: an XADD that fails (outcome unknown
// or not sent) is sent again with the same seq until one is acknowledged,
// so a seq may end up in the stream more than once.
type csProducer struct {
	mu      sync.Mutex
	acked   map[string]int // acknowledged XADD id -> seq
	ackedN  int            // seqs with an acknowledged XADD
	retried int            // XADDs sent again
	errs    map[string]int // failure kinds seen
}

func (p *csProducer) run(ctx context.Context, eng *engine.Engine, stream string, n, batch int) error {
	for lo := 0; lo < n; lo += batch {
		todo := make([]int, 0, batch)
		for s := lo; s < min(lo+batch, n); s++ {
			todo = append(todo, s)
		}
		for len(todo) > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			fs := make([]*futures.Future[string], len(todo))
			for i, s := range todo {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				fs[i] = eng.XAdd(cctx, stream, "seq", strconv.Itoa(s))
				fs[i].OnComplete(func(string, error) { cancel() })
			}
			var again []int
			for i, f := range fs {
				id, err := f.Await(ctx)
				p.mu.Lock()
				if err == nil {
					p.acked[id] = todo[i]
					p.ackedN++
				} else {
					again = append(again, todo[i])
					p.retried++
					kind := "other"
					switch {
					case errors.Is(err, engine.ErrOutcomeUnknown):
						kind = "outcome unknown"
					case errors.Is(err, engine.ErrCircuitOpen):
						kind = "circuit open"
					case errors.Is(err, context.DeadlineExceeded):
						kind = "deadline"
					}
					p.errs[kind]++
				}
				p.mu.Unlock()
			}
			todo = again
			if len(todo) > 0 {
				time.Sleep(20 * time.Millisecond) // pacing while the server is down
			}
		}
	}
	return nil
}

func (p *csProducer) progress() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ackedN
}

// Issue 5, test 2: 100,000 entries XADDed by a producer while the server
// (AOF, appendfsync always) restarts 10 times and the handler fails the
// first attempt of 1% of the entries. Every entry whose XADD was
// acknowledged is handled at least once, every seq is handled, and the
// group's pending list ends empty; redeliveries are counted and bounded.
func TestConsumeServerRestarts(t *testing.T) {
	const (
		total    = 100_000
		restarts = 10
		count    = 500
	)
	srv := valkeytest.Start(t, valkeytest.Options{AppendOnly: true})
	eng, err := open(context.Background(), t, faultConfig(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	start := time.Now()

	var (
		mu       sync.Mutex
		handled  = map[string]int{} // id -> successful handler calls
		attempts = map[string]int{} // seq -> handler calls
		calls    int
	)
	c, err := eng.Consume(ctx, "jobs", "workers", "w1", func(_ context.Context, x engine.XEntry) error {
		seq := x.Fields["seq"]
		n, err := strconv.Atoi(seq)
		if err != nil {
			return fmt.Errorf("entry %s without a seq: %v", x.ID, x.Fields)
		}
		mu.Lock()
		defer mu.Unlock()
		calls++
		attempts[seq]++
		if n%100 == 42 && attempts[seq] == 1 {
			return errors.New("deterministic failure: first attempt of seq%100 == 42")
		}
		handled[x.ID]++
		return nil
	}, engine.ConsumeOptions{StartID: "0", Count: count, Block: 100 * time.Millisecond, ClaimIdle: 300 * time.Millisecond, ClaimInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	p := &csProducer{acked: map[string]int{}, errs: map[string]int{}}
	perr := make(chan error, 1)
	go func() { perr <- p.run(ctx, eng, "jobs", total, 2000) }()

	// Restart i once the producer has had i/11 of the entries acknowledged.
	var downtime time.Duration
	for i := 1; i <= restarts; i++ {
		for p.progress() < i*total/(restarts+1) {
			select {
			case err := <-perr:
				t.Fatalf("producer ended early: %v", err)
			case <-time.After(5 * time.Millisecond): // polling progress
			}
		}
		t0 := time.Now()
		if err := srv.Restart(); err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		downtime += time.Since(t0)
	}
	if err := <-perr; err != nil {
		t.Fatalf("producer: %v (progress %d of %d)", err, p.progress(), total)
	}
	produced := time.Since(start)

	// Every acknowledged XADD is handled, and nothing stays pending.
	p.mu.Lock()
	acked := p.acked
	p.mu.Unlock()
	csWait(t, 30*time.Second, "every acknowledged entry handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for id := range acked {
			if handled[id] == 0 {
				return false
			}
		}
		return true
	})
	csWait(t, 10*time.Second, "pending list empty", func() bool {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		defer pcancel()
		s, err := eng.XPending(pctx, "jobs", "workers").Await(pctx)
		return err == nil && s.Count == 0
	})
	elapsed := time.Since(start)
	st := c.Stats()
	mu.Lock()
	defer mu.Unlock()
	seqs := make([]bool, total)
	for _, s := range acked {
		seqs[s] = true
	}
	for s, ok := range seqs {
		if !ok {
			t.Fatalf("seq %d never acknowledged by the producer", s)
		}
	}
	lost := 0
	for id := range acked {
		if handled[id] == 0 {
			lost++
		}
	}
	succeeded := 0
	for _, n := range handled {
		succeeded += n
	}
	redelivered := succeeded - len(handled) // an entry handled more than once
	extra := len(handled) - len(acked)      // entries whose XADD failed but had run
	failures := calls - succeeded           // handler failures
	xlen := dsAwait(t, ctx, "XLEN", eng.XLen(ctx, "jobs"))
	t.Logf("%d entries (%d acknowledged XADDs, %d in the stream, %d XADDs sent again: %v) produced in %s with %d restarts (%s down); consumed in %s",
		total, len(acked), xlen, p.retried, p.errs, produced.Round(time.Millisecond), restarts, downtime.Round(time.Millisecond), elapsed.Round(time.Millisecond))
	t.Logf("handler: %d calls, %d failures, %d distinct entries handled, %d lost, %d redeliveries, %d entries from XADDs that failed but ran; consumer stats %+v",
		calls, failures, len(handled), lost, redelivered, extra, st)
	if lost != 0 {
		t.Fatalf("%d acknowledged entries never handled", lost)
	}
	if int64(len(handled)) != xlen {
		t.Fatalf("%d distinct entries handled, the stream holds %d", len(handled), xlen)
	}
	if failures < total/100 {
		t.Fatalf("%d handler failures, want at least %d (1%%)", failures, total/100)
	}
	if st.Reconnects < restarts {
		t.Fatalf("consumer reconnected %d times over %d restarts", st.Reconnects, restarts)
	}
	// Redeliveries come from acknowledgements lost with a connection: at
	// most a read's worth (count) per restart, twice over for margin.
	if redelivered > 2*restarts*count {
		t.Fatalf("%d redeliveries, bound %d", redelivered, 2*restarts*count)
	}
}

// The consumer's blocking reads run on its own connection: commands
// through the engine are served at once while it waits, and a Block
// longer than the engine's read timeout does not break its connection.
func TestConsumeBlockingReadOwnConnection(t *testing.T) {
	eng, _ := newEngine(t, func(c config.Config) config.Config {
		return c.WithReadTimeout(300 * time.Millisecond).WithWriteTimeout(300 * time.Millisecond)
	})
	ctx := ctxT(t)
	got := make(chan engine.XEntry, 1)
	c, err := eng.Consume(ctx, "s", "g", "c1", func(_ context.Context, x engine.XEntry) error {
		got <- x
		return nil
	}, engine.ConsumeOptions{Block: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	csWait(t, 5*time.Second, "consumer blocked in XREADGROUP", func() bool {
		return dsCalls(t, ctx, eng, "xreadgroup") >= 2 // its own pending entries, then the blocking read
	})
	for range 20 {
		start := time.Now()
		dsAwait(t, ctx, "PING", eng.Do(ctx, "PING"))
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Fatalf("PING took %s while the consumer blocks", d)
		}
	}
	time.Sleep(700 * time.Millisecond) // longer than the read timeout, within one Block
	id := dsAwait(t, ctx, "XADD", eng.XAdd(ctx, "s", "k", "v"))
	select {
	case x := <-got:
		if x.ID != id || x.Fields["k"] != "v" {
			t.Fatalf("handled %+v, want %s k=v", x, id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("entry not handled within 5s")
	}
	if st := c.Stats(); st.Reconnects != 0 {
		t.Fatalf("consumer reconnected %d times (last error %v): a long Block broke its connection", st.Reconnects, st.LastError)
	}
}

// A Block as long as time.Duration allows (a Go idiom for "wait until an
// entry comes") reads as any Block does: the read's client-side bound,
// Block plus the connection's silence bound, overflowed into the past,
// so every read failed at once with "no reply to XREADGROUP within BLOCK
// ... (the server or the network went silent)", the consumer reconnected
// about three times a second, and entries reached the handler only
// through the pending list after a reconnect.
func TestConsumeLongestBlock(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	c, handled := countingConsumer(t, eng, ctx, "s", engine.ConsumeOptions{StartID: "0", Block: time.Duration(math.MaxInt64)})
	csWait(t, 10*time.Second, "the entry handled", func() bool { return handled.Load() == 1 })
	if st := c.Stats(); st.LastError != nil || st.Reconnects != 0 {
		t.Errorf("stats %+v; want no error and no reconnect", st)
	}
}

// countingConsumer starts a consumer (group g, consumer c1) of stream
// whose handler counts the entries, closed at the test's end, and adds
// one entry to stream.
func countingConsumer(t *testing.T, eng *engine.Engine, ctx context.Context, stream string, opts engine.ConsumeOptions) (*engine.Consumer, *atomic.Int64) {
	t.Helper()
	handled := new(atomic.Int64)
	c, err := eng.Consume(ctx, stream, "g", "c1", func(context.Context, engine.XEntry) error {
		handled.Add(1)
		return nil
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := eng.XAdd(ctx, stream, "n", "1").Await(ctx); err != nil {
		t.Fatal(err)
	}
	return c, handled
}
