package actors

import (
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/internal/hookbus"
)

// Observed is implemented by commands that want to know where they were
// sent (the engine's, when command hooks are registered): the connection
// actor calls SentOn before writing them, and AnsweredAt (hookbus.Now)
// when their pipeline came back, before completing them.
type Observed interface {
	SentOn(node string, pipeline uint64, size int)
	AnsweredAt(at time.Duration)
}

// pipeObs is what a connection actor notes of a pipeline for the hooks.
type pipeObs struct {
	ev       hooks.Pipeline
	start    time.Duration // hookbus.Now at the write
	cmds     bool          // command hooks: stamp the commands
	pipeline bool          // pipeline hooks: report the pipeline
}

// observe runs before a pipeline is written, when the actor has hooks:
// it numbers the pipeline, tells each command where it goes, and sends the
// PipelineWritten event. It returns nil when no hook wants commands or
// pipelines.
func (c *Conn) observe(live []Command, cmds []valkey.Completed) *pipeObs {
	st := c.state
	bus := st.Hooks
	p := &c.pipe
	p.cmds, p.pipeline = bus.WantsCommands(), bus.WantsPipelines()
	if !p.cmds && !p.pipeline {
		return nil
	}
	seq := bus.NextPipeline()
	if p.cmds {
		for _, cmd := range live {
			if o, ok := cmd.(Observed); ok {
				o.SentOn(st.Addr, seq, len(live))
			}
		}
	}
	if p.pipeline {
		p.ev = hooks.Pipeline{Node: st.Addr, Seq: seq, Size: len(live), Bytes: respSize(cmds), Queued: st.Mailbox.Len()}
		if bus.WantsWritten() {
			bus.Written(p.ev)
		}
	}
	p.start = hookbus.Now()
	return p
}

// stamp tells cmd when its pipeline came back (at, hookbus.Now).
func (p *pipeObs) stamp(cmd Command, at time.Duration) {
	if o, ok := cmd.(Observed); ok {
		o.AnsweredAt(at)
	}
}

// answered sends the PipelineAnswered event; at is when the round trip
// ended (hookbus.Now).
func (c *Conn) answered(p *pipeObs, at time.Duration, err error) {
	if !p.pipeline {
		return
	}
	p.ev.RTT = at - p.start
	p.ev.Err = err
	c.state.Hooks.Answered(p.ev)
}

// respSize returns the size of cmds written as RESP arrays of bulk
// strings.
func respSize(cmds []valkey.Completed) int {
	n := 0
	for _, cmd := range cmds {
		parts := cmd.Commands()
		n += 3 + digits(len(parts)) // *<n>\r\n
		for _, p := range parts {
			n += 5 + digits(len(p)) + len(p) // $<len>\r\n<p>\r\n
		}
	}
	return n
}

func digits(n int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}
