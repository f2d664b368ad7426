// Command hooks shows a hook of one's own: a value implementing any of the
// hooks package's interfaces, registered in Config.Hooks. This one
//
//   - tags each command with the request it served (PreExecution returns
//     an enriched context, which PostExecution gets back),
//   - counts commands and errors per command name and logs the slow ones
//     (PostExecution, called on the engine's hook goroutine, off the
//     callers' and the actors' paths),
//   - logs every connection the engine makes (PreConnection,
//     PostConnection).
//
// It connects as the quickstart does: $VALKEY_URL, $VALKEY_ADDR or the
// other VALKEY_* variables, defaulting to 127.0.0.1:6379.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
)

func main() {
	if err := run(os.Stdout, os.Stderr); err != nil {
		log.Fatal(err)
	}
}

// requestKey carries the request a command serves in its context.
type requestKey struct{}

// counter is the example's hook. The engine checks once, at New, which of
// the hooks interfaces it implements, and calls only those.
type counter struct {
	slow time.Duration
	log  *log.Logger

	mu     sync.Mutex
	calls  map[string]int
	errors map[string]int
	dials  int
}

var (
	_ hooks.PreExecution   = (*counter)(nil)
	_ hooks.PostExecution  = (*counter)(nil)
	_ hooks.PreConnection  = (*counter)(nil)
	_ hooks.PostConnection = (*counter)(nil)
)

// PreExecution runs on the caller's goroutine when a command is fired:
// keep it cheap. Here it copies the request id from the caller's context
// (its arguments are the engine's and valid only during the call).
func (c *counter) PreExecution(ctx context.Context, cmd hooks.Command) context.Context {
	if ctx.Value(requestKey{}) == nil {
		return context.WithValue(ctx, requestKey{}, "-")
	}
	return ctx
}

// PostExecution runs once per command, on the hook goroutine, with the
// context PreExecution returned.
func (c *counter) PostExecution(ctx context.Context, ev hooks.Executed) {
	c.mu.Lock()
	c.calls[ev.Name]++
	if ev.Err != nil && !errors.Is(ev.Err, engine.ErrNil) {
		c.errors[ev.Name]++
	}
	c.mu.Unlock()
	if ev.Duration >= c.slow {
		c.log.Printf("slow: %s took %v (request %v, node %s)", ev.Name, ev.Duration.Round(time.Microsecond), ctx.Value(requestKey{}), ev.Node)
	}
}

// PreConnection and PostConnection frame every dial.
func (c *counter) PreConnection(ev hooks.Dial) {
	c.log.Printf("dialling %s (TLS %v, dedicated %v)", ev.Node, ev.TLS, ev.Dedicated)
}

func (c *counter) PostConnection(ev hooks.Dialed) {
	c.mu.Lock()
	c.dials++
	c.mu.Unlock()
	if ev.Err != nil {
		c.log.Printf("dial to %s failed after %v: %v", ev.Node, ev.Duration, ev.Err)
		return
	}
	c.log.Printf("connected to %s in %v", ev.Node, ev.Duration.Round(time.Microsecond))
}

// run runs the example, its results on out and the hook's log on logw.
func run(out, logw io.Writer) error {
	cfg, err := config.LoadFromEnv()
	if err != nil {
		return err
	}
	h := &counter{slow: 50 * time.Millisecond, log: log.New(logw, "hook: ", 0), calls: map[string]int{}, errors: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, cfg.WithHooks(h))
	if err != nil {
		return err
	}

	req := context.WithValue(ctx, requestKey{}, "req-42")
	for i := range 20 {
		eng.Set(req, fmt.Sprintf("hooks:%d", i), "v", time.Minute)
	}
	if _, err := eng.Get(req, "hooks:0").Await(ctx); err != nil {
		return err
	}
	// An error reply, counted by the hook: INCR of a value that is not a
	// number.
	if _, err := eng.Incr(req, "hooks:1").Await(ctx); err == nil {
		return fmt.Errorf("INCR of a string succeeded")
	}
	// A slow command, logged by the hook: WAIT for a replica that a lone
	// server does not have answers after its 60 ms timeout.
	if _, err := eng.WaitReplicas(req, "hooks:0", 1, 60*time.Millisecond).Await(ctx); err != nil {
		return err
	}
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = fmt.Sprintf("hooks:%d", i)
	}
	if _, err := eng.Del(ctx, keys...).Await(ctx); err != nil {
		return err
	}
	// Close delivers the events still queued for the hooks before it
	// returns: the counts below are complete.
	if err := eng.Close(); err != nil {
		return err
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.calls))
	for n := range h.calls {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(out, "%-6s %3d commands, %d errors\n", n, h.calls[n], h.errors[n])
	}
	fmt.Fprintf(out, "dials: %d\n", h.dials)
	return nil
}
