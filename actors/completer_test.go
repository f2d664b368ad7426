package actors_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/internal/hookbus"
	"github.com/vactor-io/vactor/mailbox"
)

// blockingCmd is a fakeCmd whose Complete waits for release (and says so
// on entered) before it completes.
type blockingCmd struct {
	*fakeCmd
	entered chan struct{}
	release chan struct{}
}

func (c *blockingCmd) Complete(r valkey.ValkeyResult) {
	close(c.entered)
	select {
	case <-c.release:
	case <-time.After(waitTimeout):
	}
	c.fakeCmd.Complete(r)
}

// A busy actor (a big pipeline answered, as many commands queued) hands
// the answered pipeline's completions to its completer and sends the next
// pipeline at once: here the second DoMulti starts while a completion of
// the first is still blocked. Completions keep the order the commands
// were sent in: the second pipeline, which the actor completes itself
// (nothing queued behind it), waits for the first's.
func TestConnCompletesBusyPipelineWhileNextInFlight(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	gate0, gate1, gate2 := conn.gate(0), conn.gate(1), conn.gate(2)
	st := newState("node-a:6379", conn, nil)
	h := start(t, st)
	defer h.shutdown(t, snapshot)

	log := &completionLog{}
	var cmds []*fakeCmd
	post := func(c *fakeCmd) {
		cmds = append(cmds, c)
		if !st.Mailbox.Post(c) {
			t.Fatalf("Post(%d) refused", c.id)
		}
	}
	post(newFakeCmd(0, log))
	conn.waitEntered(t, 0, "Do(1)")
	const size = 100
	slow := &blockingCmd{fakeCmd: newFakeCmd(1, log), entered: make(chan struct{}), release: make(chan struct{})}
	cmds = append(cmds, slow.fakeCmd)
	if !st.Mailbox.Post(slow) {
		t.Fatal("Post(1) refused")
	}
	for i := 2; i <= size; i++ {
		post(newFakeCmd(i, log))
	}
	close(gate0)
	conn.waitEntered(t, 1, fmt.Sprintf("DoMulti(%d)", size))
	for i := size + 1; i <= 2*size; i++ {
		post(newFakeCmd(i, log))
	}
	close(gate1)
	select {
	case <-slow.entered:
	case <-time.After(waitTimeout):
		t.Fatal("the first pipeline's completions never began")
	}
	// The completion is blocked: the actor sends the next pipeline anyway.
	conn.waitEntered(t, 2, fmt.Sprintf("DoMulti(%d)", size))
	close(gate2)
	close(slow.release)
	for _, c := range cmds {
		c.waitDone(t)
	}
	want := make([]int, 2*size+1)
	for i := range want {
		want[i] = i
	}
	if got := log.get(); !slices.Equal(got, want) {
		t.Fatalf("completion order %v, want 0 .. %d in order", got, 2*size)
	}
	if got := st.Stats().Commands; got != 2*size+1 {
		t.Fatalf("Stats().Commands = %d, want %d", got, 2*size+1)
	}
}

// answeredRecorder is a PipelineAnswered hook that records the pipelines'
// sizes in the order it hears of them.
type answeredRecorder struct {
	mu    sync.Mutex
	sizes []int
}

func (r *answeredRecorder) OnPipelineAnswered(ev hooks.Pipeline) {
	r.mu.Lock()
	r.sizes = append(r.sizes, ev.Size)
	r.mu.Unlock()
}

func (r *answeredRecorder) get() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sizes)
}

// With hooks, a handed-off pipeline's PipelineAnswered is sent once its
// commands are complete, as when the actor completes them itself, and
// before the next pipeline's.
func TestConnHandOffAnsweredAfterCompletions(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	gate0, gate1, gate2 := conn.gate(0), conn.gate(1), conn.gate(2)
	rec := &answeredRecorder{}
	bus := hookbus.New([]hooks.Hook{rec}, nil, 0)
	bus.Start()
	st := newState("node-a:6379", conn, nil)
	st.Hooks = bus
	h := start(t, st)
	defer h.shutdown(t, snapshot)
	defer bus.Close(waitTimeout)

	var cmds []*fakeCmd
	post := func(m mailbox.Message) {
		switch c := m.(type) {
		case *fakeCmd:
			c.cmd = valkey.Builder{}.Ping().Build()
		case *blockingCmd:
			c.cmd = valkey.Builder{}.Ping().Build()
		}
		if !st.Mailbox.Post(m) {
			t.Fatal("Post refused")
		}
	}
	first := newFakeCmd(0, nil)
	cmds = append(cmds, first)
	post(first)
	conn.waitEntered(t, 0, "Do(1)")
	const size = 100
	slow := &blockingCmd{fakeCmd: newFakeCmd(1, nil), entered: make(chan struct{}), release: make(chan struct{})}
	cmds = append(cmds, slow.fakeCmd)
	post(slow)
	for i := 2; i <= 2*size; i++ {
		if i == size+1 {
			close(gate0)
			conn.waitEntered(t, 1, fmt.Sprintf("DoMulti(%d)", size))
		}
		c := newFakeCmd(i, nil)
		cmds = append(cmds, c)
		post(c)
	}
	close(gate1)
	conn.waitEntered(t, 2, fmt.Sprintf("DoMulti(%d)", size)) // the first is handed off
	eventually(t, "the first pipeline's PipelineAnswered", func() bool { return len(rec.get()) == 1 })
	if got := rec.get(); !slices.Equal(got, []int{1}) {
		t.Fatalf("PipelineAnswered sizes %v while a completion of the second pipeline is blocked, want [1]", got)
	}
	close(gate2)
	close(slow.release)
	for _, c := range cmds {
		c.waitDone(t)
	}
	eventually(t, "three PipelineAnswered events", func() bool { return len(rec.get()) == 3 })
	if got := rec.get(); !slices.Equal(got, []int{1, size, size}) {
		t.Fatalf("PipelineAnswered sizes %v, want [1 %d %d]", got, size, size)
	}
}
