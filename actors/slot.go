package actors

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/internal/hookbus"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// ErrTooManyRedirects fails a command that was redirected (MOVED, ASK,
// TRYAGAIN, CLUSTERDOWN) more than MaxRedirects times. Retryable by the
// caller once the cluster settles.
var ErrTooManyRedirects = policies.NewRetryable("vactor: too many cluster redirects")

// Refusable is a command whose failure by its node's open breaker may
// move it instead (a cluster command the slot actor sends again: see
// Collector.Reroute): Refuse fails it with err as Fail does, and calls
// counted just before its future fails, not when it is moved. A
// connection actor's refusal of what it queues counts through it, so that
// a moved command is counted once, where it is refused in the end, if it
// is (ConnStats.CircuitOpen).
type Refusable interface {
	Refuse(err error, counted func())
}

// Hooked is a Command a slot actor can follow: it reports its completion
// to the collector set with SetHook, and hands back redirect replies
// instead of completing with them.
type Hooked interface {
	Command
	// SetHook makes the next completion go through c (nil: none), and
	// gives the command seq, its place in its slot's order: the slot
	// numbers the commands it posts to connection actors, under its
	// routing lock, in the order it posts them (see Collector.take). seq
	// wraps around; it is compared as a serial number.
	SetHook(c *Collector, seq uint32)
	// Seq returns the seq of the last SetHook.
	Seq() uint32
	// Renew makes Cmd valid again after the server answered it with a
	// redirect (valkey-go recycles answered commands that are not
	// pinned). The slot actor calls it before sending the command again.
	Renew()
	// Redirects returns how many times the cluster redirected the command
	// (MOVED, ASK, TRYAGAIN, CLUSTERDOWN), bounded by
	// SlotState.MaxRedirects; transport retries are counted apart
	// (Command.Attempts), each against its own budget.
	Redirects() int
	// Redirected counts one more redirect; the slot actor calls it before
	// sending the command again.
	Redirected()
}

// Collector follows the commands a slot actor has forwarded: it counts
// those still in flight, keeps the ones the cluster redirected and the ones
// their node failed unrun (Reroute), and tells the slot actor (notify)
// when, after a redirect, nothing is in flight any more; take hands them
// back in the order they were posted (their Seq), whatever the order in
// which their replies or failures came. Safe for concurrent use.
type Collector struct {
	mu         sync.Mutex
	redirects  []Redirect
	closed     bool
	closeErr   error
	left       atomic.Int64 // forwarded, not finished
	failed     atomic.Bool  // some command failed without a reply (node down?)
	recovering atomic.Bool  // a redirect came back, or a command failed: new batches wait
	notified   atomic.Bool
	notify     func()
	// passing: a TRYAGAIN or CLUSTERDOWN redirect is kept; ran: the
	// commands of the slot that ran (or may have) since (see Ran, take).
	passing bool
	ran     []ranCmd
}

// ranCmd is a command that ran while a TRYAGAIN or CLUSTERDOWN redirect
// was kept: its Seq and its arguments.
type ranCmd struct {
	seq  uint32
	args []string
}

// Argumented is a command that can say its arguments (after its name)
// once answered (the engine's cluster requests: Collector.Ran).
type Argumented interface {
	Args() []string
}

// Redirect is a command the cluster sent elsewhere, or one its node
// failed without running it (Failed; see Collector.Reroute).
type Redirect struct {
	Cmd    Hooked
	Err    *valkey.ValkeyError
	Addr   string // MOVED or ASK target; "" for TRYAGAIN/CLUSTERDOWN
	Ask    bool
	Failed error  // the node's failure, for a rerouted command; nil for a redirect
	seq    uint32 // Cmd.Seq() when it was kept: take's order
	// counted counts the refusal that rerouted Cmd, if Cmd fails with
	// Failed in the end (see Reroute); nil: nothing to count.
	counted func()
}

// Intercept keeps cmd when res is a redirect and reports whether it did;
// the caller then must not complete cmd.
func (c *Collector) Intercept(cmd Hooked, res valkey.ValkeyResult) bool {
	ve, ok := valkey.IsValkeyErr(res.Error())
	if !ok {
		return false
	}
	r := Redirect{Cmd: cmd, Err: ve, seq: cmd.Seq()}
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
		err := c.closeErr // read under mu: a second close writes it
		c.mu.Unlock()
		cmd.Fail(err)
	} else {
		if r.Addr == "" {
			c.passing = true // TRYAGAIN, CLUSTERDOWN (see Ran)
		}
		c.redirects = append(c.redirects, r)
		c.recovering.Store(true)
		c.mu.Unlock()
	}
	c.Done()
	return true
}

