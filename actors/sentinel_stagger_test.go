package actors

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/drivers"
)

// A sentinel that accepts connections and never answers (frozen, here a
// dial that waits for its ctx) does not keep the next ones from being
// asked: each is asked Stagger after the previous one, or as soon as it
// failed. The error names every sentinel, those not asked before the
// deadline included, and no query is left running. Before, the first
// sentinel's query took the whole deadline: the others were never asked,
// and the error named the first only.
func TestSentinelDiscoverStaggered(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var mu sync.Mutex
	asked := map[string]time.Duration{}
	start := time.Now()
	s := &SentinelState{
		MasterName: "mymaster",
		// hang1 at 0, hang2 at 200ms, refused at 400ms (fails at once),
		// hang3 at once after it, hang4 not before 600ms: after the
		// 550ms deadline. (With a 100ms stagger and a 250ms deadline,
		// refused:3 was never asked once in a busy make test: hang2's
		// timer fired 63ms late, and the next stagger counts from it.)
		Sentinels: []string{"hang1:1", "hang2:2", "refused:3", "hang3:4", "hang1:1", "hang4:5"},
		Dial: func(ctx context.Context, addr string) (drivers.ValkeyConn, error) {
			mu.Lock()
			asked[addr] = time.Since(start)
			mu.Unlock()
			if strings.HasPrefix(addr, "refused") {
				return nil, errNoSentinel
			}
			<-ctx.Done()
			return nil, ctx.Err()
		},
		Timeout: time.Second,
		Stagger: 200 * time.Millisecond,
	}
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 550*time.Millisecond)
	defer cancel()
	err := s.Discover(ctx, func(context.Context, string) error { return nil })
	took := time.Since(start)
	if !errors.Is(err, ErrNoMaster) {
		t.Fatalf("Discover: %v, want ErrNoMaster", err)
	}
	t.Logf("Discover failed in %v: %v", took.Round(time.Millisecond), err)
	if took > 750*time.Millisecond {
		t.Errorf("Discover took %v with a 550ms deadline", took)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, addr := range []string{"hang1:1", "hang2:2", "refused:3", "hang3:4"} {
		if _, ok := asked[addr]; !ok {
			t.Errorf("%s never asked (asked: %v)", addr, asked)
		}
	}
	if d, ok := asked["hang4:5"]; ok {
		t.Errorf("hang4:5 asked at %v, want not before 600ms (after the deadline)", d)
	}
	if d := asked["hang2:2"]; d < 160*time.Millisecond {
		t.Errorf("hang2:2 asked at %v, want after the 200ms stagger", d)
	}
	msg := err.Error()
	for _, want := range []string{"hang1:1", "hang2:2", "refused:3: test: no sentinel", "hang3:4", "sentinel hang4:5: not asked: context deadline exceeded"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q: %v", want, msg)
		}
	}
	if n := strings.Count(msg, "hang1:1"); n != 1 {
		t.Errorf("hang1:1, listed twice, named %d times in the error, want once (asked once): %v", n, msg)
	}
}

// frozenConn is a connection to a sentinel that froze after it was
// dialled: its queries wait, whatever their ctx, until it is closed (as
// valkey-go's do until the connection's own deadline).
type frozenConn struct {
	once   sync.Once
	closed chan struct{}
}

func (c *frozenConn) B() valkey.Builder { return valkey.Builder{} }

func (c *frozenConn) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	return c.DoMulti(ctx, cmd)[0]
}

func (c *frozenConn) DoMulti(_ context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	<-c.closed
	out := make([]valkey.ValkeyResult, len(cmds))
	for i := range out {
		out[i] = valkey.NewErrorResult(errors.New("test: connection closed"))
	}
	return out
}

func (c *frozenConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// A query the resolution gives up on (its bound, here the deadline) ends
// at once, even over a connection whose driver does not heed ctx: the
// connection is closed, and dropped. Before, Discover waited for the
// frozen sentinel's reply (for ever here; in valkey-go until the
// connection's deadline).
func TestSentinelAbandonedQueryEnds(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	frozen := &frozenConn{closed: make(chan struct{})}
	s := &SentinelState{
		MasterName: "mymaster",
		Sentinels:  []string{"frozen:1", "refused:2"},
		Dial: func(ctx context.Context, addr string) (drivers.ValkeyConn, error) {
			if addr == "frozen:1" {
				return frozen, nil
			}
			return nil, errNoSentinel
		},
		Timeout:    time.Second,
		AskTimeout: time.Hour,
	}
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Discover(ctx, func(context.Context, string) error { return nil }) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		_ = frozen.Close()
		<-done
		t.Fatal("Discover still waiting for the frozen sentinel 5s after its 200ms deadline")
	}
	took := time.Since(start)
	t.Logf("Discover failed in %v: %v", took.Round(time.Millisecond), err)
	if took > 500*time.Millisecond {
		t.Errorf("Discover took %v with a 200ms deadline", took)
	}
	if !errors.Is(err, ErrNoMaster) || !strings.Contains(err.Error(), "sentinel frozen:1: context deadline exceeded") || !strings.Contains(err.Error(), "refused:2") {
		t.Errorf("Discover: %v, want ErrNoMaster naming both sentinels, frozen:1 by its deadline", err)
	}
	s.cmu.Lock()
	n := len(s.cmds)
	s.cmu.Unlock()
	if n != 0 {
		t.Errorf("%d connections kept after their queries failed, want 0", n)
	}
}
