// Command subscriber runs a supervised pub/sub subscription and a stream
// consumer while the server restarts under them, and counts what got
// through.
//
//	go run ./examples/subscriber
//	go run ./examples/subscriber -duration 20s -restarts 8
//
// It subscribes to a channel (eng.Subscribe) and prints the subscription's
// connection events (Subscribed, Disconnected, Resubscribed with the gap),
// consumes a stream as one consumer of a group (eng.Consume), and for
// -duration publishes a numbered message and adds a numbered stream entry
// every -every. Channel and stream names are unique to the run; the stream
// is deleted at the end.
//
// It connects to $VALKEY_URL or $VALKEY_ADDR (and the other VALKEY_*
// variables, see the README). When none names a server
// (config.EnvNamesServer) it starts a throwaway
// server (append-only file, appendfsync always, so acknowledged stream
// entries survive restarts) and restarts it -restarts times during the
// run. A server it did not start is never restarted.
//
// The producer adds entries with explicit IDs, so an XADD whose outcome is
// unknown (the connection broke before the reply) can be sent again
// safely: if the first one ran, the server refuses the second ("ID equal
// or smaller than the top item") and the entry counts as acknowledged.
//
// At the end it prints a summary and exits non-zero if any acknowledged
// stream entry was not handled.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return // -h: the usage was printed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "subscriber:", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	duration time.Duration // how long the publisher and producer run
	restarts int           // server restarts during the run (own server only)
	every    time.Duration // interval between messages, and between entries
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("subscriber", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.DurationVar(&o.duration, "duration", 6*time.Second, "how long to publish and produce")
	fs.IntVar(&o.restarts, "restarts", 3, "server restarts during the run (only of the throwaway server this example starts)")
	fs.DurationVar(&o.every, "every", 2*time.Millisecond, "interval between published messages, and between stream entries")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.duration <= 0 || o.restarts < 0 || o.every <= 0 {
		return o, fmt.Errorf("-duration and -every must be positive and -restarts at least 0 (got %s, %s, %d)", o.duration, o.every, o.restarts)
	}
	return o, nil
}

// printer writes one line per event, prefixed with the time since the
// start. Safe for concurrent use.
type printer struct {
	mu    sync.Mutex
	out   io.Writer
	start time.Time
}

func (p *printer) logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "%7.3fs  %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

func (p *printer) plain(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format+"\n", args...)
}