// Reroute keeps cmd, which its node failed with err without running it
// (never written, or refused by the open breaker of a node that refuses
// connections: see unrun), to be sent again, as a redirect is, once none
// of the slot's commands is in flight, to the owner the slot map names
// then, read again: a failover may have moved the slot to a replica while
// the engine was idle, and the map names the dead node until it is
// reloaded. It reports false, keeping nothing, for any other error (a
// command that may have run fails with it), for a command whose ctx has
// ended, and once the collector is closed; the caller then fails cmd and
// counts it with Failed. A rerouted command counts as a redirect against
// MaxRedirects; when the map still names the failed node, its slot actor
// fails it fast with the node's error, as it does a new command. counted,
// when not nil, counts a refusal (Refusable): the slot actor calls it if
// it fails cmd with err in the end, having given up on it (a refusal of
// its own when it sends cmd again counts there).
func (c *Collector) Reroute(cmd Hooked, err error, counted func()) bool {
	if !unrun(err) || ended(cmd.Context()) != nil {
		return false
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.redirects = append(c.redirects, Redirect{Cmd: cmd, Failed: err, seq: cmd.Seq(), counted: counted})
	c.failed.Store(true)
	c.recovering.Store(true)
	c.mu.Unlock()
	c.Done()
	return true
}

// unrun reports whether err failed a command that did not run because its
// node is down: never written (policies.NotSent), or refused by the node's
// open breaker after the node refused connections (a breaker opened by
// timeouts may be a node that is only slow: its commands are not moved).
func unrun(err error) bool {
	if errors.Is(err, policies.ErrOutcomeUnknown) {
		// Written and then kept to be sent again, it may have run: the
		// open breaker inside is what stopped the resend (qa-AJ: such a
		// command was moved and failed as a plain ErrCircuitOpen, "not
		// sent").
		return false
	}
	if policies.NotSent(err) {
		return true
	}
	var open *policies.CircuitOpenError
	return errors.As(err, &open) && open.Cause != nil && policies.NotSent(open.Cause)
}

// Failed counts one command as failed without a reply (a transport error,
// an open breaker): the slot's node may be gone. Later commands of the
// slot then wait, as after a redirect, until none of its commands is in
// flight (the node's connection actor may still hold earlier ones, failed
// one by one when its breaker opens), then go to the owner the map names
// then: none overtakes an earlier one, on the same node or on a new one.
func (c *Collector) Failed() {
	c.failed.Store(true)
	c.recovering.Store(true)
	c.Done()
}

// Ran records, before its Done, that cmd, a command of the slot, ran or
// may have run: its reply was not a redirect, or its outcome is unknown.
// Only while a TRYAGAIN or CLUSTERDOWN redirect is kept (one atomic load
// otherwise): take then fails, with its reply, such a command that cmd
// was posted after and shares an argument with, instead of sending it
// again after cmd (qa-BD F3: a DEL {t}1 {t}2 refused with TRYAGAIN by a
// migration that split its keys, and a SET {t}1 after it in the same
// pipeline, which ran: the DEL sent again deleted what the SET wrote).
// Nothing ran: the caller may send it again. Arguments, not keys: a
// command whose value is the other's key counts too (a TRYAGAIN more, not
// a reordered write). A MOVED or ASK is followed as before: the later
// commands of a single-key command's key get the same redirect.
func (c *Collector) Ran(cmd Hooked) {
	if !c.recovering.Load() {
		return
	}
	a, ok := cmd.(Argumented)
	if !ok {
		return
	}
	c.mu.Lock()
	if c.passing {
		c.ran = append(c.ran, ranCmd{seq: cmd.Seq(), args: a.Args()})
	}
	c.mu.Unlock()
}

// Done counts one forwarded command as finished.
func (c *Collector) Done() {
	if c.left.Add(-1) == 0 && c.recovering.Load() && c.notified.CompareAndSwap(false, true) {
		c.notify()
	}
}

// take returns the redirected and rerouted commands in the order they
// were posted, and forgets them. They are kept as their replies and
// failures come, which is not that order: a breaker's opening fails the
// commands queued for the node (Reroute) while an earlier one, written,
// still waits for its reply, a MOVED (Intercept), and would have been
// resent after them (review-35 R35-2: SET k 2 then SET k 1 on the new
// owner). Their Seq is the order the slot posted them in, under its
// routing lock, on the direct path and from the slot actor alike: for
// commands of one goroutine, the order they were issued in.
//
// A TRYAGAIN or CLUSTERDOWN command that a later command of the slot
// sharing an argument with it ran after (see Ran), or that such a command
// redirected by ASK would overtake, is failed with its reply instead.
func (c *Collector) take() []Redirect {
	c.mu.Lock()
	r := c.redirects
	c.redirects = nil
	ran, passing := c.ran, c.passing
	c.ran, c.passing = nil, false
	c.mu.Unlock()
	slices.SortStableFunc(r, func(a, b Redirect) int { return seqCompare(a.seq, b.seq) })
	if !passing {
		return r
	}
	// An ASK'd command goes to the importing node as soon as the backoff
	// is over, beside the TRYAGAIN'd ones sent to the owner (send): one
	// issued after a TRYAGAIN'd command of its key would run first (rv42
	// F1's form: DEL {t}1 {t}2 refused, SET {t}1 asked).
	for _, y := range r {
		if y.Ask {
			if a, ok := y.Cmd.(Argumented); ok {
				ran = append(ran, ranCmd{seq: y.seq, args: a.Args()})
			}
		}
	}
	if len(ran) == 0 {
		return r
	}
	var refused []Redirect
	keep := r[:0]
	for _, x := range r {
		if x.Failed == nil && x.Addr == "" && ranAfter(x, ran) {
			refused = append(refused, x)
			continue
		}
		keep = append(keep, x)
	}
	for _, x := range refused {
		x.Cmd.Fail(x.Err)
	}
	return keep
}

// ranAfter reports whether a command of ran posted after x's shares an
// argument with it.
func ranAfter(x Redirect, ran []ranCmd) bool {
	a, ok := x.Cmd.(Argumented)
	if !ok {
		return false
	}
	args := a.Args()
	for _, rc := range ran {
		if seqCompare(rc.seq, x.seq) <= 0 {
			continue
		}
		for _, v := range rc.args {
			if slices.Contains(args, v) {
				return true
			}
		}
	}
	return false
}

// seqCompare compares two Seqs as serial numbers (RFC 1982): a wrapped
// counter orders correctly while the Seqs compared are less than 2^31
// apart, and those take compares are of commands in flight at once.
func seqCompare(a, b uint32) int {
	return cmp.Compare(int32(a-b), 0)
}

// close fails what is kept and makes later redirects fail at once.
func (c *Collector) close(err error) {
	c.mu.Lock()
	if !c.closed { // SlotState.Close and the stopping actor both close it
		c.closed, c.closeErr = true, err
	}
	r := c.redirects
	c.redirects = nil
	c.mu.Unlock()
	failRedirects(r, err)
}

func isMoved(ve *valkey.ValkeyError, addr *string) bool {
	a, ok := MovedAddr(ve)
	*addr = a
	return ok
}

func isAsk(ve *valkey.ValkeyError, addr *string) bool {
	a, ok := AskAddr(ve)
	*addr = a
	return ok
}

// MovedAddr returns the target address of a MOVED redirect ("MOVED
// <slot> <host:port>"); false for any other reply, one that only starts
// like a MOVED included ("MOVED" alone, from a broken server or a proxy).
// Use it, not valkey-go's IsMoved, which indexes the third word unchecked
// (a panic on such replies) and takes any text starting with "MOVED".
func MovedAddr(ve *valkey.ValkeyError) (string, bool) {
	if !redirectShape(ve, "MOVED ") {
		return "", false
	}
	return ve.IsMoved()
}

// AskAddr is MovedAddr for an ASK redirect ("ASK <slot> <host:port>").
func AskAddr(ve *valkey.ValkeyError) (string, bool) {
	if !redirectShape(ve, "ASK ") {
		return "", false
	}
	return ve.IsAsk()
}

// redirectShape reports whether ve's text is prefix and at least two more
// words, as valkey-go's IsMoved and IsAsk read it.
func redirectShape(ve *valkey.ValkeyError, prefix string) bool {
	if ve == nil || ve.IsNil() {
		return false
	}
	text := ve.Error()
	return strings.HasPrefix(text, prefix) && strings.Count(text, " ") >= 2
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
	// go to (a replica), dialling it on first use, or nil for the primary.
	ReadConn(slot uint16) (*ConnState, error)
	// ReplicaAddr returns the address of the replica ReadConn would
	// choose, or "" for the primary. It never blocks on the network.
	ReplicaAddr(slot uint16) string
	// Cached returns the connection actor that serves slot on addr if the
	// node is dialled already, else nil. It never blocks on the network.
	Cached(addr string, slot uint16) *ConnState
	// ReplicaReads reports whether read-only commands go to replicas.
	ReplicaReads() bool
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

// Conn, ReadConn and Refresh may block on the network (a dial, a slot-map
// load): the slot actor calls them only off its goroutine (resolve), and
// the others, which never block, on it.

// SlotState is one hash slot's routing state. It outlives the slot actor,
// which exists only while the slot needs one: Submit sends a command
// straight to the owning node's connection actor while nothing for the
// slot is parked, redirected or queued in the slot actor, and hands it to
// the slot actor (spawned on demand) otherwise. The slot actor stops
// itself after IdleTimeout without work.
//
// Order: every command for the slot goes through mu, and the direct path
// is taken only when the slot actor holds none of the slot's commands
// (pending == 0) and no redirect is being resolved; the slot actor posts
// under mu as well. The direct path posts just after mu is released
// (under Backpressure block that Post may wait for room, and must not
// hold up the slot's other callers meanwhile), but Submit returns only
// once its command is queued, or failed: a command issued after it, by
// the same goroutine or one that learnt of its return, is routed after
// it was queued, and the slot actor's forwards, each under mu, follow the
// direct posts whose routing preceded them (a forward carries commands
// routed to the slot actor after those, while pending was above 0).
// Commands for one slot from one goroutine therefore reach the connection
// actors in the order they were issued, whichever path each took; and a
// command goes to another connection actor than the previous one (a new
// owner) only once none of the slot's commands is in flight
// (drainFirst), so that it cannot run before them: a direct post not made
// yet is counted in flight (Collector.left) from its routing on.
type SlotState struct {
	Slot         uint16
	Router       Router
	MaxRedirects int
	Backoff      policies.Backoff
	CloseErr     error
	// NewMailbox returns the mailbox of a new slot actor.
	NewMailbox func() *mailbox.Bounded
	// System runs the slot actors.
	System *actor.ActorSystem
	// IdleTimeout is how long a slot actor without work lives on. 0: for ever.
	IdleTimeout time.Duration
	// OnStopped, when set, is called each time a slot actor has stopped.
	OnStopped func()
	// Hooks, when set, hear of the redirects the slot actor follows.
	Hooks *hookbus.Bus

	redirects atomic.Uint64
	noOwner   atomic.Uint64 // commands failed with ErrNoSlotOwner
	unknown   atomic.Uint64 // commands written before, failed here with an outcome unknown (no ConnState to count them)
	coll      Collector
	once      sync.Once

	mu sync.Mutex // routing: see the type's doc
	// pending is the number of commands the slot actor holds (queued,
	// parked). Written under mu; Queued reads it without (qa-AF G1: a
	// Submit blocked in a full connection mailbox held mu then, and Stats
	// waited behind it).
	pending atomic.Int64
	conn    *ConnState // cached connection actor of the owner
	sent    *ConnState // the connection actor the last command went to
	seq     uint32     // the last Seq given to a posted command (hook)
	epoch   uint64     // slot map epoch conn was read at
	closed  bool       // set under mu and amu: either guards reading it

	amu   sync.Mutex // actor lifecycle; taken after mu, never before it
	box   *mailbox.Bounded
	pid   *actor.PID
	live  atomic.Bool
	stops sync.WaitGroup // actors not yet stopped
}

// drained is the message a slot actor gets when, after a redirect, none of
// its commands is in flight; resend carries commands to send again after a
// TRYAGAIN backoff.
type (
	drained struct{}
	resend  struct{}
	// idleTick is the slot's idle timer firing (see Slot.idleTimer).
	idleTick struct{}
	// resolved brings back what resolve found off the actor.
	resolved struct{ res resolution }
)

// Redirects returns how many commands the cluster redirected (MOVED, ASK,
// TRYAGAIN, CLUSTERDOWN) and this slot sent again or failed.
func (s *SlotState) Redirects() uint64 { return s.redirects.Load() }

// NoOwner returns how many of the slot's commands failed unsent with
// policies.ErrNoSlotOwner (no node served the slot).
func (s *SlotState) NoOwner() uint64 { return s.noOwner.Load() }

// OutcomeUnknown returns the number of commands written on an earlier try
// that the slot actor failed with an outcome unknown where no node's
// connection actor counts them (no owner for the slot).
func (s *SlotState) OutcomeUnknown() uint64 { return s.unknown.Load() }

// Live reports whether the slot has a running slot actor.
func (s *SlotState) Live() bool { return s.live.Load() }

// Queued returns how many of the slot's commands the slot actor holds.
func (s *SlotState) Queued() int {
	return int(s.pending.Load())
}

func (s *SlotState) init() {
	s.once.Do(func() { s.coll.notify = s.notify })
}

// Submit routes cmd: straight to the connection actor of the slot's owner
// when it can (see the type's doc), else through the slot actor. cmd
// always completes (or fails) through its own methods.
func (s *SlotState) Submit(cmd Hooked) {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cmd.Fail(s.CloseErr)
		return
	}
	if s.pending.Load() == 0 && !s.coll.recovering.Load() && !s.coll.failed.Load() {
		if conn := s.route(); conn != nil {
			if c := cmd.Cmd(); (!c.IsReadOnly() || !s.Router.ReplicaReads()) &&
				(s.sent == nil || conn == s.sent || !s.drainFirst()) {
				s.coll.left.Add(1)
				s.hook(cmd)
				s.sent = conn
				s.mu.Unlock()
				// Posted without mu: under Backpressure block a full
				// mailbox keeps this caller waiting, bounded by its
				// ctx, and holding mu it kept every other caller of
				// the slot waiting as well, in Submit, past their own
				// deadlines (review-35 R35-4). Order holds without it:
				// see the type's doc.
				conn.Mailbox.Post(cmd)
				conn.RefuseIfOpen() // opened since route() looked
				return
			}
		}
	}
	box, err := s.actor()
	if err != nil {
		s.mu.Unlock()
		cmd.Fail(err)
		return
	}
	s.pending.Add(1)
	s.mu.Unlock()
	if !box.Post(cmd) {
		s.release(1) // failed by the mailbox (context ended, closed)
	}
}

// hook makes cmd, about to be posted to a connection actor, complete
// through the collector, with the next Seq. Called with mu held: every
// post of the slot's commands to a connection actor is (Submit's direct
// path, the slot actor's dispatch), so Seq follows the order of the posts.
func (s *SlotState) hook(cmd Hooked) {
	s.seq++
	cmd.SetHook(&s.coll, s.seq)
}

// route returns the cached connection actor of the slot's owner, reading
// the slot map again when it changed; nil when the owner is unknown, not
// dialled yet, or its breaker is open: the slot actor handles those.
// Called with mu held.
func (s *SlotState) route() *ConnState {
	ep := s.Router.Epoch()
	if s.conn == nil || s.epoch != ep {
		s.conn = nil
		addr, err := s.Router.Owner(s.Slot)
		if err != nil {
			return nil
		}
		c := s.Router.Cached(addr, s.Slot)
		if c == nil {
			return nil
		}
		s.conn, s.epoch = c, ep
	}
	if s.conn.Node != nil && s.conn.Node.Open() {
		return nil
	}
	return s.conn
}

// drainFirst is called, with mu held, before a command of the slot goes to
// another connection actor than the last one did (the slot map names a new
// owner, or the former one was not dialled). While some of the slot's
// commands are still in flight there, the command could run on the new
// owner before them (a GET reading the value before a SET still on its
// way, to be redirected to that node): drainFirst then starts a recovery,
// as a redirect does, so that commands wait in the slot actor until none
// is in flight, and reports true. It reports false when none is in flight.
func (s *SlotState) drainFirst() bool {
	if s.coll.left.Load() == 0 {
		return false
	}
	s.coll.recovering.Store(true)
	// The last one may have finished before recovering was set, and so
	// not notified: then notify here (one of the two does, notified).
	if s.coll.left.Load() == 0 && s.coll.notified.CompareAndSwap(false, true) {
		s.notify()
	}
	return true
}

// release counts n commands as no longer held by the slot actor.
func (s *SlotState) release(n int) {
	s.mu.Lock()
	s.pending.Add(-int64(n))
	s.mu.Unlock()
}

// actor returns the slot actor's mailbox, spawning the actor when there is
// none. Called with mu held.
func (s *SlotState) actor() (*mailbox.Bounded, error) {
	s.amu.Lock()
	defer s.amu.Unlock()
	return s.actorLocked()
}

func (s *SlotState) actorLocked() (*mailbox.Bounded, error) {
	if s.box != nil {
		return s.box, nil
	}
	if s.closed {
		return nil, s.CloseErr
	}
	box := s.NewMailbox()
	props := actor.PropsFromProducer(
		func() actor.Actor { return &Slot{state: s, box: box} },
		actor.WithMailbox(func() actor.Mailbox { return box }),
	)
	s.stops.Add(1)
	pid, err := s.System.Root.SpawnNamed(props, fmt.Sprintf("vactor-slot-%d-%p", s.Slot, box))
	if err != nil {
		s.stops.Done()
		return nil, fmt.Errorf("actors: spawn slot actor: %w", err)
	}
	s.box, s.pid = box, pid
	s.live.Store(true)
	return box, nil
}

// notify tells the slot actor, spawning one if it stopped meanwhile, that
// nothing is in flight after a redirect. It takes amu only: it runs on a
// connection actor's goroutine, and also where a command fails on the
// spot, as in a Forward the slot actor makes holding mu.
func (s *SlotState) notify() {
	s.amu.Lock()
	box, err := s.actorLocked()
	s.amu.Unlock()
	if err != nil {
		s.coll.close(err)
		return
	}
	box.PostUserMessage(drained{})
}

// Close fails what the slot holds with err, makes later commands fail with
// it, and stops the slot actor. Wait waits for the actor to stop.
func (s *SlotState) Close(err error) {
	s.init()
	s.mu.Lock()
	s.amu.Lock() // closed is read under mu (Submit) or amu (actorLocked)
	s.closed = true
	box, pid := s.box, s.pid
	s.amu.Unlock()
	s.mu.Unlock()
	s.coll.close(err)
	if box != nil {
		box.Close(err)
	}
	if pid != nil {
		s.System.Root.Stop(pid)
	}
}

// Wait waits until no slot actor of s is running.
func (s *SlotState) Wait() { s.stops.Wait() }

// stopIfIdle stops the actor when the slot needs it no more: nothing
// queued, parked, waiting or being redirected. Called by the actor.
func (s *SlotState) stopIfIdle(a *Slot, ctx actor.Context) bool {
	if len(a.parked) > 0 || len(a.waiting) > 0 || len(a.waitingAsks) > 0 || a.wait != nil || a.resolving {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.amu.Lock()
	defer s.amu.Unlock()
	if s.pending.Load() > 0 || s.coll.recovering.Load() || s.box != a.box {
		return false
	}
	s.box, s.pid = nil, nil
	s.live.Store(false)
	a.idle = true
	ctx.Stop(ctx.Self())
	return true
}

// Slot is the slot actor. It runs only while its slot needs it: to dial the
// owner, to follow a failed node, to read from replicas, and to resend what
// the cluster redirected. It forwards each drained batch to the connection
// actor of the node that owns its slot and goes on without waiting: the
// connection actor keeps them in order. When the cluster redirects a
// command (MOVED, ASK, TRYAGAIN, CLUSTERDOWN), new commands wait (parked
// here; the direct path is closed meanwhile) until none of the slot's
// commands is in flight; then the redirected ones (and those their node
// failed unrun) are sent again in the order they were sent (see
// Collector.take), then the parked ones. Commands for one
// slot therefore keep their order across slot migrations and failovers.
type Slot struct {
	state  *SlotState
	box    *mailbox.Bounded
	owner  string // cached owner; updated by MOVED
	epoch  uint64 // slot map epoch the owner was read from
	parked []Hooked
	// waiting holds the commands (and ASK redirects) sent again after a
	// TRYAGAIN backoff, until the resend message comes.
	waiting     []Hooked
	waitingAsks []Redirect
	// wait is a forward whose targets are being dialled or looked up off
	// the actor (resolving while that runs); commands that come meanwhile
	// are parked behind it.
	wait      *forwarding
	resolving bool
	idle      bool // stopped for idleness: nothing to fail
	// idleTimer posts an idleTick every IdleTimeout; the actor stops when
	// no other message came since the previous tick (busy false) and the
	// slot needs it no more. Not protoactor's receive timeout, whose timer
	// goroutine writes the actor context's fields unsynchronised with the
	// actor's (qa-AV AV1, asynkron/protoactor-go#1139: a data race under
	// -race, a possible nil timer at run time).
	idleTimer *time.Timer
	busy      bool
	// unaccounted is how many commands of the forward in hand are counted
	// in SlotState.pending but neither held (parked, wait) nor dispatched
	// yet: a restart in between releases them (review-34 R34-3: a panic in
	// forward left them counted for good, and the actor never idled).
	unaccounted int
	cmds        []Hooked          // reused per batch
	msgs        []mailbox.Message // reused per batch
}

// Receive implements actor.Actor.
func (a *Slot) Receive(ctx actor.Context) {
	msg := ctx.Message()
	if _, tick := msg.(idleTick); !tick {
		a.busy = true
	}
	switch m := msg.(type) {
	case *actor.Started:
		if d := a.state.IdleTimeout; d > 0 {
			box := a.box
			a.idleTimer = time.AfterFunc(d, func() { box.PostUserMessage(idleTick{}) })
		}
		if a.state.coll.recovering.Load() {
			// Restarted during a recovery: pick it up (recover waits for
			// the commands still in flight, if any).
			a.box.PostUserMessage(drained{})
		}
	case *mailbox.Batch:
		a.run(m.Messages)
	case drained:
		a.recover()
	case resolved:
		a.onResolved(m.res)
	case resend:
		cmds, asks := a.waiting, a.waitingAsks
		a.waiting, a.waitingAsks = nil, nil
		a.resume(cmds, asks)
	case *actor.Restarting:
		// The actor failed (a bug): its instance, and what it held, is
		// replaced. Fail what it held rather than leave it pending; the
		// redirects the collector keeps are resent by the new instance
		// (see Started).
		n := len(a.parked)
		err := mailbox.ErrActorFailed
		failAll(a.parked, err)
		failAll(a.waiting, err)
		failRedirects(a.waitingAsks, err)
		if w := a.wait; w != nil {
			n += w.held
			w.fail(err)
		}
		a.parked, a.waiting, a.waitingAsks, a.wait = nil, nil, nil, nil
		a.state.release(n)
		a.box.Release(n)
		// The forward in hand: the mailbox failed and released its batch.
		a.state.release(a.unaccounted)
		a.unaccounted = 0
		if a.idleTimer != nil {
			a.idleTimer.Stop() // the new instance arms its own at Started
		}
	case idleTick:
		if a.idleTimer == nil { // no timer (IdleTimeout 0): no tick comes; a guard only
			return
		}
		if a.busy || !a.state.stopIfIdle(a, ctx) {
			a.busy = false
			a.idleTimer.Reset(a.state.IdleTimeout)
		}
	case *actor.Stopping:
		if a.idleTimer != nil {
			a.idleTimer.Stop()
		}
		st := a.state
		if a.idle {
			a.box.Close(st.CloseErr)
			return
		}
		a.box.Close(st.CloseErr)
		st.coll.close(st.CloseErr)
		failAll(a.parked, st.CloseErr)
		failAll(a.waiting, st.CloseErr)
		failRedirects(a.waitingAsks, st.CloseErr)
		if a.wait != nil {
			a.wait.fail(st.CloseErr)
		}
		a.parked, a.waiting, a.waitingAsks, a.wait = nil, nil, nil, nil
	case *actor.Stopped:
		if a.state.OnStopped != nil {
			a.state.OnStopped()
		}
		a.state.stops.Done()
	}
}

func (a *Slot) run(batch []mailbox.Message) {
	st := a.state
	cmds := a.cmds[:0]
	bad := 0
	for _, m := range batch {
		h, ok := m.(Hooked)
		if !ok {
			m.Fail(ErrNotCommand)
			bad++
			continue
		}
		cmds = append(cmds, h)
	}
	if bad > 0 {
		st.release(bad)
		a.box.Release(bad)
	}
	if st.coll.recovering.Load() || len(a.parked) > 0 || a.wait != nil {
		a.parked = append(a.parked, cmds...) // after the redirected ones
	} else {
		a.forward(cmds, nil, len(cmds), false)
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
	var pending []Hooked
	var asks []Redirect
	wait := false
	var from string
	tell := st.Hooks.WantsRedirects()
	if tell {
		from, _ = st.Router.Owner(st.Slot)
	}
	for _, r := range redirects {
		r.Cmd.Renew()
		r.Cmd.Redirected()
		gaveUp := r.Cmd.Redirects() > st.MaxRedirects
		if r.Failed != nil {
			// Not a redirect of the cluster's (no event, not counted in
			// Redirects): the node failed it unrun; read the owner again.
			if gaveUp {
				if r.counted != nil {
					r.counted() // the refusal that rerouted it, counted now
				}
				r.Cmd.Fail(r.Failed)
				continue
			}
			a.owner = ""
			pending = append(pending, r.Cmd)
			continue
		}
		st.redirects.Add(1)
		if tell {
			st.Hooks.Emit(redirectEvent(r, st.Slot, from, gaveUp))
		}
		if gaveUp {
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
		// The slot is in flux: try again after a backoff, new commands
		// still parked meanwhile.
		a.owner = ""
		a.waiting, a.waitingAsks = pending, asks
		d := st.Backoff.Delay(max(pending[0].Redirects()-1, 0))
		box := a.box
		time.AfterFunc(d, func() { box.PostUserMessage(resend{}) })
		return
	}
	a.resume(pending, asks)
}

// resume ends a recovery: the commands to send again go first, then the
// parked ones.
func (a *Slot) resume(cmds []Hooked, asks []Redirect) {
	parked := a.parked
	a.parked = nil
	held := len(parked)
	if w := a.wait; w != nil {
		// A forward waits for its targets: its commands were issued after
		// the redirected ones (in flight when it began waiting) and before
		// the parked ones.
		a.wait = nil
		cmds = append(cmds, w.cmds...)
		asks = append(w.asks, asks...)
		held += w.held
	}
	cmds = append(cmds, parked...)
	if a.resolving {
		// The lookup under way dispatches it when it comes back.
		a.wait = &forwarding{cmds: cmds, asks: asks, held: held, ending: true}
		return
	}
	a.forward(cmds, asks, held, true)
}

// forwarding is what forward posts: cmds, of which the last held were
// counted in pending; asks, each sent after ASKING to its target; ending,
// when it ends a recovery.
type forwarding struct {
	cmds   []Hooked
	asks   []Redirect
	held   int
	ending bool
}

// fail fails every command of w with err.
func (w *forwarding) fail(err error) {
	failAll(w.cmds, err)
	failRedirects(w.asks, err)
}

// forward posts cmds to the owner's connection actor (reads to a replica
// when ReadFrom says so), and each ASK redirect, preceded by ASKING, to its
// target; held of them (the last ones) were counted in pending and are
// released, under mu with the posts, so that no command of the slot can
// overtake them. With ending, it also ends a recovery (under mu as well,
// before the posts: a new redirect may start another), opening the direct
// path again.
//
// When a target is not dialled yet, or the slot's owner is unknown or
// down, the actor does not wait for the network (rule 0): resolve dials
// and reads the slot map on a goroutine of its own, the forward waits in
// a.wait, later commands park behind it, and onResolved posts them all in
// order when the answer comes back as a message.
//
// The posts never block (mailbox.Forward): a group that does not fit in
// its connection actor's mailbox waits there, ahead of later posts, and
// the held commands in it stay counted against this actor's mailbox (it
// holds its drained commands, HoldDrained) until the group is let in, so
// that what the slot holds stays within MailboxCapacity. Redirected
// commands sent again were counted once already, when first posted.
func (a *Slot) forward(cmds []Hooked, asks []Redirect, held int, ending bool) {
	w := &forwarding{cmds: cmds, asks: asks, held: held, ending: ending}
	a.unaccounted = held
	if res, ok := a.ready(w); ok {
		a.dispatch(w, res)
		return
	}
	w.cmds = slices.Clone(cmds) // cmds may be the caller's reused buffer
	a.wait = w
	a.unaccounted = 0 // w.held now
	a.resolve(w)
}

// resolution is where a forward goes: the owner's (and the read
// replica's) connection actor, or the error to fail its commands with;
// askErr holds the ASK targets that could not be dialled.
type resolution struct {
	owner  string
	epoch  uint64
	conn   *ConnState
	rc     *ConnState
	err    error
	open   *ConnState // err is this actor's node's open breaker (counted there)
	askErr map[string]error
}

// ready returns w's targets when every one is known and dialled, without
// blocking; false when resolve must look them up.
func (a *Slot) ready(w *forwarding) (resolution, bool) {
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
	for _, r := range w.asks {
		if st.Router.Cached(r.Addr, st.Slot) == nil {
			return resolution{}, false
		}
	}
	if len(w.cmds) == 0 {
		return resolution{}, true
	}
	owner := a.owner
	if owner == "" {
		var err error
		if owner, err = st.Router.Owner(st.Slot); err != nil {
			return resolution{}, false
		}
	}
	conn := st.Router.Cached(owner, st.Slot)
	if conn == nil || (conn.Node != nil && conn.Node.Open()) {
		return resolution{}, false
	}
	res := resolution{owner: owner, epoch: a.epoch, conn: conn}
	if addr := st.Router.ReplicaAddr(st.Slot); addr != "" {
		rc := st.Router.Cached(addr, st.Slot)
		if rc == nil {
			return resolution{}, false
		}
		if rc.Node == nil || !rc.Node.Open() {
			res.rc = rc
		}
	}
	a.owner = owner
	return res, true
}

// resolve looks w's targets up on a goroutine of its own: it dials what
// is not dialled and reads the slot map again when the owner is unknown or
// down, each bounded by the dial timeout, and reports back as a resolved
// message.
func (a *Slot) resolve(w *forwarding) {
	a.resolving = true
	st, box := a.state, a.box
	owner, epoch, need := a.owner, a.epoch, len(w.cmds) > 0
	var asks []string
	for _, r := range w.asks {
		asks = append(asks, r.Addr)
	}
	go func() {
		box.PostUserMessage(resolved{res: lookup(st.Router, st.Slot, owner, epoch, need, asks)})
	}()
}

// lookup is resolve's work, off the actor: the connection actors of the
// ASK targets and, when need, of the slot's owner (owner, unless empty)
// and of its read replica.
func lookup(r Router, slot uint16, owner string, epoch uint64, need bool, asks []string) resolution {
	res := resolution{owner: owner, epoch: epoch}
	for _, addr := range asks {
		if _, err := r.Conn(addr, slot); err != nil {
			if res.askErr == nil {
				res.askErr = map[string]error{}
			}
			res.askErr[addr] = err
		}
	}
	if !need {
		return res
	}
	if res.owner == "" {
		o, err := r.Owner(slot)
		if err != nil {
			// No node serves the slot in our map (a failover in progress,
			// or the map is stale): read it again now before failing.
			if o, err = r.Refresh(slot); err != nil {
				res.err = err
				return res
			}
			res.epoch = r.Epoch()
		}
		res.owner = o
	}
	conn, err := r.Conn(res.owner, slot)
	if err != nil {
		// The owner cannot be dialled: a failover may have moved the slot
		// (the map is only read again every ClusterRefreshInterval while
		// the engine is idle). Reload it and follow it; else fail.
		if o, rerr := r.Refresh(slot); rerr == nil && o != res.owner {
			res.owner, res.epoch = o, r.Epoch()
			conn, err = r.Conn(o, slot)
		}
		if err != nil {
			res.owner, res.err = "", err
			return res
		}
	}
	if conn.Node != nil && conn.Node.Open() {
		// The node is down. A failover may have moved the slot: reload the
		// map and follow it; else fail fast rather than queue.
		if o, err := r.Refresh(slot); err == nil && o != res.owner {
			res.owner, res.epoch = o, r.Epoch()
			if c2, err := r.Conn(o, slot); err == nil {
				conn = c2
			}
		}
		if conn.Node != nil && conn.Node.Open() && conn.FailIfOpen() {
			// The breaker's opening marks the node open before it fails
			// what the node's connection actor queues: fail those first,
			// so that this slot's earlier commands complete before the
			// ones refused here (Order). (Closed again by the time
			// FailIfOpen looked, it failed nothing, and they go to the
			// node after what it queues: review-41 2.)
			res.owner, res.err, res.open = "", conn.Node.OpenError(), conn
			return res
		}
	}
	res.conn = conn
	if rc, _ := r.ReadConn(slot); rc != nil && (rc.Node == nil || !rc.Node.Open()) {
		res.rc = rc
	}
	return res
}

// onResolved dispatches the waiting forward once its targets are looked
// up, with the commands parked behind it; during a recovery it stays
// waiting and resume takes it.
func (a *Slot) onResolved(res resolution) {
	a.resolving = false
	w := a.wait
	if w == nil {
		return
	}
	st := a.state
	if st.coll.recovering.Load() && !w.ending {
		return // commands in flight were redirected: resume sends them first
	}
	a.wait = nil
	if len(a.parked) > 0 {
		// Parked while w waited, so issued after its commands: they go
		// with it. During a recovery only the forward that ends it gets
		// here (the others wait for resume, above), and it must take
		// them: once it has ended the recovery, nothing else would
		// forward them, and every later command would park behind them.
		w.cmds = append(w.cmds, a.parked...)
		w.held += len(a.parked)
		a.parked = nil
	}
	if r, ok := a.ready(w); ok {
		a.dispatch(w, r)
		return
	}
	for _, r := range w.asks {
		if st.Router.Cached(r.Addr, st.Slot) == nil && res.askErr[r.Addr] == nil {
			// An ASK target the lookup did not cover (it came with a
			// recovery meanwhile): look again.
			a.wait = w
			a.resolve(w)
			return
		}
	}
	if len(w.cmds) > 0 && res.err == nil && res.conn == nil {
		a.wait = w
		a.resolve(w)
		return
	}
	a.owner, a.epoch = res.owner, res.epoch
	a.dispatch(w, res)
}

// dispatch posts w to the targets res names (see forward).
func (a *Slot) dispatch(w *forwarding, res resolution) {
	st := a.state
	cmds, held := w.cmds, w.held
	st.mu.Lock()
	defer st.mu.Unlock()
	if !w.ending && len(w.asks) == 0 && len(cmds) > 0 && held == len(cmds) && res.err == nil &&
		st.sent != nil && res.conn != st.sent && st.drainFirst() {
		// Earlier commands of the slot are in flight on another
		// connection actor: these wait, first, until none is.
		a.parked = append(slices.Clone(cmds), a.parked...)
		a.unaccounted = 0 // parked now
		return
	}
	st.pending.Add(-int64(held))
	a.unaccounted = 0
	if w.ending {
		st.coll.recovering.Store(false)
	}
	for _, r := range w.asks {
		c := st.Router.Cached(r.Addr, st.Slot)
		if c == nil {
			err := res.askErr[r.Addr]
			if err == nil {
				err = fmt.Errorf("actors: no connection to ASK target %s", r.Addr)
			}
			r.Cmd.Fail(err)
			continue
		}
		if n := c.Node; n != nil && n.Open() {
			// The target's breaker is open: its connection actor is
			// kept down (or refuses at its next round trip), and the
			// command waited in its mailbox until the breaker's next
			// opening or closing, an OpenTimeout later (review-40 5).
			// It fails now as the owner's refusal fails a slot's
			// commands (a command written on an earlier try may have
			// run: an outcome unknown).
			failAsked(c, &st.unknown, r.Cmd, n.OpenError())
			continue
		}
		st.coll.left.Add(1)
		st.hook(r.Cmd)
		c.Mailbox.Forward(nil, st.Router.Asking(), r.Cmd)
		c.RefuseIfOpen() // opened since the check above
	}
	if len(cmds) == 0 {
		return
	}
	if res.err != nil {
		a.owner = ""
		// A command written on an earlier try whose reply was lost (kept,
		// resent, then redirected here) may have run: it fails as the
		// connection actors fail it (held.fail), an outcome unknown
		// wrapping res.err, never as refused unwritten (review-35
		// R35-1's class, on the slot actor's path: a bare
		// *CircuitOpenError or ErrNoSlotOwner said "not sent").
		unsent := 0
		for _, c := range cmds {
			if c.Rewrites() == 0 {
				unsent++
			}
		}
		if res.open != nil {
			res.open.CountRefused(unsent)
		} else if errors.Is(res.err, policies.ErrNoSlotOwner) {
			st.noOwner.Add(uint64(unsent))
		}
		for _, c := range cmds {
			if c.Rewrites() > 0 {
				failWritten(res.open, &st.unknown, c, res.err)
				continue
			}
			c.Fail(res.err)
		}
		a.box.Release(held)
		return
	}
	conn, rc := res.conn, res.rc
	st.coll.left.Add(int64(len(cmds)))
	for _, cmd := range cmds {
		st.hook(cmd)
	}
	st.conn, st.epoch = conn, a.epoch
	a.msgs = a.msgs[:0]
	first := len(cmds) - held // cmds[first:] are held
	wHeld := held
	if rc != nil {
		// Reads to a replica, the rest to the primary, each in order.
		var reads []mailbox.Message
		rHeld := 0
		for i, cmd := range cmds {
			if c := cmd.Cmd(); c.IsReadOnly() {
				reads = append(reads, cmd)
				if i >= first {
					rHeld++
				}
			} else {
				a.msgs = append(a.msgs, cmd)
			}
		}
		wHeld -= rHeld
		if len(reads) > 0 {
			rc.Mailbox.Forward(a.releaser(rHeld), reads...)
			rc.RefuseIfOpen() // opened since the lookup
		}
	} else {
		for _, c := range cmds {
			a.msgs = append(a.msgs, c)
		}
	}
	if len(a.msgs) > 0 {
		st.sent = conn
		conn.Mailbox.Forward(a.releaser(wHeld), a.msgs...)
		conn.RefuseIfOpen() // opened since the lookup
	}
	clear(a.msgs)
}

// releaser returns what releases n held commands from the actor's mailbox
// once they are posted on: nil for none.
func (a *Slot) releaser(n int) func() {
	if n == 0 {
		return nil
	}
	box := a.box
	return func() { box.Release(n) }
}

// redirectEvent describes r for the Redirected hooks.
func redirectEvent(r Redirect, slot uint16, from string, gaveUp bool) hooks.Redirect {
	ev := hooks.Redirect{Slot: int(slot), From: from, To: r.Addr, GaveUp: gaveUp}
	switch {
	case r.Ask:
		ev.Kind = hooks.RedirectAsk
	case r.Addr != "":
		ev.Kind = hooks.RedirectMoved
	case r.Err != nil && r.Err.IsClusterDown():
		ev.Kind = hooks.RedirectClusterDown
	default:
		ev.Kind = hooks.RedirectTryAgain
	}
	if cmd := r.Cmd.Cmd(); len(cmd.Commands()) > 0 {
		parts := cmd.Commands()
		ev.Name = parts[0]
	}
	return ev
}

// failWritten fails cmd, written on an earlier try, with err as an
// outcome unknown, counted in st's OutcomeUnknown when st is known, else
// in unknown (review-35b R35b-4: counted nowhere).
func failWritten(st *ConnState, unknown *atomic.Uint64, cmd Hooked, err error) {
	if st != nil {
		held{cmd: cmd}.fail(st, err)
		return
	}
	unknown.Add(1)
	cmd.Fail(&policies.OutcomeUnknownError{Cause: errors.Join(err, errWrittenBefore)})
}

// failAsked fails cmd, redirected by ASK to c whose node's breaker is
// open, with err: refused unwritten, or an outcome unknown when written
// on an earlier try.
func failAsked(c *ConnState, unknown *atomic.Uint64, cmd Hooked, err error) {
	if cmd.Rewrites() > 0 {
		failWritten(c, unknown, cmd, err)
		return
	}
	c.CountRefused(1)
	cmd.Fail(err)
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
