package actors

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// ErrTooManyRedirects fails a command that was redirected (MOVED, ASK,
// TRYAGAIN, CLUSTERDOWN) more than MaxRedirects times. Retryable by the
// caller once the cluster settles.
var ErrTooManyRedirects = errors.New("actors: too many cluster redirects")

// Hooked is a Command a slot actor can follow: it reports its completion
// to the collector set with SetHook, and hands back redirect replies
// instead of completing with them.
type Hooked interface {
	Command
	// SetHook makes the next completion go through c (nil: none).
	SetHook(c *Collector)
}

// Collector follows the commands a slot actor has forwarded: it counts
// those still in flight, keeps the ones the cluster redirected in the order
// their replies came back, and tells the slot actor (notify) when, after a
// redirect, nothing is in flight any more. Safe for concurrent use.
type Collector struct {
	mu         sync.Mutex
	redirects  []Redirect
	closed     bool
	closeErr   error
	left       atomic.Int64 // forwarded, not finished
	failed     atomic.Bool  // some command failed without a reply (node down?)
	recovering atomic.Bool  // a redirect came back: new batches wait
	notified   atomic.Bool
	notify     func()
}

// Redirect is a command the cluster sent elsewhere.
type Redirect struct {
	Cmd  Hooked
	Err  *valkey.ValkeyError
	Addr string // MOVED or ASK target; "" for TRYAGAIN/CLUSTERDOWN
	Ask  bool
}

// Intercept keeps cmd when res is a redirect and reports whether it did;
// the caller then must not complete cmd.
func (c *Collector) Intercept(cmd Hooked, res valkey.ValkeyResult) bool {
	ve, ok := valkey.IsValkeyErr(res.Error())
	if !ok {
		return false
	}
	r := Redirect{Cmd: cmd, Err: ve}
	switch {
	case isMoved(ve, &r.Addr):
	case isAsk(ve, &r.Addr):
		r.Ask = true
	case ve.IsTryAgain(), ve.IsClusterDown():
	default:
		return false
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cmd.Fail(c.closeErr)
	} else {
		c.redirects = append(c.redirects, r)
		c.recovering.Store(true)
		c.mu.Unlock()
	}
	c.Done()
	return true
}

// Failed counts one command as failed without a reply (a transport error,
// an open breaker): the slot's node may be gone.
func (c *Collector) Failed() {
	c.failed.Store(true)
	c.Done()
}

// Done counts one forwarded command as finished.
func (c *Collector) Done() {
	if c.left.Add(-1) == 0 && c.recovering.Load() && c.notified.CompareAndSwap(false, true) {
		c.notify()
	}
}

// take returns the redirected commands, in order, and forgets them.
func (c *Collector) take() []Redirect {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.redirects
	c.redirects = nil
	return r
}

// close fails what is kept and makes later redirects fail at once.
func (c *Collector) close(err error) {
	c.mu.Lock()
	c.closed, c.closeErr = true, err
	r := c.redirects
	c.redirects = nil
	c.mu.Unlock()
	failRedirects(r, err)
}

func isMoved(ve *valkey.ValkeyError, addr *string) bool {
	a, ok := ve.IsMoved()
	*addr = a
	return ok
}

func isAsk(ve *valkey.ValkeyError, addr *string) bool {
	a, ok := ve.IsAsk()
	*addr = a
	return ok
}

// Router is what a slot actor needs from the engine: the connection actor
// for a node address (dialling the node on first use), the current owner
// of a slot, and the command that prefixes an ASK redirect.
type Router interface {
	// Owner returns the address of the node serving slot.
	Owner(slot uint16) (string, error)
	// Conn returns the connection actor that serves slot on addr.
	Conn(addr string, slot uint16) (*ConnState, error)
	// ReadConn returns the connection actor read-only commands for slot
	// go to (a replica), or nil for the primary.
	ReadConn(slot uint16) (*ConnState, error)
	// Asking returns a command sending ASKING, completed silently.
	Asking() Command
	// Moved is told of a MOVED redirect (to refresh the slot map).
	Moved(slot uint16, addr string)
	// Stale is told that the slot's node failed: the map may be stale.
	Stale(slot uint16)
	// Epoch changes whenever the slot map is replaced.
	Epoch() uint64
	// Refresh reloads the slot map now (or waits for the reload under
	// way) and returns the slot's owner.
	Refresh(slot uint16) (string, error)
}

