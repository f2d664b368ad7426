package actors

import (
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/hooks"
)

// Observed is implemented by commands that want to know where they were
// sent (the engine's, when command hooks are registered): the connection
// actor calls SentOn before writing them.
type Observed interface {
	SentOn(node string, pipeline uint64, size int)
}

// pipeObs is what a connection actor notes of a pipeline for the hooks.
type pipeObs struct {
	ev    hooks.Pipeline
	start time.Time
}

// observe runs before a pipeline is written, when the actor has hooks:
// it numbers the pipeline, tells each command where it goes, and sends the
// PipelineWritten event. It returns nil when no hook wants pipelines.
func (c *Conn) observe(live []Command, cmds []valkey.Completed) *pipeObs {
	st := c.state
	bus := st.Hooks
	cmdHooks, pipeHooks := bus.WantsCommands(), bus.WantsPipelines()
	if !cmdHooks && !pipeHooks {
		return nil
	}
	seq := bus.NextPipeline()
	if cmdHooks {
		for _, cmd := range live {
			if o, ok := cmd.(Observed); ok {
				o.SentOn(st.Addr, seq, len(live))
			}
		}
	}
	if !pipeHooks {
		return nil
	}
	p := &c.pipe
	p.ev = hooks.Pipeline{Node: st.Addr, Seq: seq, Size: len(live), Bytes: respSize(cmds), Queued: st.Mailbox.Len()}
	bus.Written(p.ev)
	p.start = time.Now()
	return p
}

// answered sends the PipelineAnswered event.
func (c *Conn) answered(p *pipeObs, err error) {
	p.ev.RTT = time.Since(p.start)
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
