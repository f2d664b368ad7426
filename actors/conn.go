package actors

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/mailbox"
)

// ErrNotCommand fails a mailbox message that is not a Command: a bug in the
// poster, reported instead of dropped.
var ErrNotCommand = errors.New("actors: message is not a Command")

// ErrShortReply fails the commands of a pipeline for which the driver
// returned no result (a driver bug). The commands may have run.
var ErrShortReply = errors.New("actors: driver returned fewer results than commands")

// ConnState is what a connection actor keeps across restarts: its address,
// mailbox, driver connection and counters. The engine creates it, posts
// commands to Mailbox and reads the counters; the actor instance is
// replaced on restart, the state is not. Safe for concurrent use.
type ConnState struct {
	Addr    string
	Mailbox *mailbox.Bounded
	Driver  drivers.Conn
	// CloseErr fails the commands still queued when the actor stops.
	CloseErr error

	commands atomic.Uint64 // commands whose reply (or error) came back
	errors   atomic.Uint64 // of those, the ones that failed
	inFlight atomic.Int64  // commands written and awaiting replies
	restarts atomic.Uint64
}

// ConnStats is a snapshot of one connection actor's counters.
type ConnStats struct {
	Addr     string
	Commands uint64
	Errors   uint64
	InFlight int64
	Restarts uint64
	Mailbox  mailbox.Stats
}

// Stats returns a snapshot of the counters.
func (s *ConnState) Stats() ConnStats {
	return ConnStats{
		Addr:     s.Addr,
		Commands: s.commands.Load(),
		Errors:   s.errors.Load(),
		InFlight: s.inFlight.Load(),
		Restarts: s.restarts.Load(),
		Mailbox:  s.Mailbox.Stats(),
	}
}

// Props returns the props of a connection actor over st, wired to st's
// mailbox.
func (s *ConnState) Props() *actor.Props {
	return actor.PropsFromProducer(
		func() actor.Actor { return &Conn{state: s} },
		actor.WithMailbox(func() actor.Mailbox { return s.Mailbox }),
	)
}

// Conn is the connection actor. It is driven by protoactor on one goroutine
// at a time.
type Conn struct {
	state *ConnState
	cmds  []valkey.Completed // reused per batch
	live  []Command          // reused per batch
}

// Receive implements actor.Actor.
func (c *Conn) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *mailbox.Batch:
		c.run(m.Messages)
	case *actor.Restarting:
		c.state.restarts.Add(1)
	case *actor.Stopping:
		// protoactor drops the messages of a stopped actor: fail them.
		c.state.Mailbox.Close(c.state.CloseErr)
	}
}

// run writes one batch as one pipeline and completes each command in order.
func (c *Conn) run(batch []mailbox.Message) {
	cmds, live := c.cmds[:0], c.live[:0]
	for _, m := range batch {
		cmd, ok := m.(Command)
		if !ok {
			m.Fail(ErrNotCommand)
			continue
		}
		cmds = append(cmds, cmd.Cmd())
		live = append(live, cmd)
	}
	if len(live) == 0 {
		return
	}
	n := int64(len(live))
	var failed uint64
	if n == 1 {
		// A batch of one: Do spares valkey-go's per-pipeline allocations.
		r := c.do(cmds[0])
		if isFailure(r) {
			failed++
		}
		live[0].Complete(r)
	} else {
		results := c.doMulti(cmds)
		for i, cmd := range live {
			r := valkey.ValkeyResult{}
			if i < len(results) {
				r = results[i]
			} else {
				r = shortReply
			}
			if isFailure(r) {
				failed++
			}
			cmd.Complete(r)
		}
	}
	c.state.commands.Add(uint64(n))
	if failed > 0 {
		c.state.errors.Add(failed)
	}
	clear(cmds)
	clear(live)
	c.cmds, c.live = cmds[:0], live[:0]
}

// shortReply completes the commands a driver returned no result for.
var shortReply = valkey.NewResult(valkey.ValkeyMessage{}, ErrShortReply)

// do and doMulti run the driver call with the in-flight gauge held, also
// when the driver panics.
func (c *Conn) do(cmd valkey.Completed) valkey.ValkeyResult {
	c.state.inFlight.Add(1)
	defer c.state.inFlight.Add(-1)
	return c.state.Driver.Do(context.Background(), cmd)
}

func (c *Conn) doMulti(cmds []valkey.Completed) []valkey.ValkeyResult {
	n := int64(len(cmds))
	c.state.inFlight.Add(n)
	defer c.state.inFlight.Add(-n)
	return c.state.Driver.DoMulti(context.Background(), cmds...)
}

// isFailure reports whether r failed: an error reply or a transport error,
// but not a nil reply.
func isFailure(r valkey.ValkeyResult) bool {
	err := r.Error()
	return err != nil && !valkey.IsValkeyNil(err)
}