// run is the whole program: args are the command-line flags, out gets
// the report. It returns an error if setting up fails, ctx ends early, or
// an acknowledged stream entry was not handled.
func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args, out)
	if err != nil {
		return err
	}
	cfg, err := config.LoadFromEnv()
	if err != nil {
		return err
	}
	p := &printer{out: out, start: time.Now()}
	var srv *valkeytest.Server
	if !config.EnvNamesServer() {
		srv, err = valkeytest.StartServer(valkeytest.Options{Name: "subscriber", AppendOnly: true})
		if err != nil {
			return fmt.Errorf("start a throwaway server: %w", err)
		}
		defer srv.Stop()
		cfg = cfg.WithAddrs(srv.Addr())
		p.logf("server: started a throwaway server on %s (append-only)", srv.Addr())
	} else if o.restarts > 0 {
		p.logf("server: using the configured server; it is not restarted (-restarts ignored)")
		o.restarts = 0
	}

	nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	eng, err := engine.New(nctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer eng.Close()

	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	channel := "vactor-example:events:" + suffix
	stream := "vactor-example:jobs:" + suffix

	sub := newSubscriber(p)
	if err := sub.start(ctx, eng, channel); err != nil {
		return err
	}
	defer sub.close()

	cons := newConsumer(p)
	if err := cons.start(ctx, eng, stream); err != nil {
		return err
	}
	defer cons.close()

	// The publisher and the producer run for o.duration; the server
	// restarts evenly spread over it.
	runCtx, stopRun := context.WithTimeout(ctx, o.duration)
	defer stopRun()
	pub := &publisher{}
	prod := &producer{p: p}
	var wg sync.WaitGroup
	wg.Go(func() { pub.run(runCtx, eng, channel, o.every) })
	wg.Go(func() { prod.run(runCtx, ctx, eng, stream, o.every) })
	restartErr := restartServer(runCtx, p, srv, o)
	<-runCtx.Done()
	wg.Wait()
	if restartErr != nil {
		return restartErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// Let the stragglers arrive: the subscription back after the last
	// restart and every message published while connected received, every
	// acknowledged entry handled. Bounded: what is missing then is reported.
	published := pub.connectedSet()
	acked := prod.ackedSet()
	awaitCond(ctx, 10*time.Second, func() bool { return sub.settled(published) })
	awaitCond(ctx, 15*time.Second, func() bool { return cons.handledAll(acked) })
	cons.close()
	sub.close()

	xctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	xlen, xerr := eng.XLen(xctx, stream).Await(xctx)
	_, _ = eng.Del(xctx, stream).Await(xctx)
	cancel()

	// The summary.
	lost := cons.lost(acked)
	distinct, dups := cons.counts()
	st := cons.c.Stats()
	received, missed := sub.received(published)
	p.plain("")
	p.plain("summary")
	p.plain("  pub/sub: %d published while connected, %d received, %d missed; %d not delivered (server down or no subscriber yet)",
		len(published), received, missed, pub.notDelivered)
	p.plain("  pub/sub: %d resubscriptions, gap max %s", sub.resubscribed, sub.maxGap.Round(time.Millisecond))
	p.plain("  stream: %d produced (acknowledged), %d handled, %d lost, %d duplicates, %d consumer reconnects",
		len(acked), distinct, lost, dups, st.Reconnects)
	line := fmt.Sprintf("  stream: %d XADDs sent again after a failure (%d of them had run)", prod.retried, prod.confirmed)
	if xerr == nil {
		line += fmt.Sprintf("; %d entries in the stream", xlen)
	}
	if prod.unresolved > 0 {
		line += fmt.Sprintf("; %d XADDs still unresolved at the end", prod.unresolved)
	}
	p.plain("%s", line)
	if lost > 0 {
		return fmt.Errorf("%d acknowledged stream entries were not handled", lost)
	}
	return nil
}

// restartServer restarts srv o.restarts times, evenly spread over the
// run; nothing when srv is nil (a server this example did not start).
func restartServer(runCtx context.Context, p *printer, srv *valkeytest.Server, o options) error {
	if srv == nil {
		return nil
	}
	start := time.Now()
	for i := 1; i <= o.restarts; i++ {
		at := start.Add(o.duration * time.Duration(i) / time.Duration(o.restarts+1))
		t := time.NewTimer(time.Until(at))
		select {
		case <-runCtx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		p.logf("server: restarting (%d of %d)", i, o.restarts)
		t0 := time.Now()
		if err := srv.Restart(); err != nil {
			return fmt.Errorf("restart %d: %w", i, err)
		}
		p.logf("server: answering again after %s", time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// awaitCond polls cond until it holds, ctx ends or limit passes.
func awaitCond(ctx context.Context, limit time.Duration, cond func() bool) {
	deadline := time.Now().Add(limit)
	for !cond() && ctx.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a condition
	}
}

// subscriber reads the subscription's channel: it prints the connection
// events and records the numbered messages.
type subscriber struct {
	p    *printer
	sub  *engine.Subscription
	done chan struct{}
	once sync.Once

	mu           sync.Mutex
	got          map[int]bool
	disconnected int
	resubscribed int
	maxGap       time.Duration
}

func newSubscriber(p *printer) *subscriber {
	return &subscriber{p: p, got: map[int]bool{}, done: make(chan struct{})}
}

func (s *subscriber) start(ctx context.Context, eng *engine.Engine, channel string) error {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sub, err := eng.Subscribe(sctx, channel)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	s.sub = sub
	go s.read()
	return nil
}

func (s *subscriber) read() {
	defer close(s.done)
	for ev := range s.sub.Channel() {
		switch ev.Kind {
		case engine.SubMessage:
			if n, err := strconv.Atoi(ev.Message.Payload); err == nil {
				s.mu.Lock()
				s.got[n] = true
				s.mu.Unlock()
			}
		case engine.Subscribed:
			s.p.logf("sub:    Subscribed on %s", ev.Addr)
		case engine.Disconnected:
			s.mu.Lock()
			s.disconnected++
			s.mu.Unlock()
			s.p.logf("sub:    Disconnected from %s: %v", ev.Addr, ev.Err)
		case engine.Refused:
			s.p.logf("sub:    resubscribe refused by %s (still trying): %v", ev.Addr, ev.Err)
		case engine.Resubscribed:
			s.mu.Lock()
			s.resubscribed++
			s.maxGap = max(s.maxGap, ev.Gap)
			s.mu.Unlock()
			s.p.logf("sub:    Resubscribed on %s, gap %s (messages published in it are missed)", ev.Addr, ev.Gap.Round(time.Millisecond))
		}
	}
}

// settled reports whether the subscription is connected and every
// message in published arrived.
func (s *subscriber) settled(published []int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resubscribed < s.disconnected {
		return false
	}
	for _, n := range published {
		if !s.got[n] {
			return false
		}
	}
	return true
}

// received returns how many messages arrived, and how many of published
// did not.
func (s *subscriber) received(published []int) (received, missed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range published {
		if !s.got[n] {
			missed++
		}
	}
	return len(s.got), missed
}

// close ends the subscription and waits for the reader.
func (s *subscriber) close() {
	s.once.Do(func() {
		_ = s.sub.Close()
		<-s.done
	})
}

// consumer runs eng.Consume with a handler that records each entry, and
// a monitor that prints when the consumer loses its connection and when
// it reads again.
type consumer struct {
	p       *printer
	c       *engine.Consumer
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once

	mu      sync.Mutex
	handled map[string]int // entry ID -> handler calls
}

func newConsumer(p *printer) *consumer {
	return &consumer{p: p, handled: map[string]int{}, stop: make(chan struct{}), stopped: make(chan struct{})}
}

func (c *consumer) start(ctx context.Context, eng *engine.Engine, stream string) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cons, err := eng.Consume(cctx, stream, "example", "worker-1", c.handle, engine.ConsumeOptions{
		StartID: "0",
		Block:   500 * time.Millisecond,
	})
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	c.c = cons
	c.p.logf("stream: consuming %s as worker-1 of group example", stream)
	go c.monitor()
	return nil
}

func (c *consumer) handle(_ context.Context, x engine.XEntry) error {
	c.mu.Lock()
	c.handled[x.ID]++
	c.mu.Unlock()
	return nil
}

// monitor polls the consumer's counters: the consumer reports no events,
// only Stats.
func (c *consumer) monitor() {
	defer close(c.stopped)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var reconnects, handledAtLoss uint64
	down := false
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		st := c.c.Stats()
		if st.Reconnects > reconnects {
			if !down {
				c.p.logf("stream: consumer lost its connection (%v), reconnecting", st.LastError)
				down = true
			}
			reconnects = st.Reconnects
			handledAtLoss = st.Handled
		}
		if down && st.Handled > handledAtLoss {
			c.p.logf("stream: consumer reading again (reconnects so far: %d)", st.Reconnects)
			down = false
		}
	}
}

// handledAll reports whether every entry in acked was handled.
func (c *consumer) handledAll(acked []string) bool { return c.lost(acked) == 0 }

// lost counts the entries of acked never handled.
func (c *consumer) lost(acked []string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, id := range acked {
		if c.handled[id] == 0 {
			n++
		}
	}
	return n
}

// counts returns the distinct entries handled and the extra handler
// calls (an entry handled again because its XACK was lost with a
// connection).
func (c *consumer) counts() (distinct, duplicates int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.handled {
		duplicates += n - 1
	}
	return len(c.handled), duplicates
}

// close stops the monitor and the consumer.
func (c *consumer) close() {
	c.once.Do(func() {
		close(c.stop)
		<-c.stopped
		_ = c.c.Close()
	})
}

// publisher publishes a numbered message every interval and keeps those
// that PUBLISH says reached a subscriber: published while connected.
// Only its goroutine touches it until run returns.
type publisher struct {
	connected    []int
	notDelivered int // PUBLISH failed or reached nobody
}

func (pb *publisher) run(ctx context.Context, eng *engine.Engine, channel string, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		got, err := eng.Publish(pctx, channel, strconv.Itoa(n)).Await(pctx)
		cancel()
		if err == nil && got >= 1 {
			pb.connected = append(pb.connected, n)
		} else {
			pb.notDelivered++
		}
	}
}

func (pb *publisher) connectedSet() []int { return pb.connected }

// producer adds a numbered entry every interval, with explicit IDs
// "<start ms>-<n>", and sends an XADD that failed again until the
// server either acknowledges it or refuses it because it had already run.
// Only its goroutine touches it until run returns.
type producer struct {
	p          *printer
	acked      []string // IDs of the entries in the stream, in order
	retried    int      // XADDs sent again
	confirmed  int      // of those, refused because the first one had run
	unresolved int      // given up at the end without knowing
}

// run produces until runCtx ends; the entry in flight then is resolved
// within ctx and a 10 s limit.
func (pr *producer) run(runCtx, ctx context.Context, eng *engine.Engine, stream string, every time.Duration) {
	base := time.Now().UnixMilli()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-runCtx.Done():
			return
		case <-tick.C:
		}
		id := fmt.Sprintf("%d-%d", base, n)
		if pr.add(runCtx, ctx, eng, stream, id, n) {
			pr.acked = append(pr.acked, id)
		}
	}
}

