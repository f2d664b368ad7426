package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/futures"
)

// PingFuture sends PING and returns its future (the reply, "PONG").
func (e *Engine) PingFuture(ctx context.Context) *futures.Future[string] {
	return submitKeyless(e, ctx, e.b.Ping().Build(), decodeString)
}

// Ping sends PING on every connection and waits for the replies; it
// returns the first error, or ctx's when ctx ends first. A user the
// server does not let run PING gets its NOPERM error (see IsHealthy). In
// cluster mode "every connection" is every one to a node of the current
// slot map (a failed primary, once its replica is promoted, is left out
// though its connections are kept a while), and while a shard of the map
// has no primary Ping fails with ErrNoSlotOwner.
func (e *Engine) Ping(ctx context.Context) error {
	fs, err := e.pingAll(ctx)
	if err != nil {
		return err
	}
	_, err = futures.All(ctx, fs...)
	return err
}

// pingAll sends PING on every connection.
func (e *Engine) pingAll(ctx context.Context) ([]*futures.Future[string], error) {
	if e == nil || e.engineState == nil {
		return nil, ErrNotCreated // the nil engine of a failed New, or a zero Engine
	}
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if e.closeDone == nil {
		return nil, ErrNotCreated // no connection: not "every one answers"
	}
	conns := e.connStates()
	if e.cl != nil {
		var err error
		if conns, err = e.cl.serving(conns); err != nil {
			return nil, err
		}
		if len(conns) == 0 {
			// None of the map's nodes dialled yet (the one dialled failed
			// over, say): one PING to a primary of the map, dialled for it.
			return []*futures.Future[string]{e.PingFuture(ctx)}, nil
		}
	}
	fs := make([]*futures.Future[string], len(conns))
	for i, c := range conns {
		fs[i] = submitTo(e, c, ctx, e.b.Ping().Build(), decodeString)
	}
	return fs, nil
}

// serving returns the connections of conns to nodes of the current slot
// map (its primaries and their online replicas): a node the map no longer
// names (a failed primary after its replica's promotion) serves nothing,
// and its connections, kept a while before they are closed, say nothing
// of the cluster's health. It fails with ErrNoSlotOwner while a shard of
// the map has no primary: commands for its slots fail.
func (c *cluster) serving(conns []*actors.ConnState) ([]*actors.ConnState, error) {
	t := c.topo.Load()
	if len(t.Orphaned) > 0 {
		return nil, fmt.Errorf("%w: slots %s have no primary (failed, no replica promoted yet)", ErrNoSlotOwner, slotRanges(t.Orphaned))
	}
	named := map[string]bool{}
	for _, sh := range t.Shards {
		named[sh.Primary] = true
		for _, r := range sh.Replicas {
			named[r] = true
		}
	}
	return slices.DeleteFunc(conns, func(st *actors.ConnState) bool { return !named[st.Addr] }), nil
}

// IsHealthy reports whether every connection answers PING before ctx ends
// (in cluster mode, as for Ping, every connection to a node of the slot
// map, and false while a shard has no primary).
// The server's refusal of PING itself is an answer: an ACL user without
// PING (NOPERM; "+@read +@write" is one), or a server that renamed it
// away, is healthy when every connection gets that refusal.
func (e *Engine) IsHealthy(ctx context.Context) bool {
	fs, err := e.pingAll(ctx)
	if err != nil {
		return false
	}
	for _, f := range fs {
		if _, err := f.Await(ctx); err != nil && !pingRefused(err) {
			return false
		}
	}
	return true
}

// pingRefused is actors.PingRefused for the errors callers get.
func pingRefused(err error) bool {
	var se *ServerError
	if errors.As(err, &se) {
		return se.Prefix == "NOPERM" || strings.HasPrefix(se.Message, "ERR unknown command")
	}
	return actors.PingRefused(err)
}

