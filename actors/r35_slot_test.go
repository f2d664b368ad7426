package actors_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// redirectOnceConn answers every command of its first round trip (but
// PING) with redirect, holding that round trip until release is closed;
// later round trips answer OK and record the commands' last arguments in
// order.
type redirectOnceConn struct {
	redirect string
	release  chan struct{}
	entered  chan struct{}

	mu     sync.Mutex
	rounds int
	got    []string
}

func newRedirectOnceConn(redirect string) *redirectOnceConn {
	return &redirectOnceConn{redirect: redirect, release: make(chan struct{}), entered: make(chan struct{}, 1)}
}

func (c *redirectOnceConn) B() valkey.Builder { return valkey.Builder{} }
func (c *redirectOnceConn) Close() error      { return nil }
func (c *redirectOnceConn) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	return c.DoMulti(ctx, cmd)[0]
}

func (c *redirectOnceConn) DoMulti(_ context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	out := make([]valkey.ValkeyResult, len(cmds))
	if cmds[0].Commands()[0] == "PING" {
		for i := range out {
			out[i] = strReply("PONG")
		}
		return out
	}
	c.mu.Lock()
	c.rounds++
	first := c.rounds == 1 && c.redirect != ""
	c.mu.Unlock()
	if first {
		c.entered <- struct{}{}
		<-c.release
		for i := range out {
			out[i] = serverErrReply(c.redirect)
		}
		return out
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, cmd := range cmds {
		parts := cmd.Commands()
		c.got = append(c.got, parts[len(parts)-1])
		out[i] = strReply("OK")
	}
	return out
}

func (c *redirectOnceConn) values() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// movingRouter routes by address between two connection actors: the
// owner is from until a MOVED names to, or, with onRefresh, until the
// map is read again (a failover).
type movingRouter struct {
	oneNode
	moved     atomic.Bool
	from, to  *actors.ConnState
	onRefresh bool
}

func (r *movingRouter) Owner(uint16) (string, error) {
	if r.moved.Load() {
		return r.to.Addr, nil
	}
	return r.from.Addr, nil
}

func (r *movingRouter) byAddr(a string) *actors.ConnState {
	if a == r.to.Addr {
		return r.to
	}
	return r.from
}
func (r *movingRouter) Conn(a string, _ uint16) (*actors.ConnState, error) { return r.byAddr(a), nil }
func (r *movingRouter) Cached(a string, _ uint16) *actors.ConnState        { return r.byAddr(a) }
func (r *movingRouter) Moved(uint16, string)                               { r.moved.Store(true) }
func (r *movingRouter) Refresh(s uint16) (string, error) {
	if r.onRefresh {
		r.moved.Store(true)
	}
	return r.Owner(s)
}

// reroutingCmd is a hookedCmd whose Fail goes through the collector's
// Reroute first, and whose Complete through Intercept, as the engine's
// request does (engine/request.go).
type reroutingCmd struct{ *hookedCmd }

func newReroutingCmd(id int, value string) *reroutingCmd {
	c := &reroutingCmd{newHookedCmd(id)}
	c.cmd = valkey.Builder{}.Arbitrary("SET", "k", value).Build()
	return c
}

func (c *reroutingCmd) Fail(err error) { c.Refuse(err, nil) }

// Refuse implements actors.Refusable as the engine's request does.
func (c *reroutingCmd) Refuse(err error, counted func()) {
	h := c.hook.Swap(nil)
	if h != nil && h.Reroute(c, err, counted) {
		return
	}
	if counted != nil {
		counted()
	}
	c.fakeCmd.Fail(err)
	if h != nil {
		h.Failed()
	}
}

func (c *reroutingCmd) Complete(r valkey.ValkeyResult) {
	h := c.hook.Swap(nil)
	if h != nil && h.Intercept(c, r) {
		return
	}
	c.fakeCmd.Complete(r)
	if h != nil {
		h.Done()
	}
}

// breakerFailsHeld gives st's node a breaker that, like engine/node.go's,
// fails what the node's connection actor holds when it opens.
func breakerFailsHeld(st *actors.ConnState) {
	node := st.Node
	node.Breaker = policies.NewBreaker(policies.BreakerOptions{
		Threshold:   100,
		OpenTimeout: time.Hour,
		OnStateChanged: func(_, to circuitbreaker.State) {
			if now := node.SyncOpen(); to == circuitbreaker.OpenState && now != circuitbreaker.ClosedState {
				st.FailHeld(node.OpenError())
			}
		},
	})
}

// review-35 R35-2: SET k 1 (A) is in flight on the slot's owner and its
// reply will be a redirect; SET k 2 (B) and SET k 3 (C), issued after it,
// are queued behind it on the same connection actor. The node's breaker
// opens with a not-sent cause (another connection of the node whose
// redials are refused): its FailHeld fails B and C unrun, and the
// collector reroutes them (Reroute) before A's redirect comes back
// (Intercept). The slot must send them again in the order they were
// issued, A first: it sent [B, C, A], the order of the events, and the
// node ran SET k 2, SET k 3, SET k 1 (k ended at the oldest write, and
// every caller was told OK).
func TestR35RerouteKeepsIssueOrder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		redirect string
		moves    bool // the commands go to the second node afterwards
	}{
		{"MOVED", "MOVED 1 127.0.0.1:7002", true},
		{"TRYAGAIN", "TRYAGAIN Multiple keys request during rehashing of slot", false},
		{"CLUSTERDOWN", "CLUSTERDOWN The cluster is down", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snapshot := goleak.IgnoreCurrent()
			fromConn := newRedirectOnceConn(tc.redirect)
			fromSt := scriptNode(fromConn)
			breakerFailsHeld(fromSt)
			node := fromSt.Node
			h := start(t, fromSt)
			toConn := newRedirectOnceConn("")
			toSt := scriptNode(toConn)
			toSt.Addr = "127.0.0.1:7002"
			toSt.Node.Addr = toSt.Addr
			h2 := start(t, toSt)
			slot := slotOn(h, fromSt, 1)
			slot.Router = &movingRouter{from: fromSt, to: toSt}

			a, b, c := newReroutingCmd(1, "1"), newReroutingCmd(2, "2"), newReroutingCmd(3, "3")
			slot.Submit(a) // the direct path: in flight, held
			waitChan(t, fromConn.entered, "A's round trip")
			slot.Submit(b) // the direct path: queued behind A
			slot.Submit(c)
			node.RecordFailure(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
			node.Breaker.Open() // FailHeld: B and C rerouted
			eventually(t, "B and C failed unrun", func() bool { return fromSt.Mailbox.Stats().Queued == 0 })
			node.Breaker.Close()
			close(fromConn.release) // A's reply: the redirect
			for _, cmd := range []*reroutingCmd{a, b, c} {
				if r := cmd.wantCompleted(t); r.Error() != nil {
					t.Errorf("command %d: %v", cmd.id, r.Error())
				}
			}
			ran := fromConn.values()
			if tc.moves {
				ran = toConn.values()
			}
			if want := []string{"1", "2", "3"}; !slices.Equal(ran, want) {
				t.Errorf("the owner ran SET k %v, want %v (the order A, B, C were issued)", ran, want)
			}
			slot.Close(mailbox.ErrClosed)
			slot.Wait()
			h2.stop(t)
			h2.waitStopped(t)
			h.shutdown(t, snapshot)
		})
	}
}

