package actors

import (
	"fmt"
	"sync"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/internal/hookbus"
	"github.com/vactor-io/vactor/mailbox"
)

// completer completes the commands of answered pipelines on a goroutine of
// its own, in the order they were handed over, so that a busy connection
// actor sends its next pipeline while the replies of the last one are
// decoded and their callers woken: with one pipeline in flight per
// connection, completing 1,000 commands on the actor left the server idle
// for that long. The goroutine runs while there is work and is gone when
// there is none. The actor waits for it (wait) before it completes or
// fails any command itself, so that commands still complete in the order
// they were sent.
type completer struct {
	mu      sync.Mutex
	queue   []handoff
	running bool
	idle    chan struct{} // closed when the queue drains, for wait
}

// handoff is one answered pipeline: its commands and their results (the
// driver's, which belong to the caller), and with hooks the bus the actor
// holds for it (Hook.Hold, released once its commands are complete) and
// the PipelineAnswered event to send then (nil: none).
type handoff struct {
	cmds     []Command
	results  []valkey.ValkeyResult
	bus      *hookbus.Bus
	answered *hooks.Pipeline
}

// hand queues an answered pipeline; h.cmds is the completer's from then on.
func (c *completer) hand(h handoff) {
	c.mu.Lock()
	c.queue = append(c.queue, h)
	if c.running {
		c.mu.Unlock()
		return
	}
	c.running = true
	c.mu.Unlock()
	go c.loop()
}

func (c *completer) loop() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.running = false
			if c.idle != nil {
				close(c.idle)
				c.idle = nil
			}
			c.queue = nil
			c.mu.Unlock()
			return
		}
		h := c.queue[0]
		c.queue[0] = handoff{}
		c.queue = c.queue[1:]
		c.mu.Unlock()
		h.complete()
	}
}

// complete completes every command of h with its result. A completion
// that panics fails the rest of the pipeline, as the mailbox fails the
// batch of an actor that panics, instead of crashing the program.
func (h handoff) complete() {
	i := 0
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("%w: %v", mailbox.ErrActorFailed, r)
			for _, cmd := range h.cmds[i:] {
				cmd.Fail(err) // the one that panicked may have completed: ignored then
			}
		}
		if h.bus != nil {
			if h.answered != nil {
				h.bus.Answered(*h.answered)
			}
			h.bus.Release()
		}
	}()
	for ; i < len(h.cmds); i++ {
		h.cmds[i].Complete(h.results[i])
	}
}

// wait returns once every pipeline handed over has been completed.
func (c *completer) wait() {
	c.mu.Lock()
	if !c.running {
		c.mu.Unlock()
		return
	}
	if c.idle == nil {
		c.idle = make(chan struct{})
	}
	ch := c.idle
	c.mu.Unlock()
	<-ch
}
