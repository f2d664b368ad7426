package actors

import (
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/internal/hookbus"
)

// Observed is implemented by commands that want to know where they were
// sent (the engine's, when command hooks are registered): the connection
// actor calls SentOn before writing them.
type Observed interface {
	SentOn(s *Sent)
}

// Sent is a pipeline as its commands see it: where it went, its number
// and size, and when it came back. A connection actor makes one per
// pipeline when PostExecution hooks are registered (the only readers) and
// hands it to each of the pipeline's commands (SentOn), which keep the
// pointer rather than copies of its fields: a hooked request stays four
// size classes smaller (a GET 192 B instead of 256), for one 48 B
// allocation per pipeline. The actor sets Answered before it completes any
// of the pipeline's commands and writes nothing after; a command sent
// again gets the Sent of its new pipeline.
//
// Bus is the engine's hook bus, so that a command's observation needs no
// pointer of its own to it; an engine's commands not written yet point
// at a Sent of Seq 0 that only carries it.
type Sent struct {
	Node     string
	Seq      uint64
	Size     int
	Answered time.Duration // hookbus.Now when the pipeline came back; 0 until then
	Bus      *hookbus.Bus
}

// pipeObs is what a connection actor notes of a pipeline for the hooks.
type pipeObs struct {
	ev       hooks.Pipeline
	start    time.Duration // hookbus.Now at the write
	sent     *Sent         // command hooks: what the commands were told; nil without
	cmds     bool          // PostExecution hooks: the commands are told their pipeline
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
	p.cmds, p.pipeline = bus.WantsPost(), bus.WantsPipelines()
	if !p.cmds && !p.pipeline {
		return nil
	}
	seq := bus.NextPipeline()
	p.sent = nil
	if p.cmds {
		p.sent = &Sent{Node: st.NodeAddr(), Seq: seq, Size: len(live), Bus: bus}
		for _, cmd := range live {
			if o, ok := cmd.(Observed); ok {
				o.SentOn(p.sent)
			}
		}
	}
	if p.pipeline {
		p.ev = hooks.Pipeline{Node: st.NodeAddr(), Seq: seq, Size: len(live), Bytes: respSize(cmds), Queued: st.Mailbox.Len()}
		if bus.WantsWritten() {
			bus.Written(p.ev)
		}
	}
	p.start = hookbus.Now()
	return p
}

// back records when the pipeline came back (at, hookbus.Now), before
// any of its commands completes.
func (p *pipeObs) back(at time.Duration) {
	if p.sent != nil {
		p.sent.Answered = at
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