// review-35 R35-4: with Backpressure block, a command of the slot whose
// Post waits for room in the owner's full connection mailbox (its caller
// has no deadline) must not hold up the slot's other callers: Submit held
// the slot's routing lock across that Post, and a second caller, with a
// 100 ms deadline, was stuck in Submit itself (a sync.Mutex does not watch
// ctx) until the first one got room. It must return at its deadline, its
// command failed with it, as in standalone mode; and once the node
// answers, the others run in the order they were issued.
func TestR35SubmitDeadlineWhileAnotherWaitsForRoom(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	hc := &holdConn{scriptConn: &scriptConn{}, release: make(chan struct{}), entered: make(chan struct{}, 1)}
	st := scriptNode(hc)
	st.Mailbox = mailbox.New(mailbox.Options{Capacity: 1}) // Block
	h := start(t, st)
	slot := slotOn(h, st, 1)

	log := &completionLog{}
	cmds := make([]*hookedCmd, 3)
	for i := range cmds {
		cmds[i] = newHookedCmd(i + 1)
		cmds[i].log = log
	}
	slot.Submit(cmds[0]) // in flight, held
	waitChan(t, hc.entered, "the first round trip")
	slot.Submit(cmds[1]) // fills the connection mailbox
	blocked := make(chan struct{})
	go func() {
		defer close(blocked)
		slot.Submit(cmds[2]) // no deadline: waits for room
	}()
	eventually(t, "the third command waiting for room", func() bool { return st.Mailbox.Stats().Waiting == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	late := newHookedCmd(4)
	late.ctx = ctx
	t0 := time.Now()
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		slot.Submit(late)
		t.Logf("Submit with a 100 ms deadline returned after %v", time.Since(t0))
	}()
	select {
	case <-returned:
		if d := time.Since(t0); d > time.Second {
			t.Errorf("Submit with a 100 ms deadline returned after %v", d)
		}
	case <-time.After(2 * time.Second):
		t.Errorf("Submit with a 100 ms deadline still blocked after 2 s: another caller's Post waiting for room holds the slot")
	}
	select {
	case <-late.done:
		if !errors.Is(late.err, context.DeadlineExceeded) {
			t.Errorf("the late command failed with %v, want its deadline", late.err)
		}
	case <-time.After(2 * time.Second):
		t.Errorf("the late command still pending 2 s after its deadline")
	}

	close(hc.release)
	<-returned
	<-blocked
	for _, c := range cmds {
		c.wantCompleted(t)
	}
	if got := log.get(); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("completion order %v, want [1 2 3]", got)
	}
	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h.shutdown(t, snapshot)
}
