package mailbox_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vactor-io/vactor/mailbox"
)

// upper is a command: the actor answers it with its text in upper case.
type upper struct {
	ctx   context.Context
	text  string
	once  sync.Once
	reply string
	err   error
	done  chan struct{}
}

func newUpper(ctx context.Context, text string) *upper {
	return &upper{ctx: ctx, text: text, done: make(chan struct{})}
}

func (c *upper) Context() context.Context { return c.ctx }

// Fail completes the command with err; only the first completion counts.
func (c *upper) Fail(err error) { c.once.Do(func() { c.err = err; close(c.done) }) }

func (c *upper) complete(reply string) { c.once.Do(func() { c.reply = reply; close(c.done) }) }

// An actor that receives whatever was queued as one *mailbox.Batch.
func Example() {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer system.Shutdown()

	mb := mailbox.New(mailbox.Options{Capacity: 1024, MaxBatch: 128, Policy: mailbox.Reject})
	props := actor.PropsFromFunc(func(c actor.Context) {
		if b, ok := c.Message().(*mailbox.Batch); ok {
			// b.Messages is valid only during this call: handle or copy.
			for _, m := range b.Messages {
				cmd := m.(*upper)
				cmd.complete(strings.ToUpper(cmd.text))
			}
		}
	}, actor.WithMailbox(func() actor.Mailbox { return mb }))
	pid := system.Root.Spawn(props)

	ctx := context.Background()
	var cmds []*upper
	for _, text := range []string{"alpha", "beta", "gamma"} {
		cmd := newUpper(ctx, text)
		cmds = append(cmds, cmd)
		system.Root.Send(pid, cmd) // or mb.Post(cmd)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	late := newUpper(canceled, "delta")
	mb.Post(late) // its context has ended: it fails at once, never reaching the actor

	for _, cmd := range append(cmds, late) {
		<-cmd.done
		if cmd.err != nil {
			fmt.Println(cmd.text, "failed:", cmd.err)
			continue
		}
		fmt.Println(cmd.text, "->", cmd.reply)
	}
	_ = system.Root.StopFuture(pid).Wait()

	s := mb.Stats()
	fmt.Println("batched:", s.Batched, "expired:", s.Expired)
	// Output:
	// alpha -> ALPHA
	// beta -> BETA
	// gamma -> GAMMA
	// delta failed: context canceled
	// batched: 3 expired: 1
}
