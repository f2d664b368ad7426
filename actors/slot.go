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

// Collector gathers the outcome of one batch a slot actor forwarded: it
// counts completions and keeps the commands the cluster redirected, in
// the order their replies came back. Safe for concurrent use.
type Collector struct {
	mu        sync.Mutex
	redirects []Redirect
	left      atomic.Int64
	failed    atomic.Bool // some command failed without a reply (node down?)
	done      chan struct{}
}

// Redirect is a command the cluster sent elsewhere.
type Redirect struct {
	Cmd  Hooked
	Err  *valkey.ValkeyError
	Addr string // MOVED or ASK target; "" for TRYAGAIN/CLUSTERDOWN
	Ask  bool
}

func (c *Collector) reset(n int) {
	c.redirects = c.redirects[:0]
	c.failed.Store(false)
	c.left.Store(int64(n))
	if c.done == nil {
		c.done = make(chan struct{}, 1) // one wake-up per batch, reused
	}
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
	c.redirects = append(c.redirects, r)
	c.mu.Unlock()
	c.Done()
	return true
}

// Failed counts one command of the batch as failed without a reply (a
// transport error, an open breaker): the slot's node may be gone.
func (c *Collector) Failed() {
	c.failed.Store(true)
	c.Done()
}

// Done counts one command of the batch as finished.
func (c *Collector) Done() {
	if c.left.Add(-1) == 0 {
		c.done <- struct{}{}
	}
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
}

// Redirects returns how many commands the cluster redirected (MOVED, ASK,
// TRYAGAIN, CLUSTERDOWN) and this slot actor sent again or failed.
func (s *SlotState) Redirects() uint64 { return s.redirects.Load() }

// Props returns the props of the slot actor over s.
func (s *SlotState) Props() *actor.Props {
	return actor.PropsFromProducer(
		func() actor.Actor { return &Slot{state: s} },
		actor.WithMailbox(func() actor.Mailbox { return s.Mailbox }),
	)
}

// Slot is the slot actor: it forwards each drained batch to the connection
// actor of the node that owns its slot, waits for the batch to finish, and
// sends again, in order, what the cluster redirected, before it takes the
// next batch. Commands for one slot therefore keep their order across slot
// migrations and failovers.
type Slot struct {
	state *SlotState
	owner string // cached owner; updated by MOVED
	epoch uint64 // slot map epoch the owner was read from
	coll  Collector
	cmds  []Hooked          // reused per batch
	msgs  []mailbox.Message // reused per batch
}

// Receive implements actor.Actor.
func (a *Slot) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *mailbox.Batch:
		a.run(m.Messages)
	case *actor.Stopping:
		a.state.Mailbox.Close(a.state.CloseErr)
	case *actor.Stopped:
		if a.state.OnStopped != nil {
			a.state.OnStopped()
		}
	}
}

func (a *Slot) run(batch []mailbox.Message) {
	st := a.state
	pending := a.cmds[:0]
	defer func() { clear(a.cmds[:cap(a.cmds)]); a.cmds = a.cmds[:0] }()
	for _, m := range batch {
		h, ok := m.(Hooked)
		if !ok {
			m.Fail(ErrNotCommand)
			continue
		}
		pending = append(pending, h)
	}
	a.cmds = pending
	var asks []Redirect
	if e := st.Router.Epoch(); e != a.epoch {
		a.owner, a.epoch = "", e // the map changed: read the owner again
	}
	for attempt := 0; len(pending) > 0 || len(asks) > 0; attempt++ {
		if a.owner == "" {
			owner, err := st.Router.Owner(st.Slot)
			if err != nil {
				failAll(pending, err)
				failRedirects(asks, err)
				return
			}
			a.owner = owner
		}
		a.coll.reset(len(pending) + len(asks))
		if !a.forward(pending, asks) {
			return
		}
		<-a.coll.done
		if a.coll.failed.Load() {
			// The node failed: look the owner up again next time, and have
			// the slot map refreshed (a failover may be under way).
			a.owner = ""
			st.Router.Stale(st.Slot)
		}
		if len(a.coll.redirects) == 0 {
			return
		}
		redirects := append([]Redirect(nil), a.coll.redirects...)
		st.redirects.Add(uint64(len(redirects)))
		if attempt >= st.MaxRedirects {
			for _, r := range redirects {
				r.Cmd.Fail(errors.Join(ErrTooManyRedirects, r.Err))
			}
			return
		}
		pending, asks = pending[:0], nil
		wait := false
		for _, r := range redirects {
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
			// The slot is in flux: give the cluster a moment. This blocks
			// only this slot's actor, whose commands must wait anyway.
			time.Sleep(st.Backoff.Delay(attempt))
			a.owner = "" // ask the slot map again
		}
	}
}

// forward posts the commands to the owner's connection actor, and each ASK
// redirect, preceded by ASKING, to its target; it reports false when it
// failed them instead.
func (a *Slot) forward(pending []Hooked, asks []Redirect) bool {
	st := a.state
	if len(pending) > 0 {
		conn, err := st.Router.Conn(a.owner, st.Slot)
		if err != nil {
			a.owner = ""
			failAll(pending, err)
			failRedirects(asks, err)
			return false
		}
		for _, cmd := range pending {
			cmd.SetHook(&a.coll)
		}
		if conn.Node != nil && conn.Node.Open() {
			// The node is down. A failover may have moved the slot: reload
			// the map and follow it; else fail fast rather than queue.
			if owner, err := st.Router.Refresh(st.Slot); err == nil && owner != a.owner {
				a.owner = owner
				if c2, err := st.Router.Conn(owner, st.Slot); err == nil {
					conn = c2
				}
			}
		}
		if conn.Node != nil && conn.Node.Open() {
			for _, cmd := range pending {
				cmd.Fail(policies.ErrCircuitOpen)
			}
		} else if rc, _ := st.Router.ReadConn(st.Slot); rc != nil && !rc.Node.Open() {
			// Reads to a replica, the rest to the primary, each in order.
			var reads, writes []mailbox.Message
			for _, cmd := range pending {
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
		} else {
			a.msgs = a.msgs[:0]
			for _, c := range pending {
				a.msgs = append(a.msgs, c)
			}
			conn.Mailbox.PostAll(a.msgs...)
			clear(a.msgs)
		}
	}
	for _, r := range asks {
		conn, err := st.Router.Conn(r.Addr, st.Slot)
		if err != nil {
			r.Cmd.Fail(err)
			a.coll.Done()
			continue
		}
		r.Cmd.SetHook(&a.coll)
		conn.Mailbox.PostAll(st.Router.Asking(), r.Cmd)
	}
	return true
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