// SlotState is one slot actor's mailbox and settings; it outlives the
// actor instance.
type SlotState struct {
	Slot         uint16
	Mailbox      *mailbox.Bounded
	Router       Router
	MaxRedirects int
	Backoff      policies.Backoff
	CloseErr     error
	// OnStopped, when set, is called once the actor has stopped.
	OnStopped func()

	redirects atomic.Uint64
	coll      Collector
	once      sync.Once
}

// drained is the message a slot actor gets when, after a redirect, none of
// its commands is in flight; resend carries commands to send again after a
// TRYAGAIN backoff.
type (
	drained struct{}
	resend  struct{}
)

// Redirects returns how many commands the cluster redirected (MOVED, ASK,
// TRYAGAIN, CLUSTERDOWN) and this slot actor sent again or failed.
func (s *SlotState) Redirects() uint64 { return s.redirects.Load() }

// Props returns the props of the slot actor over s.
func (s *SlotState) Props() *actor.Props {
	s.once.Do(func() {
		s.coll.notify = func() { s.Mailbox.PostUserMessage(drained{}) }
	})
	return actor.PropsFromProducer(
		func() actor.Actor { return &Slot{state: s} },
		actor.WithMailbox(func() actor.Mailbox { return s.Mailbox }),
	)
}

// Slot is the slot actor. It forwards each drained batch to the connection
// actor of the node that owns its slot and goes on with the next batch
// without waiting: the connection actor keeps them in order. When the
// cluster redirects a command (MOVED, ASK, TRYAGAIN, CLUSTERDOWN), the slot
// actor parks new batches until none of its commands is in flight, sends
// the redirected ones again in the order their replies came back, then the
// parked batches. Commands for one slot therefore keep their order across
// slot migrations and failovers.
type Slot struct {
	state  *SlotState
	owner  string // cached owner; updated by MOVED
	epoch  uint64 // slot map epoch the owner was read from
	parked []Hooked
	// waiting holds the commands (and ASK redirects) sent again after a
	// TRYAGAIN backoff, until the resend message comes.
	waiting     []Hooked
	waitingAsks []Redirect
	cmds        []Hooked          // reused per batch
	msgs        []mailbox.Message // reused per batch
}

// Receive implements actor.Actor.
func (a *Slot) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *mailbox.Batch:
		a.run(m.Messages)
	case drained:
		a.recover()
	case resend:
		cmds, asks := a.waiting, a.waitingAsks
		a.waiting, a.waitingAsks = nil, nil
		a.resume(cmds, asks)
	case *actor.Stopping:
		st := a.state
		st.Mailbox.Close(st.CloseErr)
		st.coll.close(st.CloseErr)
		failAll(a.parked, st.CloseErr)
		failAll(a.waiting, st.CloseErr)
		failRedirects(a.waitingAsks, st.CloseErr)
		a.parked, a.waiting, a.waitingAsks = nil, nil, nil
	case *actor.Stopped:
		if a.state.OnStopped != nil {
			a.state.OnStopped()
		}
	}
}

func (a *Slot) run(batch []mailbox.Message) {
	st := a.state
	cmds := a.cmds[:0]
	for _, m := range batch {
		h, ok := m.(Hooked)
		if !ok {
			m.Fail(ErrNotCommand)
			continue
		}
		cmds = append(cmds, h)
	}
	if st.coll.recovering.Load() || len(a.parked) > 0 {
		a.parked = append(a.parked, cmds...) // after the redirected ones
	} else {
		a.forward(cmds, nil)
	}
	clear(cmds)
	a.cmds = cmds[:0]
}

// recover runs when nothing is in flight after a redirect: it sends the
// redirected commands again, then the parked ones.
func (a *Slot) recover() {
	st := a.state
	st.coll.notified.Store(false)
	if st.coll.left.Load() != 0 || !st.coll.recovering.Load() {
		return // more in flight: wait for the next notice
	}
	a.send(st.coll.take())
}