// add sends one XADD until its outcome is known: true when the entry is
// in the stream.
func (pr *producer) add(runCtx, ctx context.Context, eng *engine.Engine, stream, id string, n int) bool {
	limit := time.Time{}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			pr.retried++
			time.Sleep(20 * time.Millisecond) // pacing while the server is down
		}
		actx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := eng.XAddWith(actx, stream, engine.XAddOptions{ID: id}, "seq", strconv.Itoa(n)).Await(actx)
		cancel()
		var se *engine.ServerError
		switch {
		case err == nil:
			return true
		case attempt > 0 && errors.As(err, &se) && strings.Contains(se.Message, "equal or smaller"):
			// The earlier attempt ran: IDs only grow, and every smaller
			// one was acknowledged before this one was sent.
			pr.confirmed++
			return true
		case errors.As(err, &se) && se.Prefix != "LOADING":
			pr.p.logf("stream: XADD %s refused: %v", id, err)
			return false
		}
		if ctx.Err() != nil {
			pr.unresolved++
			return false
		}
		if runCtx.Err() != nil {
			if limit.IsZero() {
				limit = time.Now().Add(10 * time.Second)
			} else if time.Now().After(limit) {
				pr.unresolved++
				return false
			}
		}
	}
}

func (pr *producer) ackedSet() []string { return pr.acked }