// Publish posts message on channel and returns the number of subscribers
// that received it. In cluster mode, where any node takes a PUBLISH and
// passes it on to the others, it goes to the primary serving the hash
// slot of the channel's name, as a command on that key would: one
// channel's messages leave from one node, in order, and channels spread
// over the primaries; when that primary fails it follows the slot to its
// new owner.
func (e *Engine) Publish(ctx context.Context, channel, message string) *futures.Future[int64] {
	cmd := e.b.Publish().Channel(channel).Message(message).Build()
	if e.cl != nil {
		return submitSlot(e, ctx, e.slotOf(channel), cmd, decodeInt64)
	}
	return submit(e, ctx, channel, cmd, decodeInt64)
}

// WaitReplicas sends WAIT on the connection that carries key's commands,
// after the commands issued before it for key: it completes with the
// number of replicas that acknowledged those writes, once replicas have or
// timeout has passed (WAIT counts in milliseconds, and a timeout below one
// is rounded up to 1 ms). It holds up that connection's pipeline while the
// server waits, so the timeout must be above 0 and below Config.ReadTimeout
// (the larger of ReadTimeout and WriteTimeout): otherwise it fails at once
// with ErrInvalidArgument, sending nothing, since a WAIT the server held
// that long would make the connection's read time out, which closes it and
// fails every command in flight on it. Keep the timeout short. (WAIT for
// 0 replicas, which the server answers at once, is sent whatever the
// timeout.)
func (e *Engine) WaitReplicas(ctx context.Context, key string, replicas int, timeout time.Duration) *futures.Future[int64] {
	if replicas < 0 || timeout < 0 {
		return fail[int64](fmt.Errorf("%w: WAIT with %d replicas, timeout %s", ErrInvalidArgument, replicas, timeout))
	}
	if replicas > 0 { // WAIT 0 t: the server answers at once
		if err := e.checkHold("WAIT", timeout.String(), timeout); err != nil {
			return fail[int64](err)
		}
	}
	// Arbitrary, not the typed builder: valkey-go sends its typed WAIT on
	// a dedicated connection, where it would wait for nothing.
	ms := timeout.Milliseconds()
	if timeout > 0 {
		ms = max(ms, 1) // WAIT n 0 would wait forever
	}
	cmd := e.b.Arbitrary("WAIT").Args(strconv.Itoa(replicas), strconv.FormatInt(ms, 10)).Build()
	if e.cl != nil {
		return submitSlot(e, ctx, e.slotOf(key), cmd, decodeInt64)
	}
	return submitTo(e, e.pick(key), ctx, cmd, decodeInt64)
}

// ScriptLoad loads script into the server's script cache (SCRIPT LOAD)
// and completes with its SHA1 digest, for EVALSHA (Do(ctx, "EVALSHA",
// sha, numkeys, keys..., args...), routed by its keys). In cluster mode it
// loads the script on every primary of the current slot map, so that an
// EVALSHA finds it whichever node serves its keys' slot; it fails with
// the first primary's error when one fails. (A SCRIPT LOAD through Do goes
// to one primary.) A node that becomes a primary later, a promoted
// replica or a node added by resharding, may not have the script: an
// EVALSHA there fails with a *ServerError whose Prefix is NOSCRIPT; load
// it again, or use EVAL, which sends the script itself.
func (e *Engine) ScriptLoad(ctx context.Context, script string) *futures.Future[string] {
	cmd := func() valkey.Completed { return e.b.ScriptLoad().Script(script).Build() }
	if e.cl == nil {
		return submit(e, ctx, "", cmd(), decodeString)
	}
	var fs []*futures.Future[string]
	for _, sh := range e.cl.topo.Load().Shards {
		if len(sh.Ranges) > 0 {
			fs = append(fs, submitSlot(e, ctx, sh.Ranges[0][0], cmd(), decodeString))
		}
	}
	if len(fs) == 0 {
		return submitKeyless(e, ctx, cmd(), decodeString) // no slot map yet: any node
	}
	return futures.Then(futures.Join(fs...), func(shas []string) (string, error) { return shas[0], nil })
}