// send sends redirected commands again, in order, then the parked ones.
func (a *Slot) send(redirects []Redirect) {
	st := a.state
	st.redirects.Add(uint64(len(redirects)))
	var pending []Hooked
	var asks []Redirect
	wait := false
	for _, r := range redirects {
		r.Cmd.Retrying()
		if r.Cmd.Attempts() > st.MaxRedirects {
			r.Cmd.Fail(errors.Join(ErrTooManyRedirects, r.Err))
			continue
		}
		switch {
		case r.Ask:
			asks = append(asks, r)
		case r.Addr != "":
			if r.Addr != a.owner {
				a.owner = r.Addr
				st.Router.Moved(st.Slot, r.Addr)
			}
			pending = append(pending, r.Cmd)
		default: // TRYAGAIN, CLUSTERDOWN
			wait = true
			pending = append(pending, r.Cmd)
		}
	}
	if wait {
		// The slot is in flux: try again after a backoff, new batches
		// still parked meanwhile.
		a.owner = ""
		a.waiting, a.waitingAsks = pending, asks
		d := st.Backoff.Delay(max(pending[0].Attempts()-1, 0))
		time.AfterFunc(d, func() { st.Mailbox.PostUserMessage(resend{}) })
		return
	}
	a.resume(pending, asks)
}

// resume ends a recovery: the commands to send again go first, then the
// parked ones.
func (a *Slot) resume(cmds []Hooked, asks []Redirect) {
	a.state.coll.recovering.Store(false)
	parked := a.parked
	a.parked = nil
	a.forward(append(cmds, parked...), asks)
}

// forward posts cmds to the owner's connection actor (reads to a replica
// when ReadFrom says so), and each ASK redirect, preceded by ASKING, to its
// target.
func (a *Slot) forward(cmds []Hooked, asks []Redirect) {
	st := a.state
	if e := st.Router.Epoch(); e != a.epoch {
		a.owner, a.epoch = "", e // the map changed: read the owner again
	}
	if st.coll.failed.Swap(false) {
		// A node failed: read the owner again and have the map refreshed
		// (a failover may be under way).
		a.owner = ""
		st.Router.Stale(st.Slot)
	}
	for _, r := range asks {
		conn, err := st.Router.Conn(r.Addr, st.Slot)
		if err != nil {
			r.Cmd.Fail(err)
			continue
		}
		st.coll.left.Add(1)
		r.Cmd.SetHook(&st.coll)
		conn.Mailbox.PostAll(st.Router.Asking(), r.Cmd)
	}
	if len(cmds) == 0 {
		return
	}
	if a.owner == "" {
		owner, err := st.Router.Owner(st.Slot)
		if err != nil {
			failAll(cmds, err)
			return
		}
		a.owner = owner
	}
	conn, err := st.Router.Conn(a.owner, st.Slot)
	if err != nil {
		a.owner = ""
		failAll(cmds, err)
		return
	}
	if conn.Node != nil && conn.Node.Open() {
		// The node is down. A failover may have moved the slot: reload the
		// map and follow it; else fail fast rather than queue.
		if owner, err := st.Router.Refresh(st.Slot); err == nil && owner != a.owner {
			a.owner = owner
			if c2, err := st.Router.Conn(owner, st.Slot); err == nil {
				conn = c2
			}
		}
		if conn.Node != nil && conn.Node.Open() {
			a.owner = ""
			failAll(cmds, policies.ErrCircuitOpen)
			return
		}
	}
	st.coll.left.Add(int64(len(cmds)))
	for _, cmd := range cmds {
		cmd.SetHook(&st.coll)
	}
	if rc, _ := st.Router.ReadConn(st.Slot); rc != nil && !rc.Node.Open() {
		// Reads to a replica, the rest to the primary, each in order.
		var reads, writes []mailbox.Message
		for _, cmd := range cmds {
			if c := cmd.Cmd(); c.IsReadOnly() {
				reads = append(reads, cmd)
			} else {
				writes = append(writes, cmd)
			}
		}
		if len(reads) > 0 {
			rc.Mailbox.PostAll(reads...)
		}
		if len(writes) > 0 {
			conn.Mailbox.PostAll(writes...)
		}
		return
	}
	a.msgs = a.msgs[:0]
	for _, c := range cmds {
		a.msgs = append(a.msgs, c)
	}
	conn.Mailbox.PostAll(a.msgs...)
	clear(a.msgs)
}

func failAll(cmds []Hooked, err error) {
	for _, c := range cmds {
		c.Fail(err)
	}
}

func failRedirects(rs []Redirect, err error) {
	for _, r := range rs {
		r.Cmd.Fail(err)
	}
}
